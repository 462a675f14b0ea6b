"""Plain text from an entry's HTML, for terminals and logs. Pure, standard library only.

Readers' frames carry an entry's `html` but not its Markdown source, so whatever shows an entry
as text has to read the HTML. This is not a browser: it keeps the words and the line structure
(paragraphs, list items, quotes, preformatted text) and drops the rest.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Blocks that stand apart from their neighbours with a blank line, as paragraphs do.
_PARAGRAPHS = frozenset({"p", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})
_LISTS = frozenset({"ul", "ol"})
# Their content is not text (a server sanitizes these away; a stray one must not leak code).
_INVISIBLE = frozenset({"script", "style", "template"})
# HTML collapses only these; a no-break space is content and stays.
_SPACES = re.compile(r"[ \t\n\r\f]+")


def html_to_text(html: str) -> str:
    """`<p>First <em>line</em> &amp; more</p><ul><li>a</li></ul>` → `First line & more\\n\\n- a`.

    Paragraph-like blocks are separated by one blank line, list items and `<br>` start a new
    line, entities are decoded, and tags are dropped. Malformed HTML never raises.
    """
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[str] = []
        self._line: list[str] = []
        self._marker = ""  # a list item's "- " or "3. ", written before its first word
        self._lists: list[int | None] = []  # per open list: the next number, None if bulleted
        self._quotes = 0
        self._pre = 0
        self._invisible = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._invisible += 1
        elif tag in _PARAGRAPHS or tag in _LISTS:
            self._break(blank=not self._nested_list(tag))
            self._open(tag, dict(attrs))
        elif tag in ("br", "li"):
            self._break(keep_empty=tag == "br" and self._pre > 0)
            if tag == "li":
                self._marker = self._next_marker()
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.handle_data(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._invisible = max(0, self._invisible - 1)
        elif tag in _PARAGRAPHS or tag in _LISTS:
            self._close(tag)
            self._break(blank=not self._nested_list(tag))
        elif tag == "li":
            self._break()
            self._marker = ""

    def handle_data(self, data: str) -> None:
        if self._invisible:
            return
        if self._pre:
            self._preformatted(data)
            return
        text = _SPACES.sub(" ", data)
        if not "".join(self._line).strip():
            text = text.lstrip()  # a line never starts with the space between two tags
        if text:
            self._write(text)

    def text(self) -> str:
        self._break()
        return "\n".join(self._lines).strip("\n")

    # --- state of the open blocks -----------------------------------------------------------

    def _open(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "blockquote":
            self._quotes += 1
        elif tag == "pre":
            self._pre += 1
        elif tag == "ol":
            start = attrs.get("start") or "1"
            self._lists.append(int(start) if start.isdigit() else 1)
        elif tag == "ul":
            self._lists.append(None)

    def _close(self, tag: str) -> None:
        # Stray end tags (`</pre>` without `<pre>`) must not push a counter below zero.
        if tag == "blockquote":
            self._quotes = max(0, self._quotes - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        elif tag in _LISTS and self._lists:
            self._lists.pop()

    def _nested_list(self, tag: str) -> bool:
        # A list inside a list item continues that item: no blank line around it.
        return tag in _LISTS and bool(self._lists)

    def _next_marker(self) -> str:
        indent = "  " * max(0, len(self._lists) - 1)
        if not self._lists or self._lists[-1] is None:
            return f"{indent}- "
        number = self._lists[-1]
        self._lists[-1] = number + 1
        return f"{indent}{number}. "

    # --- writing lines ------------------------------------------------------------------------

    def _preformatted(self, data: str) -> None:
        first, *rest = data.split("\n")
        if first:
            self._write(first)
        for line in rest:
            self._break(keep_empty=True)
            if line:
                self._write(line)

    def _write(self, text: str) -> None:
        if self._marker:
            self._line.append(self._marker)
            self._marker = ""
        self._line.append(text)

    def _break(self, *, blank: bool = False, keep_empty: bool = False) -> None:
        """End the current line; with `blank`, also leave one blank line (never two)."""
        line = "".join(self._line).rstrip()
        self._line = []
        if line or keep_empty:
            self._lines.append(("> " * self._quotes + line).rstrip())
        if blank and self._lines and self._lines[-1]:
            self._lines.append("")
        if len(self._lines) >= 2 and not self._lines[-1] and not self._lines[-2]:
            self._lines.pop()
