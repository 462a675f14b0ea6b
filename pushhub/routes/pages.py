"""What readers' browsers fetch: the live blog page, the embed widget, its iframe variant and the
files of client/js/.

The page is rendered here from the blog's current state, so it reads fine with JavaScript off
and for search engines; it carries the `seq` and `epoch` it was rendered at, and page.js
resumes the stream from exactly there, so nothing published in between is lost or doubled.
Editor text is escaped; only the entry `html` (sanitized when it was written) goes in as HTML.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from pushhub.protocol import reader_entry


def _client_dir() -> Path:
    # A checkout (or editable install) serves client/js/ itself; an installed package carries
    # a copy in <prefix>/share/pushhub/client-js (pyproject's data-files).
    checkout = Path(__file__).resolve().parents[2] / "client" / "js"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "pushhub" / "client-js"


CLIENT_DIR = _client_dir()

_SLUG = re.compile(r"[a-z0-9-]{1,64}")
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)
_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The widget ships as one file: the client, the renderer and the widget in one closure, so the
# host page gets no globals from it.
_EMBED_PARTS = ("pushhub.js", "render.js", "embed.js")
_PAGE_SCRIPTS = ("pushhub.js", "render.js", "page.js")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_THEMES = ("auto", "light", "dark")
FRAME_MAX_DEFAULT = 20
JSONLD_UPDATES = 100


class BlogView(Protocol):
    """What the service's `read_blog` returns: the blog, its ordered entries and its position."""

    @property
    def blog(self) -> Mapping[str, Any]: ...
    @property
    def entries(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def seq(self) -> int: ...
    @property
    def epoch(self) -> str: ...


# --- static files --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    version: str
    content_type: str


_assets: dict[str, tuple[tuple[tuple[int, int], ...], Asset]] = {}


def _stamps(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    out = []
    for name in names:
        st = (CLIENT_DIR / name).stat()
        out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def load_asset(key: str, names: Sequence[str], content_type: str) -> Asset:
    """The file (or the bundle of files) with its gzip form, rebuilt when a file changes."""
    stamps = _stamps(names)
    cached = _assets.get(key)
    if cached is not None and cached[0] == stamps:
        return cached[1]
    parts = [(CLIENT_DIR / name).read_bytes() for name in names]
    if len(parts) == 1:
        body = parts[0]
    else:
        code = "".join(compact_js(p.decode("utf-8")) for p in parts)
        body = (
            f"/*! pushhub embed.js ({' + '.join(names)}); readable sources in /static/ */\n"
            f"(function () {{\nvar PUSHHUB_SCOPE = {{}};\n{code}}})();\n"
        ).encode()
    digest = hashlib.sha256(body).hexdigest()
    asset = Asset(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=f'W/"{digest[:32]}"',
        version=digest[:12],
        content_type=content_type,
    )
    _assets[key] = (stamps, asset)
    return asset


def compact_js(source: str) -> str:
    """Drop comment-only lines, blank lines and indentation, keeping every other line as it is.

    Line by line, so it is sound only for files without template literals or strings that span
    lines, which client/js/ does not use (tests/browser/test_client.py checks). Newlines stay, so
    automatic semicolon insertion sees the same code.
    """
    out = []
    in_comment = False
    for line in source.splitlines():
        text = line.strip()
        if in_comment:
            in_comment = not text.endswith("*/")
            continue
        if text.startswith("/*") and (text.endswith("*/") or "*/" not in text):
            in_comment = not text.endswith("*/")
            continue
        if text and not text.startswith("//"):
            out.append(text)
    return "\n".join(out) + "\n"


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _asset_response(request: Request, asset: Asset) -> Response:
    # A versioned URL (?v=<hash>, as the page links them) never changes; others revalidate.
    immutable = request.query_params.get("v") == asset.version
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        # Other sites load these (the widget, module imports), also from pages with COEP.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    match = request.headers.get("if-none-match", "")
    if match and (match.strip() == "*" or asset.etag in (t.strip() for t in match.split(","))):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if _accepts_gzip(request):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.content_type, headers=headers)


async def static_file(request: Request) -> Response:
    """GET /static/{path}: a file of client/js/ (scripts and styles only)."""
    name = str(request.path_params["path"])
    suffix = Path(name).suffix
    if not _STATIC_NAME.fullmatch(name) or suffix not in _CONTENT_TYPES:
        return _text_404()
    try:
        asset = load_asset(name, (name,), _CONTENT_TYPES[suffix])
    except OSError:
        return _text_404()
    return _asset_response(request, asset)


async def embed_js(request: Request) -> Response:
    """GET /embed.js: the widget, self-contained."""
    asset = load_asset("embed.js", _EMBED_PARTS, _CONTENT_TYPES[".js"])
    return _asset_response(request, asset)


def _text_404() -> Response:
    return Response(
        "not found\n", status_code=404, media_type="text/plain; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )  # fmt: skip


def _static_url(name: str) -> str:
    suffix = Path(name).suffix
    return f"/static/{name}?v={load_asset(name, (name,), _CONTENT_TYPES[suffix]).version}"


# --- HTML ----------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _script_json(doc: object) -> str:
    """JSON that is safe inside <script>: nothing in it can close the element or open a comment."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _utc_text(iso: object) -> str:
    """The time as the page shows it before (or without) its script: in UTC, said so."""
    try:
        d = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso or "")
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}, {d.hour:02d}:{d.minute:02d} UTC"


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _plain_text(fragment: object) -> str:
    parser = _TextOf()
    parser.feed(str(fragment or ""))
    parser.close()
    return " ".join("".join(parser.parts).split())


def entry_label(entry: Mapping[str, Any], limit: int = 90) -> str:
    """An entry's title, else the start of its text: for the key events list and JSON-LD."""
    text = " ".join(str(entry.get("title") or "").split()) or _plain_text(entry.get("html"))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe_image(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    image = entry.get("image")
    if not isinstance(image, Mapping):
        return None
    url = str(image.get("url") or "")
    return image if url.startswith(("http://", "https://")) else None


def entry_html(entry: Mapping[str, Any], heading: str = "h2") -> str:
    """One entry as an <article>: the same markup client/js/render.js builds."""
    eid = _e(entry.get("id"))
    classes = "ph-entry"
    if entry.get("pinned"):
        classes += " ph-pinned"
    if entry.get("key"):
        classes += " ph-key"
    out = [
        f'<article class="{classes}" id="entry-{eid}" data-id="{eid}" tabindex="-1">',
        '<div class="ph-meta">',
    ]
    if entry.get("pinned"):
        out.append('<span class="ph-badge ph-badge-pinned">Pinned</span>')
    if entry.get("key"):
        out.append('<span class="ph-badge ph-badge-key">Key event</span>')
    created = entry.get("created_at")
    out.append(
        f'<time class="ph-time" datetime="{_e(created)}"><span class="ph-clock">'
        f'{_e(_utc_text(created))}</span><span class="ph-ago"></span></time>'
    )
    if entry.get("author"):
        out.append(f'<span class="ph-author">{_e(entry["author"])}</span>')
    out.append("</div>")
    if entry.get("title"):
        out.append(f'<{heading} class="ph-title">{_e(entry["title"])}</{heading}>')
    # Sanitized when it was written (pushhub/sanitize.py): the one field that is HTML.
    out.append(f'<div class="ph-body">{entry.get("html") or ""}</div>')
    image = _safe_image(entry)
    if image is not None:
        caption, credit = image.get("caption") or "", image.get("credit") or ""
        out.append(
            f'<figure class="ph-figure"><img src="{_e(image["url"])}" alt="{_e(caption)}" '
            'loading="lazy" decoding="async">'
        )
        if caption or credit:
            out.append("<figcaption>")
            if caption:
                out.append(f'<span class="ph-caption">{_e(caption)}</span>')
            if credit:
                out.append(f'<span class="ph-credit">{_e(credit)}</span>')
            out.append("</figcaption>")
        out.append("</figure>")
    out.append("</article>")
    return "".join(out)


def live_blog_jsonld(view: BlogView, url: str) -> dict[str, Any]:
    """schema.org LiveBlogPosting with the newest entries as liveBlogUpdate items."""
    blog = view.blog
    doc: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": url,
        "url": url,
        "headline": blog.get("title", ""),
        "description": blog.get("summary", ""),
        "datePublished": blog.get("created_at"),
        "dateModified": blog.get("updated_at"),
        "coverageStartTime": blog.get("created_at"),
    }
    if blog.get("status") == "ended":
        doc["coverageEndTime"] = blog.get("updated_at")
    newest = sorted(view.entries, key=lambda e: str(e.get("created_at")), reverse=True)
    updates = []
    for e in newest[:JSONLD_UPDATES]:
        item: dict[str, Any] = {
            "@type": "BlogPosting",
            "@id": f"{url}#entry-{e.get('id')}",
            "url": f"{url}#entry-{e.get('id')}",
            "headline": entry_label(e, 110),
            "datePublished": e.get("created_at"),
            "dateModified": e.get("updated_at"),
            "articleBody": _plain_text(e.get("html")),
        }
        if e.get("author"):
            item["author"] = {"@type": "Person", "name": e["author"]}
        image = _safe_image(e)
        if image is not None:
            item["image"] = image["url"]
        updates.append(item)
    doc["liveBlogUpdate"] = updates
    return doc


def _csp(frame_ancestors: str) -> str:
    # No inline script at all: the JSON blocks are data (never executed), the code is 'self'.
    # Trusted Types confine HTML insertion to render.js's one policy.
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src http: https: data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {frame_ancestors}",
            "require-trusted-types-for 'script'",
            "trusted-types pushhub",
        )
    )


