"""bench/_payload.py: the send-time stamp a benchmark entry carries, read back from the body (the
editors' API, older servers' frames) or from its html rendering (reader frames)."""

from __future__ import annotations

import orjson
import pytest

from bench._loadgen import classify
from bench._payload import MIN_SIZE, make_body, parse_body, parse_entry, parse_html
from pushhub.sanitize import render_markdown

NS = 1_730_000_000_000_000_000


def test_make_body_pads_to_the_size_and_parses_back() -> None:
    body = make_body(12, NS, 256)

    assert len(body) == 256
    assert body.startswith(f"bench 12 {NS} x")
    assert parse_body(body) == (12, NS)


@pytest.mark.parametrize("size", [MIN_SIZE, 256, 4096, 99_000])
def test_the_rendered_body_is_one_paragraph_with_the_stamp(size: int) -> None:
    body = make_body(7, NS, size)

    assert render_markdown(body) == f"<p>{body}</p>"
    assert parse_html(render_markdown(body)) == (7, NS)


def test_a_body_without_padding_still_parses_from_its_html() -> None:
    # Markdown drops the trailing space, so the closing tag follows the time.
    html = render_markdown(make_body(3, NS, 0))

    assert html == f"<p>bench 3 {NS}</p>"
    assert parse_html(html) == (3, NS)


def test_parse_entry_reads_the_html_of_a_reader_entry() -> None:
    entry = {"id": "a", "title": None, "html": render_markdown(make_body(5, NS, 64))}

    assert parse_entry(entry) == (5, NS)


def test_parse_entry_prefers_the_body_when_there_is_one() -> None:
    entry = {"body": make_body(5, NS, 64), "html": "<p>not a stamp</p>"}

    assert parse_entry(entry) == (5, NS)


@pytest.mark.parametrize(
    "entry",
    [
        None,
        "bench 1 2 x",
        {},
        {"html": None},
        {"html": "<p>hello world</p>"},
        {"html": "<h1>bench 1 2 x</h1>"},
        {"html": "<p>bench one 2 x</p>"},
        {"html": "<p>bench 1</p>"},
        {"body": "bench 1 2x"},
        {"body": 3, "html": "<p>bench 1 2 x</p>"},
    ],
)
def test_anything_else_is_not_a_benchmark_entry(entry: object) -> None:
    assert parse_entry(entry) is None


def test_the_load_process_reads_the_stamp_from_either_kind_of_frame() -> None:
    body = make_body(9, NS, 128)
    for entry in ({"body": body, "html": render_markdown(body)}, {"html": render_markdown(body)}):
        data = orjson.dumps({"type": "event", "seq": 4, "epoch": "e1", "entry": entry})

        assert classify(data) == (4, "event", 9, NS)
