"""Markdown in, safe HTML out: XSS vectors are neutralised, ordinary Markdown survives.

The output is parsed with `html.parser` (which decodes entities in attribute values the way a
browser does), so the checks look at the tags and attributes a browser would build, not at
substrings that could also be harmless escaped text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from pushhub.sanitize import clean_html, render_markdown

ALLOWED_TAGS = {
    "p", "br", "em", "strong", "a", "ul", "ol", "li", "blockquote", "img", "code", "pre", "hr",
    "h3", "h4",
}  # fmt: skip
ALLOWED_ATTRS = {"a": {"href", "title", "rel"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_ATTRS = {"href", "src"}
SAFE_SCHEMES = {"http", "https", "mailto"}
FORBIDDEN_TAG_TEXT = ("<script", "<iframe", "<svg", "<style", "<object", "<embed", "<math")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]


@dataclass
class Parsed:
    elements: list[Element] = field(default_factory=list)
    text: str = ""


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = Parsed()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parsed.elements.append(Element(tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.parsed.text += data


def parse(html: str) -> Parsed:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.parsed


def url_scheme(value: str) -> str | None:
    """The scheme a browser reads from an attribute value (WHATWG URL parsing), lowercased."""
    value = value.strip("".join(chr(c) for c in range(0x21)))  # C0 controls and space
    value = re.sub(r"[\t\n\r]", "", value)
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", value)
    return match.group(1).lower() if match else None


def assert_safe(html: str) -> Parsed:
    lowered = html.lower()
    for text in FORBIDDEN_TAG_TEXT:
        assert text not in lowered, f"{text} in {html!r}"
    parsed = parse(html)
    for el in parsed.elements:
        assert el.tag in ALLOWED_TAGS, f"tag <{el.tag}> in {html!r}"
        for name, value in el.attrs.items():
            assert not name.startswith("on"), f"event handler {name} in {html!r}"
            assert name in ALLOWED_ATTRS.get(el.tag, set()), f"<{el.tag} {name}> in {html!r}"
            if name in URL_ATTRS:
                assert value is not None
                scheme = url_scheme(value)
                assert scheme not in {"javascript", "data", "vbscript"}, f"{value!r} in {html!r}"
                assert scheme is None or scheme in SAFE_SCHEMES, f"{value!r} in {html!r}"
        if el.tag == "a":
            assert el.attrs.get("rel") == "noopener nofollow", html
    return parsed


POLYGLOT = (
    "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert() )//%0D%0A%0d%0a//</stYle/"
    "</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=alert()//>\\x3e"
)
ENTITY_JS = "&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;"

XSS_VECTORS = [
    # raw HTML: markdown-it must escape it, nh3 must drop whatever gets through
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    '"><script>alert(document.cookie)</script>',
    "<img src=x onerror=alert(1)>",
    'Hello <img src="x" onerror="alert(1)"> world',
    "<img src=x` onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    f'<a href="{ENTITY_JS}alert(1)">x</a>',
    '<a href="#" onclick="alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    "<iframe src=javascript:alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="width: expression(alert(1))">x</div>',
    '<p style="background-image: url(javascript:alert(1))">x</p>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<form action="javascript:alert(1)"><button>x</button></form>',
    "<input onfocus=alert(1) autofocus>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<link rel=stylesheet href=javascript:alert(1)>",
    '<video><source onerror="alert(1)"></video>',
    "<audio src=x onerror=alert(1)>",
    "<xss onpointerenter=alert(1)>hover</xss>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<!-- <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    # Markdown links and images
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](&#106;avascript:alert(1))",
    f"[x]({ENTITY_JS}alert(1))",
    "[x](jav&#x09;ascript:alert(1))",
    "[x](jav&#x0A;ascript:alert(1))",
    "[x](jav\tascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](< javascript:alert(1)>)",
    "[x](\x00javascript:alert(1))",
    "[x](%6A%61%76%61%73%63%72%69%70%74%3Aalert(1))",
    "<javascript:alert(1)>",
    "[x](vbscript:msgbox(1))",
    "[x](VBScript:msgbox(1))",
    "[x](livescript:alert(1))",
    "[x](file:///etc/passwd)",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](DATA:text/html,<script>alert(1)</script>)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk)",
    "![x](javascript:alert(1))",
    "![x](vbscript:msgbox(1))",
    '[x](https://ok.example "t\\" onmouseover=\\"alert(1)")',
    '![x](https://ok.example/a.png "t\\" onerror=\\"alert(1)")',
    '![x" onerror="alert(1)](https://ok.example/a.png)',
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "[x][ref]\n\n[ref]: data:text/html,<script>alert(1)</script>",
    "![x][img]\n\n[img]: javascript:alert(1)",
    f"[x]({POLYGLOT})",
    POLYGLOT,
    '[a](https://ok.example/?q="><script>alert(1)</script>)',
    "![x](https://ok.example/a.png)<img src=x onerror=alert(1)>",
    "*<img src=x onerror=alert(1)>*",
    "> <script>alert(1)</script>",
    "- <iframe src=javascript:alert(1)>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n<svg onload=alert(1)>\n```",
    "    <iframe src=javascript:alert(1)></iframe>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
]


def test_there_are_many_vectors() -> None:
    assert len(XSS_VECTORS) >= 40
    assert len(set(XSS_VECTORS)) == len(XSS_VECTORS)


@pytest.mark.parametrize("source", XSS_VECTORS)
def test_xss_vector_is_neutralised(source: str) -> None:
    assert_safe(render_markdown(source))


def test_script_text_is_escaped_not_dropped_silently() -> None:
    # The editor sees what they typed: as text, never as markup.
    html = render_markdown("<script>alert(1)</script>")
    parsed = assert_safe(html)
    assert "<script>alert(1)</script>" in parsed.text


def test_javascript_link_is_not_a_link() -> None:
    parsed = assert_safe(render_markdown("[click](javascript:alert(1))"))
    assert all(el.tag != "a" for el in parsed.elements)


def test_data_image_source_is_dropped() -> None:
    parsed = assert_safe(render_markdown("![pic](data:image/png;base64,iVBORw0KGgo=)"))
    for el in parsed.elements:
        if el.tag == "img":
            assert "src" not in el.attrs or url_scheme(el.attrs["src"] or "") != "data"


# -- clean_html: the second line of defence ------------------------------------------------------

RAW_HTML = [
    "<script>alert(1)</script><p>x</p>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="  JAVASCRIPT:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html,x">x</a>',
    '<img src="data:image/png;base64,iVBORw0KGgo=">',
    "<iframe src=https://evil.example></iframe>",
    "<svg><g onload=alert(1)></g></svg>",
    "<style>*{}</style><object></object><embed>",
    '<p style="color:red" onclick="x" class="c" id="i">x</p>',
    '<a href="https://ok.example" target="_blank" rel="opener">x</a>',
]


@pytest.mark.parametrize("html", RAW_HTML)
def test_clean_html_on_raw_html(html: str) -> None:
    # markdown-it never passes raw HTML through; if it ever did, nh3 still cleans it.
    assert_safe(clean_html(html))


def test_clean_html_keeps_rel_fixed() -> None:
    out = clean_html('<a href="https://ok.example" rel="opener" target="_blank">x</a>')
    [a] = parse(out).elements
    assert a.attrs == {"href": "https://ok.example", "rel": "noopener nofollow"}


# -- legitimate Markdown survives ---------------------------------------------------------------


def test_emphasis_and_strong() -> None:
    assert render_markdown("*em* and **strong**") == (
        "<p><em>em</em> and <strong>strong</strong></p>"
    )


def test_link_gets_rel() -> None:
    html = render_markdown('See [the course](https://ok.example/course?a=1&b=2 "Course map").')
    parsed = assert_safe(html)
    [a] = [el for el in parsed.elements if el.tag == "a"]
    assert a.attrs == {
        "href": "https://ok.example/course?a=1&b=2", "title": "Course map",
        "rel": "noopener nofollow",
    }  # fmt: skip
    assert "the course" in parsed.text


@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[mail](mailto:desk@news.example)", "mailto:desk@news.example"),
        ("<https://ok.example/x>", "https://ok.example/x"),
        ("[rel](/results)", "/results"),
        ("[http](http://ok.example)", "http://ok.example"),
    ],
)
def test_safe_links_survive(source: str, href: str) -> None:
    parsed = assert_safe(render_markdown(source))
    [a] = [el for el in parsed.elements if el.tag == "a"]
    assert a.attrs["href"] == href
    assert a.attrs["rel"] == "noopener nofollow"


def test_image_survives() -> None:
    html = render_markdown('![Runners at km 21](https://cdn.example/a.jpg "Half-way")')
    parsed = assert_safe(html)
    [img] = [el for el in parsed.elements if el.tag == "img"]
    assert img.attrs == {
        "src": "https://cdn.example/a.jpg", "alt": "Runners at km 21", "title": "Half-way"
    }  # fmt: skip


def test_lists_survive() -> None:
    ul = parse(render_markdown("- one\n- two\n- three"))
    assert [el.tag for el in ul.elements] == ["ul", "li", "li", "li"]
    ol = parse(render_markdown("3. three\n4. four"))
    assert [el.tag for el in ol.elements] == ["ol", "li", "li"]
    assert ol.elements[0].attrs == {"start": "3"}


def test_quote_code_rule_headings_survive() -> None:
    source = "> quoted *text*\n\n`x < y`\n\n```\nif a < b:\n```\n\n---\n\n### Sub\n\n#### Minor"
    html = render_markdown(source)
    parsed = assert_safe(html)
    tags = [el.tag for el in parsed.elements]
    for tag in ("blockquote", "em", "code", "pre", "hr", "h3", "h4"):
        assert tag in tags, html
    assert "x < y" in parsed.text
    assert "if a < b:" in parsed.text


def test_unsupported_headings_keep_their_text() -> None:
    parsed = assert_safe(render_markdown("# Big title"))
    assert parsed.text.strip() == "Big title"


def test_line_break() -> None:
    parsed = assert_safe(render_markdown("line one  \nline two"))
    assert [el.tag for el in parsed.elements] == ["p", "br"]


def test_output_is_trimmed() -> None:
    out = render_markdown("hello")
    assert out == "<p>hello</p>"
