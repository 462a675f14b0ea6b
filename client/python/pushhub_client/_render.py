"""Plain-text views of blogs, entries and changes for the terminal. Pure: strings in, lines out."""

from __future__ import annotations

from datetime import datetime

from pushhub_client.models import Blog, Entry, Event

INDENT = "    "


def clock(value: datetime) -> str:
    """The time of day in the terminal's local zone: a live blog is read as it happens."""
    return value.astimezone().strftime("%H:%M:%S")


def flags(entry: Entry) -> str:
    marks = [name for name, on in (("pinned", entry.pinned), ("key", entry.key)) if on]
    return "".join(f" [{m}]" for m in marks)


def headline(entry: Entry, when: datetime | None = None) -> str:
    """`HH:MM:SS  Title [pinned] [key]  (id, author)`, at `when` (default: its creation)."""
    title = f"  {entry.title}" if entry.title else ""
    stamp = clock(when or entry.created_at)
    return f"{stamp}{title}{flags(entry)}  ({entry.id}, {entry.author})"


def first_line(text: str, limit: int = 72) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def entry_block(entry: Entry, when: datetime | None = None) -> list[str]:
    """A headline, the text indented (the Markdown body if sent, else the text of the HTML,
    as from the reader stream), and the image if there is one."""
    lines = [headline(entry, when)]
    lines += [f"{INDENT}{ln}".rstrip() for ln in entry.text.splitlines()]
    if entry.image is not None:
        extra = " — ".join(t for t in (entry.image.caption, entry.image.credit) if t)
        lines.append(f"{INDENT}[image] {entry.image.url}" + (f" — {extra}" if extra else ""))
    return lines


def blog_line(blog: Blog) -> str:
    summary = f" — {first_line(blog.summary)}" if blog.summary else ""
    return f"== {blog.title} [{blog.status}]{summary}"


def blog_row(blog: Blog) -> str:
    return f"{blog.slug:<24} {blog.status:<6} {blog.title}"


def entry_row(entry: Entry) -> str:
    title = entry.title or first_line(entry.text, 60)
    when = entry.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"{entry.id:<16} {when}  {title}{flags(entry)}"


def change(event: Event, before: Entry | None) -> list[str]:
    """How a change reads in `tail`: a new entry in full, an edit or pin as such, a deletion."""
    if event.op == "blog" and event.blog is not None:
        return [f"* blog changed: {event.blog.title} [{event.blog.status}]"]
    if event.op == "delete":
        what = f" ({before.title or first_line(before.text, 60)})" if before else ""
        return [f"- deleted {event.entry_id}{what}"]
    entry = event.entry
    if entry is None:
        return []
    if event.op == "create":
        return ["+ " + line if i == 0 else line for i, line in enumerate(entry_block(entry))]
    if before is not None and _only_pin_changed(before, entry):
        verb = "pinned" if entry.pinned else "unpinned"
        return [f"* {verb} {entry.id} ({entry.title or first_line(entry.text, 60)})"]
    lines = entry_block(entry, when=entry.updated_at)
    return [f"~ edited {lines[0]}", *lines[1:]]


def _only_pin_changed(before: Entry, after: Entry) -> bool:
    return before.pinned != after.pinned and _visible(before) == _visible(after)


def _visible(entry: Entry) -> tuple[object, ...]:
    # Reader frames carry no body, so the text is compared through `html`, which the server
    # re-renders on every body edit; with a body sent too, either one differing is a change.
    return (entry.title, entry.body, entry.html, entry.author, entry.image, entry.key)
