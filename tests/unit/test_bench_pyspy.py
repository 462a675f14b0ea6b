"""bench/pyspy_top.py folds py-spy's raw stacks into inclusive and self shares."""

from __future__ import annotations

from bench.pyspy_top import fold, frame_name, table

RAW = [
    "main (cli.py:3);run (loop.py:9);push (pushhub/wire.py:188) 6",
    "main (cli.py:3);run (loop.py:9);push (pushhub/wire.py:190) 2",
    "main (cli.py:3);run (loop.py:9);f (a.py:1);f (a.py:1) 2",
    "not a sample line",
]


def test_frames_lose_line_numbers_and_directories() -> None:
    assert frame_name("push (pushhub/wire.py:188)") == "push wire.py"
    assert frame_name("<module> (pushhub)") == "<module> pushhub"


def test_inclusive_counts_a_recursive_frame_once_and_self_counts_the_top() -> None:
    total, inclusive, own = fold(RAW)

    assert total == 10
    assert inclusive["main cli.py"] == 10
    assert inclusive["push wire.py"] == 8  # two line numbers, one function
    assert inclusive["f a.py"] == 2
    assert own == {"push wire.py": 8, "f a.py": 2}


def test_the_inclusive_table_leaves_out_the_roots() -> None:
    total, inclusive, own = fold(RAW)

    rows = table(total, inclusive, 5, skip_roots=True).splitlines()[2:]
    assert rows == ["| 80.0% | `push wire.py` |", "| 20.0% | `f a.py` |"]
    assert table(total, own, 1, skip_roots=False).splitlines()[2] == "| 80.0% | `push wire.py` |"