def frame_ancestors(allowed_origins: object) -> str:
    """The CSP frame-ancestors for the iframe variant: the blog's allowlist, or anyone."""
    if not isinstance(allowed_origins, list) or not allowed_origins:
        return "*"
    good = [o for o in allowed_origins if isinstance(o, str) and _ORIGIN.fullmatch(o)]
    return " ".join(good) if good else "'none'"


def _html_response(body: str, status: int, frame_from: str) -> HTMLResponse:
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Content-Security-Policy": _csp(frame_from),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            # The page is a snapshot at `seq`; the script catches up, but a fresh one is cheaper.
            "Cache-Control": "no-cache",
        },
    )


def _head(title: str, description: str, extra: str = "", theme: str = "auto") -> str:
    root = f' data-theme="{theme}"' if theme in ("light", "dark") else ""
    return (
        f'<!doctype html>\n<html lang="en"{root}>\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        # No favicon request (and no 404 in the console) for a page that has none.
        '<link rel="icon" href="data:,">\n'
        f"<title>{_e(title)}</title>\n"
        f'<meta name="description" content="{_e(description)}">\n'
        f'<link rel="stylesheet" href="{_e(_static_url("pushhub.css"))}">\n'
        f"{extra}</head>\n"
    )


def render_page(view: BlogView, url: str, *, frame: bool, max_entries: int, theme: str) -> str:
    """The live blog page, or with `frame` its compact iframe variant."""
    blog = view.blog
    title = str(blog.get("title") or blog.get("slug") or "")
    summary = str(blog.get("summary") or "")
    # The script gets every entry even when fewer are shown: a delete or an unpin brings one
    # further down into view, and it must not look new then.
    # As in readers' frames, the entries go without their Markdown source.
    entries_for_script = [reader_entry(e) for e in view.entries]
    state = {"blog": blog, "entries": entries_for_script, "seq": view.seq, "epoch": view.epoch}
    entries = list(view.entries)[:max_entries] if frame else list(view.entries)
    scripts = "".join(
        f'<script src="{_e(_static_url(name))}" defer></script>\n' for name in _PAGE_SCRIPTS
    )
    extra = (
        (f'<link rel="canonical" href="{_e(url)}">\n' if not frame else "")
        + ('<base target="_blank">\n' if frame else "")
        + (
            '<script type="application/ld+json">'
            f"{_script_json(live_blog_jsonld(view, url))}</script>\n"
            if not frame
            else ""
        )
        + f'<script type="application/json" id="ph-state">{_script_json(state)}</script>\n'
        + scripts
    )
    head = _head(title if frame else f"{title} · live", summary, extra, theme)
    status = "ended" if blog.get("status") == "ended" else "live"
    keys = [e for e in entries if e.get("key")]
    key_items = "".join(
        f'<li><a href="#entry-{_e(e.get("id"))}">{_e(entry_label(e))}</a></li>' for e in keys
    )
    heading = "h3" if frame else "h2"
    feed = "".join(entry_html(e, heading) for e in entries)
    page_link = url.replace("/embed/", "/blogs/", 1) if frame else url
    footer = (
        f'<a href="{_e(page_link)}">Open the full live blog</a>'
        if frame
        else "Updates appear here as they are published."
    )
    body = f"""<body{' class="ph-frame"' if frame else ""}>
<a class="ph-skip" href="#ph-feed">Skip to updates</a>
<header class="ph-masthead">
<div class="ph-masthead-inner">
<div class="ph-topline">
<p class="ph-flag" id="ph-flag" data-status="{status}">{"Coverage ended" if status == "ended" else "Live coverage"}</p>
<p class="ph-conn" id="ph-conn" data-state="connecting" hidden><span class="ph-dot"></span><span id="ph-conn-text">Connecting…</span></p>
</div>
<h1 id="ph-title">{_e(title)}</h1>
<p class="ph-summary" id="ph-summary">{_e(summary)}</p>
</div>
</header>
<div class="ph-layout">
<nav class="ph-keyevents" id="ph-keyevents" aria-labelledby="ph-key-h"{"" if keys else " hidden"}>
<h2 id="ph-key-h">Key events</h2>
<ol id="ph-keylist">{key_items}</ol>
</nav>
<main id="ph-main" data-blog="{_e(blog.get("slug"))}" data-seq="{view.seq}" data-epoch="{_e(view.epoch)}" data-layout="{"frame" if frame else "page"}"{f' data-max="{max_entries}"' if frame else ""}>
<h2 class="ph-sr">Updates, newest first</h2>
<div id="ph-top"></div>
<button type="button" class="ph-new" id="ph-new" hidden>New updates</button>
<div class="ph-feed" id="ph-feed">{feed}</div>
<p class="ph-empty" id="ph-empty"{" hidden" if entries else ""}>No updates yet. This page updates itself.</p>
</main>
</div>
<footer class="ph-footer">{footer}</footer>
<div class="ph-sr" id="ph-announcer" role="status" aria-live="polite" aria-atomic="true"></div>
</body>
</html>
"""  # noqa: E501
    return head + body


