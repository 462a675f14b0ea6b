"""The embed widget (GET /embed.js) and its iframe variant (GET /embed/{blog}) on other origins."""

from __future__ import annotations

import gzip

import httpx
import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.conftest import PageFactory
from tests.browser.helpers import (
    ARTIFACTS,
    SCREENSHOTS,
    HostSite,
    Publisher,
    wait_until,
    widget_ids,
    widget_page,
)
from tests.support.servers import PushhubProcess

pytestmark = pytest.mark.browser

# Styles of the widget's inside that a hostile host page would most like to change.
PROBED = [
    "font-family", "font-size", "font-style", "font-weight", "color", "background-color",
    "line-height", "letter-spacing", "word-spacing", "text-transform", "text-align",
    "visibility", "display", "margin-top", "padding-top", "border-left-width", "border-left-color",
]  # fmt: skip
PROBE = """([host, props]) => {
  const root = document.querySelector(host).shadowRoot;
  const out = {};
  for (const sel of ['.root', '.head', '.title', '.conn', '.list', 'article.ph-entry',
                     '.ph-title', '.ph-body', '.ph-body p', '.ph-meta', 'time', '.more']) {
    const el = root.querySelector(sel);
    if (!el) { out[sel] = null; continue; }
    const cs = getComputedStyle(el);
    out[sel] = Object.fromEntries(props.map(p => [p, cs.getPropertyValue(p)]));
    const r = el.getBoundingClientRect();
    out[sel].size = [Math.round(r.width), Math.round(r.height)];
  }
  return out;
}"""

HOSTILE_CSS = """
* { color: rgb(255, 0, 0) !important; font-family: "Comic Sans MS", cursive !important;
    font-size: 31px !important; font-style: italic !important; font-weight: 900 !important;
    line-height: 4 !important; letter-spacing: 6px !important; word-spacing: 20px !important;
    text-transform: uppercase !important; text-align: right !important; visibility: hidden; }
html, body { font: italic 40px/3 serif !important; color: red !important; background: #ff0 !important; }
p, h1, h2, h3, h4, article, section, span, time, figure, img, a, button, ul, li {
    display: none !important; margin: 40px !important; padding: 30px !important;
    border: 7px dashed red !important; background: yellow !important; }
div div, .root, .head, .title, .list, .conn, .more, .ph-entry, .ph-title, .ph-body, .ph-meta {
    display: none !important; color: red !important; }
"""


# Every WebSocket close the page sees, with its code: a failure then says who closed what.
RECORD_CLOSES = """window.__wsCloses = []; const NativeWS = WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = new NativeWS(url, protocols);
  ws.addEventListener("close", (e) => __wsCloses.push([url.split("/").pop(), e.code, e.reason]));
  return ws;
};"""


def put_widget_page(
    site: HostSite, name: str, node: PushhubProcess, widgets: list[dict[str, str]], **kw: str
) -> str:
    return site.put(name, widget_page(node.url, widgets, **kw))


