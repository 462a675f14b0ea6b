"""The entry a benchmark publishes: its body carries the send time, so a reader can measure
publish-to-delivery latency from the frame alone (all processes share the machine's clock).

Reader frames carry only the body's rendering (`html`), not the body: the body has no Markdown
syntax, so it renders as one paragraph whose text starts with the same stamp."""

from __future__ import annotations

PREFIX = "bench"
MIN_SIZE = 48

_OPEN, _CLOSE = "<p>", "</p>"
# Enough of the html to hold the stamp (`bench <index> <19-digit ns> `): the padding after it
# can be 100 KB, and the load process parses every distinct frame.
_STAMP_CHARS = 64


def make_body(index: int, sent_ns: int, size: int) -> str:
    """`bench <index> <time_ns> xxx…`, padded with `x` to `size` characters (ASCII)."""
    head = f"{PREFIX} {index} {sent_ns} "
    return head + "x" * max(0, size - len(head))


def parse_body(body: object) -> tuple[int, int] | None:
    """(index, sent_ns) from a body made by `make_body`, or None if it is not one."""
    if not isinstance(body, str):
        return None
    parts = body.split(" ", 3)
    if len(parts) < 3 or parts[0] != PREFIX or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2])


def parse_html(html: object) -> tuple[int, int] | None:
    """(index, sent_ns) from the rendering of a `make_body` body (`<p>bench 3 17… xxx</p>`)."""
    if not isinstance(html, str) or not html.startswith(_OPEN):
        return None
    text = html[len(_OPEN) : len(_OPEN) + _STAMP_CHARS]
    # Without padding the closing tag follows the time directly (Markdown drops the space).
    end = text.find(_CLOSE)
    return parse_body(text if end < 0 else text[:end])


def parse_entry(entry: object) -> tuple[int, int] | None:
    """(index, sent_ns) of a benchmark entry, or None if it is not one. The body when the entry
    has one (the editors' API, older servers' frames), else its html (reader frames)."""
    if not isinstance(entry, dict):
        return None
    body = entry.get("body")
    if body is not None:
        return parse_body(body)
    return parse_html(entry.get("html"))