def render_not_found(slug: str) -> str:
    head = _head("No such live blog", "This live blog does not exist.")
    return (
        head + '<body>\n<main class="ph-layout" id="ph-main-missing">\n'
        "<h1>No live blog here</h1>\n"
        f"<p>There is no live blog called “{_e(slug)}”. Check the address.</p>\n"
        "</main>\n</body>\n</html>\n"
    )


async def _read(request: Request, slug: str) -> BlogView | None:
    from pushhub.errors import NotFound

    if not _SLUG.fullmatch(slug):
        return None
    try:
        view: BlogView = await request.app.state.service.read_blog(slug)
    except NotFound:
        return None
    return view


def _page_url(request: Request) -> str:
    return str(request.url.replace(query="", fragment=""))


async def blog_page(request: Request) -> Response:
    """GET /blogs/{blog}: the live blog page."""
    slug = str(request.path_params["blog"])
    view = await _read(request, slug)
    if view is None:
        return _html_response(render_not_found(slug), 404, "'self'")
    body = render_page(view, _page_url(request), frame=False, max_entries=0, theme="auto")
    return _html_response(body, 200, "'self'")


async def embed_frame(request: Request) -> Response:
    """GET /embed/{blog}?max=N&theme=light|dark|auto: the iframe variant of the widget."""
    slug = str(request.path_params["blog"])
    view = await _read(request, slug)
    if view is None:
        return _html_response(render_not_found(slug), 404, "*")
    raw_max = request.query_params.get("max", "")
    ok = raw_max.isascii() and raw_max.isdigit() and len(raw_max) <= 6  # "²" is a digit too
    max_entries = int(raw_max) if ok else FRAME_MAX_DEFAULT
    max_entries = min(max(max_entries, 1), 100)
    theme = request.query_params.get("theme", "auto")
    theme = theme if theme in _THEMES else "auto"
    body = render_page(view, _page_url(request), frame=True, max_entries=max_entries, theme=theme)
    return _html_response(body, 200, frame_ancestors(view.blog.get("allowed_origins")))


def routes() -> list[BaseRoute]:
    return [
        Route("/blogs/{blog}", blog_page, methods=["GET"]),
        Route("/embed.js", embed_js, methods=["GET"]),
        Route("/embed/{blog}", embed_frame, methods=["GET"]),
        Route("/static/{path:path}", static_file, methods=["GET"]),
    ]
