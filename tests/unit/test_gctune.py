"""The serving process's collector settings (pushhub/gctune.py), checked in a fresh interpreter:
freezing is for the whole process, and must not leak into the test run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import gc, json
from pushhub.app import app_from_env
before = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
app_from_env()
after = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
print(json.dumps({"before": before, "after": after}))
"""


def test_the_serving_app_factory_freezes_its_start_up_objects(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PUSHHUB_DATA_DIR": str(tmp_path), "PUSHHUB_LOG_LEVEL": "warning"}
    env.pop("PUSHHUB_REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"]["frozen"] == 0
    # The imported modules and the app: tens of thousands of objects no full collection walks.
    assert seen["after"]["frozen"] > 10_000
    assert seen["after"]["threshold"] == seen["before"]["threshold"]
