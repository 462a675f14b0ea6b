"""The files behind the reader pages, served by pushhub/routes/pages.py (no browser needed)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from pushhub.routes import pages

JS_FILES = sorted(pages.CLIENT_DIR.glob("*.js")) + sorted(pages.CLIENT_DIR.glob("*.mjs"))


@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=Starlette(routes=pages.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://pushhub.test") as client:
        yield client


def test_client_js_has_nothing_that_spans_lines_inside_a_literal() -> None:
    """compact_js works line by line: sound only without template literals or continued strings."""
    assert JS_FILES
    for path in JS_FILES:
        text = path.read_text(encoding="utf-8")
        assert "`" not in text, f"{path.name}: template literal"
        assert not re.search(r"\\\n", text), f"{path.name}: line continuation"


def test_compact_js_drops_comments_and_indentation_only() -> None:
    source = (
        "/*! banner\n * more\n */\n(function () {\n  // a comment line\n"
        '  var a = "x // not a comment"; // kept: code before it\n'
        "  /* one-line comment */\n  /* before */ var b = 1;\n\n  return a + b;\n})();\n"
    )
    assert pages.compact_js(source) == (
        '(function () {\nvar a = "x // not a comment"; // kept: code before it\n'
        "/* before */ var b = 1;\nreturn a + b;\n})();\n"
    )


async def test_static_files_are_scripts_and_styles_from_client_js_only(
    c: httpx.AsyncClient,
) -> None:
    for name in ("pushhub.js", "render.js", "page.js", "embed.js", "pushhub.mjs"):
        r = await c.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"] == "text/javascript; charset=utf-8"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["access-control-allow-origin"] == "*"
    assert (await c.get("/static/pushhub.css")).headers["content-type"] == "text/css; charset=utf-8"
    for bad in (
        "../../pyproject.toml",
        "..%2F..%2Fpyproject.toml",
        ".hidden.js",
        "x.html",
        "nope.js",
    ):
        assert (await c.get(f"/static/{bad}")).status_code == 404, bad


async def test_static_caching_gzip_and_versioned_urls(c: httpx.AsyncClient) -> None:
    r = await c.get("/static/pushhub.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == "no-cache"
    assert r.content == (pages.CLIENT_DIR / "pushhub.js").read_bytes()
    assert (
        await c.get("/static/pushhub.js", headers={"If-None-Match": r.headers["etag"]})
    ).status_code == 304
    plain = await c.get("/static/pushhub.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    version = pages.load_asset("pushhub.js", ("pushhub.js",), "text/javascript").version
    pinned = await c.get(f"/static/pushhub.js?v={version}")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_embed_js_is_one_closure_of_the_three_sources(c: httpx.AsyncClient) -> None:
    r = await c.get("/embed.js")
    assert r.status_code == 200
    body = r.text
    assert body.startswith("/*! pushhub embed.js")
    assert "var PUSHHUB_SCOPE = {};" in body and body.rstrip().endswith("})();")
    for marker in ("root.PushHub = PushHub", "root.PushHubRender", "data-pushhub-blog"):
        assert marker in body


def test_frame_ancestors_follow_the_allowlist() -> None:
    assert pages.frame_ancestors([]) == "*"
    assert pages.frame_ancestors(None) == "*"
    assert pages.frame_ancestors(["https://a.example", "http://b.example:8080"]) == (
        "https://a.example http://b.example:8080"
    )
    # Nothing that could end the directive gets into the header.
    assert pages.frame_ancestors(["https://a.example; script-src *"]) == "'none'"


def test_script_json_cannot_close_its_element() -> None:
    text = pages._script_json({"t": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
