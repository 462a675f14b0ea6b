"""The docs name every setting and every close code the code has."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from pushhub.config import Settings, env_name
from pushhub.protocol import CloseCode

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        env_name(f.name) for f in fields(Settings) if f"| `{env_name(f.name)}` |" not in readme
    ]
    assert missing == []


def test_every_close_code_is_in_the_protocol_doc() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    missing = [code for code in CloseCode if f"| {int(code)} |" not in doc]
    assert missing == []
