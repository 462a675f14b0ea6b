"""What `tail` and `blog show` print for entries, including reader entries that carry only HTML."""

from __future__ import annotations

from typing import Any

import pytest
from pushhub_client import Entry, Event
from pushhub_client._render import change, clock, entry_block, entry_row
from pushhub_client._text import html_to_text

HTML = "<p>First <em>line</em> &amp; more</p><ul><li>a</li><li>b</li></ul>"


def reader_entry(**changes: Any) -> Entry:
    """An entry as the reader stream sends it: no `body`."""
    raw: dict[str, Any] = {
        "id": "0e1",
        "created_at": "2026-11-25T13:04:05.000Z",
        "updated_at": "2026-11-25T13:04:05.000Z",
        "author": "Ana Ruiz",
        "title": None,
        "html": HTML,
        "image": None,
        "pinned": False,
        "key": False,
    }
    return Entry.from_json({**raw, **changes})


def update(entry: Entry) -> Event:
    return Event(seq=2, epoch="e1", op="update", entry_id=entry.id, entry=entry)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (HTML, "First line & more\n\n- a\n- b"),
        ("<p>one</p>\n<p>two<br>\nthree</p>", "one\n\ntwo\nthree"),
        ("<h3>Head</h3><p>x</p><hr><p>y</p>", "Head\n\nx\n\ny"),
        ('<ol start="3">\n<li>c</li>\n<li>d<ul><li>e</li></ul></li>\n</ol>', "3. c\n4. d\n  - e"),
        ("<blockquote>\n<p>said\nso</p>\n</blockquote>", "> said so"),
        ("<pre><code>if x:\n    y()\n</code></pre>", "if x:\n    y()"),
        ("<p>&lt;b&gt; &#x263A; a&nbsp;b</p>", "<b> ☺ a\xa0b"),
        (
            '<p>see <a href="https://x.example">this</a> <img src="https://x.example/i.png" alt="a map"></p>',
            "see this [a map]",
        ),
        ("<p></p><p>  </p><br><br><p>only</p><p></p>", "only"),
        ("<p>unclosed <strong>tags</p></li></pre>", "unclosed tags"),
        ("<script>alert(1)</script><p>safe</p>", "safe"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_a_reader_entry_shows_the_text_of_its_html() -> None:
    entry = reader_entry(image={"url": "https://images.example/a.jpg", "caption": "Start"})
    assert entry_block(entry) == [
        f"{clock(entry.created_at)}  (0e1, Ana Ruiz)",
        "    First line & more",
        "",
        "    - a",
        "    - b",
        "    [image] https://images.example/a.jpg — Start",
    ]
    assert entry_row(entry).endswith("  First line & more")


def test_an_api_entry_still_shows_its_markdown() -> None:
    entry = reader_entry(body="First *line* & more")
    assert entry_block(entry)[1:] == ["    First *line* & more"]


def test_untitled_reader_entries_are_named_by_the_first_line_of_their_html() -> None:
    before = reader_entry()
    pinned = reader_entry(pinned=True)
    assert change(update(pinned), before) == ["* pinned 0e1 (First line & more)"]
    deleted = Event(seq=3, epoch="e1", op="delete", entry_id="0e1")
    assert change(deleted, before) == ["- deleted 0e1 (First line & more)"]


def test_an_update_that_changes_only_the_html_is_an_edit() -> None:
    before = reader_entry()
    after = reader_entry(html="<p>Corrected</p>", updated_at="2026-11-25T13:05:00.000Z")
    assert change(update(after), before) == [
        f"~ edited {clock(after.updated_at)}  (0e1, Ana Ruiz)",
        "    Corrected",
    ]


def test_a_pin_together_with_new_html_is_an_edit_not_just_a_pin() -> None:
    before = reader_entry()
    after = reader_entry(html="<p>Corrected</p>", pinned=True)
    lines = change(update(after), before)
    assert lines[0].startswith("~ edited ") and "[pinned]" in lines[0]
    assert lines[1:] == ["    Corrected"]
