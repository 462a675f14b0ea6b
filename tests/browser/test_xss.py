"""Hostile entries never run script in the page, the widget or the iframe variant."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageFactory
from tests.browser.helpers import HostSite, Publisher, Watch, widget_page
from tests.support.servers import PushhubProcess

pytestmark = pytest.mark.browser

MARK = "XSS-MARKER"
RUN = f"console.log('{MARK}');window.__xss=1;alert('{MARK}')"

# Entry bodies (Markdown, which allows raw HTML) an attacker with an editor token might try.
BODIES = [
    f"<script>{RUN}</script>",
    f'<img src=x onerror="{RUN}">',
    f'<svg onload="{RUN}"><circle r=5></circle></svg>',
    f'<iframe src="javascript:{RUN}"></iframe>',
    f"[a markdown link](javascript:{RUN})",
    f'<a href="javascript:{RUN}">raw link</a>',
    '<a href="&#106;avascript:alert(1)">entity link</a>',
    f'<details open ontoggle="{RUN}"><summary>s</summary></details>',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{RUN}">',
    f'<noscript><p title="</noscript><img src=x onerror={RUN}>"></noscript>',
    f'<form><button formaction="javascript:{RUN}">go</button></form>',
    f'<input autofocus onfocus="{RUN}">',
    f'<video><source onerror="{RUN}"></video>',
    f'<object data="javascript:{RUN}"></object>',
    f'<div style="background:url(javascript:{RUN})" onmouseover="{RUN}">hover me</div>',
    '<a href="data:text/html,<script>alert(1)</script>">data link</a>',
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    f'"><img src=x onerror={RUN}>',
    f"<body onload={RUN}>",
    f"<template><img src=x onerror={RUN}></template>",
    f'![pic](x" onerror="{RUN})',
    f"<scr<script>ipt>{RUN}</script>",
    f'<a href=" javascript:{RUN}">spaced</a>',
]
# Plain-text fields: shown as text, whatever they contain.
TEXT = f'<img src=x onerror="{RUN}"><b>bold?</b>'


def publish_payloads(
    publisher: Publisher, slug: str, bodies: list[str], tag: str
) -> list[dict[str, Any]]:
    return [
        publisher.publish(
            slug,
            body,
            title=f"{TEXT} {tag}{i}",
            author=TEXT,
            image={"url": "https://img.example/x.png", "caption": TEXT, "credit": TEXT},
        )
        for i, body in enumerate(bodies)
    ]


AUDIT = """(root) => {
  const bad = [];
  for (const el of root.querySelectorAll('*')) {
    const tag = el.localName;
    if (['script', 'iframe', 'object', 'embed', 'svg', 'math', 'form', 'input', 'button',
         'base', 'meta', 'style', 'template', 'noscript', 'video', 'source'].includes(tag)
        && !el.matches('.ph-new, .new')) bad.push('element ' + tag);
    for (const a of el.attributes) {
      if (a.name.startsWith('on')) bad.push(tag + ' ' + a.name);
      if (a.name === 'style') bad.push(tag + ' style');
      if (['href', 'src', 'action', 'formaction', 'data'].includes(a.name)
          && !/^(https?:|mailto:|#)/i.test(a.value.trim())) bad.push(tag + ' ' + a.name + '=' + a.value);
    }
  }
  return bad;
}"""


def assert_nothing_ran(page: Page, watch: Watch) -> None:
    page.wait_for_timeout(300)  # let any late image error handler fire, were there one
    assert watch.dialogs == []
    assert watch.markers(MARK) == []
    assert page.evaluate("window.__xss") is None
    for frame in page.frames:
        assert frame.evaluate("window.__xss") is None


def test_xss_payloads_never_run_in_the_page(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug, title=TEXT, summary=TEXT)
    rendered = publish_payloads(publisher, slug, BODIES, "server")
    page, watch = open_page()
    page.goto(f"{node.url}/blogs/{slug}")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live")
    live = publish_payloads(publisher, slug, BODIES, "live")
    expect(page.locator("article.ph-entry")).to_have_count(len(rendered) + len(live))
    # Make the payloads that need a reader's hand try their luck too.
    page.hover("text=hover me")
    for link in page.locator(".ph-body a").all():
        link.click(modifiers=["Alt"], no_wait_after=True, timeout=2000)

    assert_nothing_ran(page, watch)
    assert page.evaluate(AUDIT, page.query_selector("#ph-feed")) == []
    expect(page.locator("h1")).to_have_text(TEXT)
    for entry in (rendered[0], live[0]):
        art = page.locator(f"#entry-{entry['id']}")
        expect(art.locator(".ph-title")).to_have_text(entry["title"])
        expect(art.locator(".ph-author")).to_have_text(TEXT)
        expect(art.locator(".ph-caption")).to_have_text(TEXT)
        expect(art.locator(".ph-credit")).to_have_text(TEXT)


def test_xss_payloads_never_run_in_the_widget_or_the_iframe(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title=TEXT)
    publish_payloads(publisher, slug, BODIES[:12], "before")
    frame_tag = f'<iframe id="frame" src="{node.url}/embed/{slug}?max=100" style="width:100%;height:400px"></iframe>'
    url = host_site.put(
        f"{slug}.html",
        widget_page(node.url, [{"pushhub-blog": slug, "max-entries": "100"}], body=frame_tag),
    )
    page, watch = open_page()
    page.goto(url)
    expect(page.locator("#w0 .conn")).to_have_attribute("data-state", "live")
    frame = page.frame_locator("#frame")
    expect(frame.locator("#ph-conn")).to_have_attribute("data-state", "live")
    publish_payloads(publisher, slug, BODIES[12:], "after")
    expect(page.locator("#w0 article.ph-entry")).to_have_count(len(BODIES))
    expect(frame.locator("article.ph-entry")).to_have_count(len(BODIES))
    page.locator("#w0").locator("text=hover me").hover()

    assert_nothing_ran(page, watch)
    assert (
        page.evaluate(AUDIT, page.evaluate_handle("document.querySelector('#w0').shadowRoot")) == []
    )
    assert frame.locator("#ph-feed").evaluate(AUDIT) == []
    expect(page.locator("#w0 .title")).to_have_text(TEXT)
    expect(page.locator("#w0 .ph-author").first).to_have_text(TEXT)


# Vectors aimed at plain-text fields and at the places they are written into: attributes,
# the page's JSON-LD <script>, templating, URLs. With BODIES this makes 50+.
TEXT_VECTORS = [
    f"</script><script>{RUN}</script>",
    f'</script><img src=x onerror="{RUN}">',
    f'"}}]</script><script>{RUN}</script>',
    f"' onmouseover='{RUN}' x='",
    f'" onfocus="{RUN}" autofocus="',
    f"<style>@import 'javascript:{RUN}';</style>",
    f"{{{{constructor.constructor('{RUN}')()}}}}",
    f"${{{RUN}}}",
    f"<a href=javascript:{RUN}>x</a>",
    f"<img src=x:alert(1) onerror={RUN}//",
    f"<svg><script>{RUN}</script></svg>",
    f"<!--<img src=--><img src=x onerror={RUN}//>",
    f"<textarea></textarea><img src=x onerror={RUN}>",
    f"<title></title><img src=x onerror={RUN}>",
    f"&lt;img src=x onerror={RUN}&gt;",
    f"<img src=x onerror&#61;{RUN}>",
    f"\u202e<img src=x onerror={RUN}>",
    f"<marquee onstart={RUN}>m</marquee>",
    f"<isindex action=javascript:{RUN} type=image>",
    f"<keygen autofocus onfocus={RUN}>",
    f"<audio src=x onerror={RUN}>",
    f"<embed src=javascript:{RUN}>",
    f"<link rel=import href=javascript:{RUN}>",
    f"<select autofocus onfocus={RUN}>",
    f"<xss id=x tabindex=1 onfocusin={RUN}></xss>",
    f"<a id=x tabindex=1 onbeforeactivate={RUN}></a>",
    f"javascript:{RUN}",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
]
VECTORS = BODIES + TEXT_VECTORS
BAD_IMAGE_URLS = [
    f"javascript:{RUN}",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x.png",
    " javascript:alert(1)",
    "jav\tascript:alert(1)",
]


def test_fifty_vectors_through_every_field_never_run(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    assert len(VECTORS) >= 50
    for url in BAD_IMAGE_URLS:
        r = publisher.http.post(
            f"/api/blogs/{slug}/entries", json={"body": "x", "image": {"url": url}}
        )
        assert r.status_code in (404, 422), (url, r.status_code)
    publisher.blog(slug, title="Safe start", summary="Safe start")
    url = host_site.put(
        f"{slug}.html", widget_page(node.url, [{"pushhub-blog": slug, "max-entries": "100"}])
    )
    live_page, live_watch = open_page()
    live_page.goto(f"{node.url}/blogs/{slug}")
    expect(live_page.locator("#ph-conn")).to_have_attribute("data-state", "live")
    widget, widget_watch = open_page()
    widget.goto(url)
    expect(widget.locator("#w0 .conn")).to_have_attribute("data-state", "live")
    for i, v in enumerate(VECTORS):
        publisher.publish(
            slug, v, title=v[:300], author=v[:120],
            image={"url": f"https://img.example/{i}.png", "caption": v[:1000], "credit": v[:300]},
        )  # fmt: skip
        publisher.blog(slug, title=v[:300], summary=v)
    expect(live_page.locator("article.ph-entry")).to_have_count(len(VECTORS))
    expect(widget.locator("#w0 article.ph-entry")).to_have_count(len(VECTORS))
    expect(live_page.locator("h1")).to_have_text(VECTORS[-1])
    # The server-rendered page, with every vector in its HTML and its JSON-LD.
    rendered, rendered_watch = open_page()
    rendered.goto(f"{node.url}/blogs/{slug}")
    expect(rendered.locator("article.ph-entry")).to_have_count(len(VECTORS))
    frame_page, frame_watch = open_page()
    frame_page.goto(f"{node.url}/embed/{slug}?max=100")
    expect(frame_page.locator("article.ph-entry")).to_have_count(len(VECTORS))
    for page, watch in (
        (live_page, live_watch), (widget, widget_watch),
        (rendered, rendered_watch), (frame_page, frame_watch),
    ):  # fmt: skip
        assert_nothing_ran(page, watch)
    for page in (live_page, rendered, frame_page):
        assert page.evaluate(AUDIT, page.query_selector("#ph-feed")) == []
        # No script element beyond our own files and the two data blocks (JSON-LD, state):
        # a breakout out of either would add one with no type and no src.
        scripts = page.evaluate("() => [...document.scripts].map(s => [s.type, s.src])")
        for kind, src in scripts:
            data_block = kind in ("application/ld+json", "application/json") and not src
            assert data_block or src.startswith(f"{node.url}/static/"), scripts
    assert (
        widget.evaluate(AUDIT, widget.evaluate_handle("document.querySelector('#w0').shadowRoot"))
        == []
    )
    entry = rendered.locator("article.ph-entry").first
    expect(entry.locator(".ph-title")).to_have_text(VECTORS[-1][:300])
    expect(entry.locator(".ph-caption")).to_have_text(VECTORS[-1])
