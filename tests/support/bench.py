"""Running a benchmark module (`python -m bench.X`) from the repository root, as its users do,
and the frames its readers count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def json_lines(module: str, *args: str, timeout: float) -> list[dict[str, Any]]:
    """What the module printed, one JSON object a line; it must print some and exit 0."""
    proc = run_module(module, *args, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no output (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    problems = [line.get("problems") for line in lines]
    assert proc.returncode == 0, f"problems: {problems}\n{proc.stderr[-4000:]}"
    return lines


def frame(seq: int, index: int | None = None, sent_ns: int = 1) -> bytes:
    """An event carrying a benchmark entry (`bench._payload`) as readers get it, rendered and
    without its body: entry `index` (default: the seq) sent at `sent_ns`."""
    entry = {"html": f"<p>bench {seq if index is None else index} {sent_ns} xxxx</p>"}
    return orjson.dumps(
        {"type": "event", "seq": seq, "epoch": "e1", "op": "create", "entry": entry}
    )


def snapshot(seq: int, *, reset: bool = False) -> bytes:
    return orjson.dumps(
        {"type": "snapshot", "seq": seq, "epoch": "e1", "entries": [], "reset": reset}
    )