def test_widget_on_another_origin_renders_and_updates(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Embedded coverage")
    old = publisher.publish(slug, "Already there.", title="Earlier")
    url = put_widget_page(host_site, f"{slug}.html", node, [{"pushhub-blog": slug}])
    assert host_site.origin != node.url  # another port: another origin

    page, watch = open_page()
    page.goto(url)
    host = page.locator("#w0")
    expect(host.locator(".conn")).to_have_attribute("data-state", "live")
    expect(host.locator(".title")).to_have_text("Embedded coverage")
    expect(host.locator(f"article[data-id='{old['id']}'] .ph-title")).to_have_text("Earlier")

    entry = publisher.publish(slug, "Fresh *news*.", title="Fresh")
    expect(host.locator(f"article[data-id='{entry['id']}'] .ph-body em")).to_have_text("news")
    assert widget_ids(page, "#w0") == [entry["id"], old["id"]]
    publisher.edit(slug, old["id"], title="Earlier, corrected")
    expect(host.locator(f"article[data-id='{old['id']}'] .ph-title")).to_have_text(
        "Earlier, corrected"
    )
    publisher.delete(slug, entry["id"])
    expect(host.locator(f"article[data-id='{entry['id']}']")).to_have_count(0)
    expect(host.locator(".sr[aria-live=polite]")).to_have_text("New update: Fresh")

    # The widget leaves the host page's globals alone.
    leaked = page.evaluate("['PushHub', 'PushHubRender', 'PUSHHUB_SCOPE'].filter(k => k in window)")
    assert leaked == []
    assert not watch.errors


def test_hostile_host_css_does_not_change_the_widget_and_the_widget_css_stays_inside(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Style isolation")
    publisher.publish(slug, "A paragraph with **weight**.", title="Styled", key=True, author="Ines")
    outside = (
        '<article class="ph-entry"><p class="ph-title">Site content named like ours</p></article>'
    )
    plain = put_widget_page(
        host_site, f"{slug}-plain.html", node, [{"pushhub-blog": slug}], body=outside
    )
    hostile = put_widget_page(
        host_site, f"{slug}-hostile.html", node, [{"pushhub-blog": slug}], css=HOSTILE_CSS
    )

    styles = []
    for url in (plain, hostile):
        page, _ = open_page()
        page.goto(url)
        expect(page.locator("#w0 .conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#w0 article.ph-entry")).to_have_count(1)
        styles.append(page.evaluate(PROBE, ["#w0", PROBED]))
        if url == plain:
            # Our class names on the site's own elements get none of our styles.
            site_entry = page.locator("body > article.ph-entry")
            assert site_entry.evaluate("e => getComputedStyle(e).borderLeftWidth") == "0px"
            assert (
                site_entry.evaluate("e => getComputedStyle(e).backgroundColor")
                == "rgba(0, 0, 0, 0)"
            )
    assert styles[0]["article.ph-entry"] is not None
    for selector, expected in styles[0].items():
        assert styles[1][selector] == expected, f"host CSS changed {selector}"


def test_widget_is_themable_with_custom_properties(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug)
    publisher.publish(slug, "Themed.")
    css = "#w0 { --pushhub-accent: rgb(0, 128, 0); --pushhub-font: Georgia, serif; }"
    url = put_widget_page(
        host_site, f"{slug}.html", node,
        [{"pushhub-blog": slug}, {"pushhub-blog": slug, "theme": "dark"}], css=css,
    )  # fmt: skip
    page, _ = open_page(color_scheme="light")
    page.goto(url)
    expect(page.locator("#w0 article.ph-entry")).to_have_count(1)
    expect(page.locator("#w1 article.ph-entry")).to_have_count(1)
    assert page.locator("#w0 .more").evaluate("e => getComputedStyle(e).color") == "rgb(0, 128, 0)"
    assert "Georgia" in page.locator("#w0 .root").evaluate("e => getComputedStyle(e).fontFamily")
    # The custom properties were set on #w0 only; #w1 keeps the defaults, in its dark theme.
    assert page.locator("#w1 .more").evaluate("e => getComputedStyle(e).color") != "rgb(0, 128, 0)"
    assert (
        page.locator("#w1 .root").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(21, 24, 29)"
    )
    assert (
        page.locator("#w0 .root").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(255, 255, 255)"
    )


def test_several_widgets_share_nothing(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    a, b = f"{slug}-a", f"{slug}-b"
    publisher.blog(a, title="Blog A")
    publisher.blog(b, title="Blog B")
    for i in range(4):
        publisher.publish(a, f"A{i}")
        publisher.publish(b, f"B{i}")
    url = put_widget_page(
        host_site, f"{slug}.html", node,
        [{"pushhub-blog": a, "max-entries": "3"}, {"pushhub-blog": b, "max-entries": "2", "height": "220"}],
    )  # fmt: skip
    page, _ = open_page()
    sockets: list[WebSocket] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.add_init_script(RECORD_CLOSES)
    page.goto(url)
    expect(page.locator("#w0 article.ph-entry")).to_have_count(3)
    expect(page.locator("#w1 article.ph-entry")).to_have_count(2)
    expect(page.locator("#w1 .title")).to_have_text("Blog B")
    before_b = widget_ids(page, "#w1")

    fresh = publisher.publish(a, "Only for A.")
    expect(page.locator(f"#w0 article[data-id='{fresh['id']}']")).to_be_visible()
    expect(page.locator("#w0 article.ph-entry")).to_have_count(3)  # max entries holds
    assert widget_ids(page, "#w1") == before_b
    assert page.evaluate(
        "document.querySelector('#w0').shadowRoot !== document.querySelector('#w1').shadowRoot"
    )
    wait_until(lambda: len(sockets) == 2, what="one connection per widget", page=page)
    assert sorted(ws.url.split("?")[0].rsplit("/", 1)[1] for ws in sockets) == sorted([a, b])
    assert page.locator("#w1 .scroller").evaluate("e => e.getBoundingClientRect().height") <= 221

    # A widget the site removes closes its own connection and nothing else.
    socket_a = next(ws for ws in sockets if f"/{a}?" in ws.url or ws.url.endswith(f"/{a}"))
    page.evaluate("document.querySelector('#w0').remove()")
    if not socket_a.is_closed():
        socket_a.wait_for_event("close", timeout=5000)
    other = next(ws for ws in sockets if ws is not socket_a)
    assert not other.is_closed(), (
        "a socket closed that should not have",
        page.evaluate("window.__wsCloses"),
    )
    fresh_b = publisher.publish(b, "B still live.")
    expect(page.locator(f"#w1 article[data-id='{fresh_b['id']}']")).to_be_visible()


def test_origin_not_on_the_allowlist_gets_nothing(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    other_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Members only", allowed_origins=[other_site.origin])
    secret = publisher.publish(slug, "Only for the allowed site.")
    widgets = [{"pushhub-blog": slug}]
    denied_url = put_widget_page(host_site, f"{slug}.html", node, widgets)
    allowed_url = put_widget_page(other_site, f"{slug}.html", node, widgets)

    page, _ = open_page()
    page.goto(denied_url)
    expect(page.locator("#w0 .conn")).to_have_attribute("data-state", "stopped")
    expect(page.locator("#w0 .note")).to_have_text("This live blog cannot be shown on this site.")
    expect(page.locator("#w0 article.ph-entry")).to_have_count(0)
    # Nor can a script on that origin read the blog by HTTP (no CORS grant).
    outcome = page.evaluate(
        "url => fetch(url).then(r => 'read ' + r.status, () => 'blocked')",
        f"{node.url}/api/blogs/{slug}/events",
    )
    assert outcome == "blocked"

    page2, _ = open_page()
    page2.goto(allowed_url)
    expect(page2.locator(f"#w0 article[data-id='{secret['id']}']")).to_be_visible()
    fresh = publisher.publish(slug, "Live for the allowed site.")
    expect(page2.locator(f"#w0 article[data-id='{fresh['id']}']")).to_be_visible()


def _iframe_host(
    site: HostSite, name: str, node: PushhubProcess, slug: str, query: str = ""
) -> str:
    """A host page with the iframe variant and the few lines of snippet docs/browser.md gives."""
    return site.put(
        name,
        f"""<!doctype html><html><head><meta charset="utf-8"><title>Frame host</title></head>
<body><h1>Site with a framed live blog</h1>
<iframe id="live" src="{node.url}/embed/{slug}{query}" title="Live updates" style="width:100%;height:150px;border:0"></iframe>
<script>
addEventListener("message", function (e) {{
  if (e.origin !== "{node.url}" || !e.data || e.data.type !== "pushhub:height") return;
  document.querySelectorAll("iframe").forEach(function (f) {{
    if (f.contentWindow === e.source) f.style.height = e.data.height + "px";
  }});
}});
</script>
<p id="after">Below the frame.</p></body></html>""",
    )


def frame_height(page: Page) -> tuple[int, int]:
    frame = page.frame_locator("#live")
    inner = frame.locator("html").evaluate("e => Math.ceil(e.getBoundingClientRect().height)")
    outer = page.locator("#live").evaluate("e => Math.round(e.getBoundingClientRect().height)")
    return int(inner), int(outer)


def test_iframe_variant_sizes_itself_through_postmessage(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Framed")
    publisher.publish(slug, "First framed entry.")
    url = _iframe_host(host_site, f"{slug}.html", node, slug, "?max=5&theme=dark")
    page, _ = open_page()
    page.goto(url)
    frame = page.frame_locator("#live")
    expect(frame.locator("#ph-conn")).to_have_attribute("data-state", "live")
    wait_until(
        lambda: frame_height(page)[0] == frame_height(page)[1], what="frame sized to content"
    )
    small = frame_height(page)[1]

    for i in range(3):
        publisher.publish(slug, f"Framed entry {i}. " * 8, title=f"Framed {i}")
    expect(frame.locator("article.ph-entry")).to_have_count(4)
    wait_until(
        lambda: frame_height(page)[0] == frame_height(page)[1] > small + 100, what="frame grew"
    )
    assert frame.locator("html").get_attribute("data-theme") == "dark"
    for _ in range(3):
        publisher.publish(slug, "More.")
    expect(frame.locator("article.ph-entry")).to_have_count(5)  # ?max=5


def test_iframe_variant_respects_the_allowlist(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    other_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Framed, allowlisted", allowed_origins=[other_site.origin])
    publisher.publish(slug, "Framed for the allowed site.")
    r = httpx.get(f"{node.url}/embed/{slug}", timeout=5)
    assert f"frame-ancestors {other_site.origin}" in r.headers["content-security-policy"]

    page, _ = open_page()
    page.goto(_iframe_host(host_site, f"{slug}.html", node, slug))
    page.wait_for_timeout(500)
    assert page.frame_locator("#live").locator("article.ph-entry").count() == 0

    page2, _ = open_page()
    page2.goto(_iframe_host(other_site, f"{slug}.html", node, slug))
    expect(page2.frame_locator("#live").locator("article.ph-entry")).to_have_count(1)


def test_pages_of_an_allowlisted_blog_still_go_live(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    other_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Allowlisted", allowed_origins=[other_site.origin])
    page, _ = open_page()
    page.goto(f"{node.url}/blogs/{slug}")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live", timeout=3000)
    entry = publisher.publish(slug, "Reaches the blog's own page.")
    expect(page.locator(f"#entry-{entry['id']}")).to_be_visible(timeout=3000)


def test_embed_js_is_small_cacheable_and_cross_origin(node: PushhubProcess) -> None:
    r = httpx.get(f"{node.url}/embed.js", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-content-type-options"] == "nosniff"
    wire = int(r.headers["content-length"])  # as sent, gzipped
    raw = len(r.content)  # httpx decodes: this is the uncompressed size
    assert len(gzip.compress(r.content, 9)) == wire
    again = httpx.get(
        f"{node.url}/embed.js", headers={"If-None-Match": r.headers["etag"]}, timeout=5
    )
    assert again.status_code == 304
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "embed-size.txt").write_text(f"embed.js: {raw} bytes, {wire} bytes gzipped\n")
    print(f"embed.js: {raw} bytes, {wire} bytes gzipped")
    assert wire < 16_000


def test_screenshots_of_the_widget(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Election night: live results")
    publisher.publish(
        slug,
        "Polls have closed in all districts. Counting starts now.",
        title="Polls closed",
        author="Desk",
    )
    publisher.publish(
        slug,
        "Turnout is **68 %**, up four points on the last election.",
        title="Turnout up",
        key=True,
        author="Sara Holm",
    )
    publisher.publish(
        slug,
        "First district declared: a narrow hold for the incumbent.",
        pinned=True,
        author="Desk",
    )
    article = (
        "<article class='story'><h2>Today's news</h2><p>"
        + "Site text around the widget. " * 12
        + "</p></article>"
    )
    css = (
        "body{font-family:Georgia,serif;max-width:900px;margin:2rem auto;padding:0 1rem;background:#faf7f0}"
        ".story{margin-bottom:1.5rem} #w0{--pushhub-accent:#1a5fb4}"
    )
    url = put_widget_page(
        host_site,
        f"{slug}.html",
        node,
        [{"pushhub-blog": slug, "max-entries": "5"}],
        css=css,
        body=article,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport, scheme in (
        ("widget-desktop-light.png", {"width": 1280, "height": 800}, "light"),
        ("widget-desktop-dark.png", {"width": 1280, "height": 800}, "dark"),
        ("widget-phone-light.png", {"width": 390, "height": 844}, "light"),
    ):
        page, _ = open_page(viewport=viewport, color_scheme=scheme, locale="en-GB")
        page.goto(url)
        expect(page.locator("#w0 article.ph-entry")).to_have_count(3)
        expect(page.locator("#w0 .conn")).to_have_attribute("data-state", "live")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        assert (SCREENSHOTS / name).stat().st_size > 10_000
