"""The live blog page GET /blogs/{blog}: first paint from the server, then live in Chromium."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageFactory
from tests.browser.helpers import (
    APPEAR_RECORDER,
    SCREENSHOTS,
    HostSite,
    Publisher,
    feed_ids,
    record_timings,
    wait_until,
)
from tests.support.servers import PushhubProcess

pytestmark = pytest.mark.browser


def open_live(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live")


def test_first_paint_is_complete_without_javascript(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug, title="Harbour <Regatta> day", summary="Boats & weather, live.")
    old = publisher.publish(slug, "The fleet leaves the harbour.", title="Start")
    key = publisher.publish(
        slug, "A **capsize** at the first mark.", title="Capsize <b>!</b>", key=True
    )
    pinned = publisher.publish(slug, "Follow the race with us.", pinned=True, author="Desk")
    pic = publisher.publish(
        slug, "Spray everywhere.",
        image={"url": "https://images.example/spray.jpg", "caption": "Boat <3>", "credit": "Photo: Ann"},
    )  # fmt: skip

    page, _ = open_page(java_script_enabled=False)
    response = page.goto(f"{node.url}/blogs/{slug}")
    assert response is not None and response.status == 200

    # Pinned first, then newest first; editor text shown as text.
    assert feed_ids(page) == [pinned["id"], pic["id"], key["id"], old["id"]]
    expect(page.locator("h1")).to_have_text("Harbour <Regatta> day")
    expect(page.locator(f"#entry-{key['id']} .ph-title")).to_have_text("Capsize <b>!</b>")
    expect(page.locator(f"#entry-{key['id']} .ph-body strong")).to_have_text("capsize")
    expect(page.locator(f"#entry-{pinned['id']} .ph-badge-pinned")).to_be_visible()
    expect(page.locator(f"#entry-{pic['id']} figcaption")).to_contain_text("Boat <3>")
    expect(page.locator(f"#entry-{pic['id']} .ph-credit")).to_have_text("Photo: Ann")
    expect(page.locator(f"#entry-{old['id']} time")).to_contain_text("UTC")
    expect(page.locator("#ph-keylist a")).to_have_attribute("href", f"#entry-{key['id']}")

    # Landmarks and the polite live region are there before any script runs.
    for selector in ("header", "main", "nav[aria-labelledby]", "footer", "[aria-live=polite]"):
        expect(page.locator(selector)).to_have_count(1)

    # Search engines: LiveBlogPosting with one liveBlogUpdate per entry.
    ld = json.loads(page.locator("script[type='application/ld+json']").text_content() or "")
    assert ld["@type"] == "LiveBlogPosting"
    assert ld["headline"] == "Harbour <Regatta> day"
    assert {u["@id"].rsplit("#entry-", 1)[1] for u in ld["liveBlogUpdate"]} == {
        e["id"] for e in (old, key, pinned, pic)
    }
    assert all(u["@type"] == "BlogPosting" for u in ld["liveBlogUpdate"])

    # The page carries the position it was rendered at.
    state = publisher.state(slug)
    main = page.locator("#ph-main")
    expect(main).to_have_attribute("data-seq", str(state["seq"]))
    expect(main).to_have_attribute("data-epoch", state["epoch"])
    # The state handed to the page's script holds the entries as readers' frames do.
    inline = json.loads(page.locator("#ph-state").text_content() or "")
    assert {e["id"] for e in inline["entries"]} == {e["id"] for e in (old, key, pinned, pic)}
    assert all("body" not in e and e["html"] for e in inline["entries"]), inline["entries"]

    # Headers: a CSP with no inline script, and the other safety headers.
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    # Every script is either a file from 'self' or a data block that never runs.
    kinds = page.eval_on_selector_all(
        "script", "els => els.map(s => s.src ? 'src' : (s.type || 'inline'))"
    )
    assert set(kinds) <= {"src", "application/ld+json", "application/json"}, kinds


def test_unknown_blog_is_an_html_404(node: PushhubProcess) -> None:
    r = httpx.get(f"{node.url}/blogs/no-such-blog", timeout=5)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "no-such-blog" in r.text and "content-security-policy" in r.headers


def test_published_entry_appears_live_and_publish_to_screen_time(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug, title="Timing")
    publisher.publish(slug, "Before the page loads.")
    page, _ = open_page(timezone_id="Asia/Kolkata", locale="en-GB")
    page.add_init_script(APPEAR_RECORDER)
    open_live(page, f"{node.url}/blogs/{slug}")
    assert page.get_attribute("#ph-conn", "data-transport") == "ws"

    samples = []
    entry: dict[str, str] = {}
    for i in range(30):
        started = time.time() * 1000
        entry = publisher.publish(slug, f"Update number {i}.", title=f"Update {i}")
        locator = page.locator(f"#entry-{entry['id']}")
        expect(locator).to_be_visible(timeout=5000)
        appeared = page.evaluate("id => window.__appeared[id]", entry["id"])
        samples.append(appeared - started)
    record_timings("publish_to_screen_ws", samples)

    # The newest is on top, and it was announced politely.
    assert feed_ids(page)[0] == entry["id"]
    expect(page.locator("#ph-announcer")).to_have_text("New update: Update 29")
    # Shown in the reader's time zone (Kolkata, UTC+5:30), with a relative time.
    created = datetime.fromisoformat(entry["created_at"]).astimezone(ZoneInfo("Asia/Kolkata"))
    clock = page.locator(f"#entry-{entry['id']} .ph-clock")
    expect(clock).to_have_text(created.strftime("%H:%M"))
    expect(page.locator(f"#entry-{entry['id']} .ph-ago")).to_have_text(re.compile(r"now|sec"))


def test_relative_times_keep_ticking(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    entry = publisher.publish(slug, "Tick tock.")
    page, _ = open_page(locale="en-GB")
    page.clock.install()
    open_live(page, f"{node.url}/blogs/{slug}")
    ago = page.locator(f"#entry-{entry['id']} .ph-ago")
    expect(ago).to_have_text(re.compile(r"now|sec"))
    page.clock.fast_forward("03:00")
    expect(ago).to_have_text(re.compile(r"^3 min"))
    page.clock.fast_forward("01:00:00")
    expect(ago).to_have_text(re.compile(r"^1 hr"))


def test_edits_pins_key_events_and_deletes_apply_in_place(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    a = publisher.publish(slug, "Alpha.", title="Alpha")
    b = publisher.publish(slug, "Bravo.", title="Bravo")
    c = publisher.publish(slug, "Charlie.", title="Charlie")
    page, _ = open_page()
    open_live(page, f"{node.url}/blogs/{slug}")
    assert feed_ids(page) == [c["id"], b["id"], a["id"]]
    # Mark nodes: an entry that does not change must keep its node (no re-render, no flash).
    page.evaluate(
        "() => document.querySelectorAll('article').forEach(a => a.__mark = a.dataset.id)"
    )

    publisher.edit(slug, b["id"], title="Bravo, corrected", body="Bravo *edited*.")
    expect(page.locator(f"#entry-{b['id']} .ph-title")).to_have_text("Bravo, corrected")
    expect(page.locator(f"#entry-{b['id']} .ph-body em")).to_have_text("edited")
    assert feed_ids(page) == [c["id"], b["id"], a["id"]]
    marks = page.eval_on_selector_all("article", "els => els.map(e => e.__mark || null)")
    assert marks == [c["id"], None, a["id"]]

    publisher.edit(slug, a["id"], pinned=True)
    expect(page.locator(f"#entry-{a['id']} .ph-badge-pinned")).to_be_visible()
    wait_until(lambda: feed_ids(page) == [a["id"], c["id"], b["id"]], what="pinned entry on top")

    publisher.edit(slug, c["id"], key=True)
    link = page.locator("#ph-keylist a")
    expect(link).to_have_text("Charlie")
    expect(page.locator("#ph-keyevents")).to_be_visible()
    link.click()
    assert page.evaluate("location.hash") == f"#entry-{c['id']}"
    expect(page.locator(f"#entry-{c['id']}")).to_be_in_viewport()

    publisher.delete(slug, b["id"])
    expect(page.locator(f"#entry-{b['id']}")).to_have_count(0)
    publisher.edit(slug, a["id"], pinned=False)
    wait_until(lambda: feed_ids(page) == [c["id"], a["id"]], what="unpinned entry back in place")
    publisher.edit(slug, c["id"], key=False)
    expect(page.locator("#ph-keyevents")).to_be_hidden()


def test_new_updates_wait_behind_a_button_when_scrolled(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    for i in range(25):
        publisher.publish(slug, f"Filler paragraph number {i}. " * 6, title=f"Filler {i}")
    page, _ = open_page(viewport={"width": 800, "height": 600})
    open_live(page, f"{node.url}/blogs/{slug}")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
    page.wait_for_function("window.scrollY > 500")
    before_ids = feed_ids(page)
    scroll_y = page.evaluate("window.scrollY")

    first = publisher.publish(slug, "Arrives while the reader is down the page.", title="Late one")
    second = publisher.publish(slug, "And another.", title="Late two")
    button = page.locator("#ph-new")
    expect(button).to_have_text("2 new updates")
    expect(button).to_be_in_viewport()
    expect(page.locator("#ph-announcer")).to_contain_text("new updates above")
    # Nothing moved under the reader.
    assert feed_ids(page) == before_ids
    assert page.evaluate("window.scrollY") == scroll_y

    button.click()
    expect(button).to_be_hidden()
    assert feed_ids(page)[:2] == [second["id"], first["id"]]
    page.wait_for_function("window.scrollY < 400")
    expect(page.locator(f"#entry-{second['id']}")).to_be_in_viewport()

    # At the top, a new entry goes straight in.
    third = publisher.publish(slug, "At the top now.")
    expect(page.locator(f"#entry-{third['id']}")).to_be_visible()
    expect(button).to_be_hidden()


def test_websocket_blocked_falls_back_to_sse(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    page, _ = open_page()
    attempts: list[str] = []

    def refuse(ws: object) -> None:
        # What a proxy that kills upgrades looks like: the socket ends before any message.
        attempts.append(ws.url)  # type: ignore[attr-defined]
        ws.close(code=1011, reason="blocked by a proxy")  # type: ignore[attr-defined]

    page.route_web_socket(re.compile(r"/ws/blogs/"), refuse)
    open_live(page, f"{node.url}/blogs/{slug}")
    assert page.get_attribute("#ph-conn", "data-transport") == "sse"
    assert len(attempts) == 1
    entry = publisher.publish(slug, "Over an event stream.")
    expect(page.locator(f"#entry-{entry['id']}")).to_be_visible()
    publisher.edit(slug, entry["id"], title="Edited over SSE")
    expect(page.locator(f"#entry-{entry['id']} .ph-title")).to_have_text("Edited over SSE")


def test_forced_sse_and_long_poll_deliver_live_updates(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    page, _ = open_page()
    page.add_init_script(APPEAR_RECORDER)
    # The test page's client forced to SSE: no WebSocket is even tried.
    open_live(page, f"{node.url}/blogs/{slug}?transport=sse")
    assert page.get_attribute("#ph-conn", "data-transport") == "sse"
    samples = []
    for i in range(10):
        started = time.time() * 1000
        entry = publisher.publish(slug, f"SSE update {i}.")
        expect(page.locator(f"#entry-{entry['id']}")).to_be_visible(timeout=5000)
        samples.append(page.evaluate("id => window.__appeared[id]", entry["id"]) - started)
    record_timings("publish_to_screen_sse", samples)

    # WebSocket and SSE both blocked on the way: long-polling the events endpoint.
    page2, _ = open_page()
    page2.add_init_script(APPEAR_RECORDER)
    page2.route_web_socket(re.compile(r"/ws/blogs/"), lambda ws: ws.close(code=1011))
    page2.route(re.compile(r"/sse/blogs/"), lambda route: route.abort())
    open_live(page2, f"{node.url}/blogs/{slug}")
    assert page2.get_attribute("#ph-conn", "data-transport") == "poll"
    samples = []
    for i in range(10):
        started = time.time() * 1000
        entry = publisher.publish(slug, f"Poll update {i}.")
        expect(page2.locator(f"#entry-{entry['id']}")).to_be_visible(timeout=5000)
        samples.append(page2.evaluate("id => window.__appeared[id]", entry["id"]) - started)
    record_timings("publish_to_screen_long_poll", samples)
    assert len(set(feed_ids(page2))) == len(feed_ids(page2)) == 20


def test_screenshots_of_the_page(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    open_page: PageFactory,
    host_site: HostSite,
) -> None:
    photo = host_site.put("finish-line.svg", FINISH_LINE_SVG)
    publisher.blog(
        slug,
        title="City Half Marathon: live",
        summary="Every kilometre of the race, from the start gun to the last finisher.",
    )
    publisher.publish(
        slug,
        "Runners gather on the bridge. Temperature **11 °C**, light wind.",
        title="Warm-up",
        author="Rui Costa",
    )
    publisher.publish(
        slug,
        "The gun goes off; the elite group sets a fast pace.",
        title="We are under way",
        key=True,
        author="Rui Costa",
    )
    publisher.publish(
        slug, "The leader crosses the line in *1:01:12*, a course record.",
        title="Course record!", key=True, author="Mia Lind",
        image={"url": photo, "caption": "The finish line on the river front", "credit": "Pushhub demo"},
    )  # fmt: skip
    publisher.publish(
        slug,
        "Road closures end at 14:00. [Transport info](https://transport.example/).",
        pinned=True,
        author="Desk",
    )

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, viewport in (
        ("desktop", {"width": 1280, "height": 900}),
        ("phone", {"width": 390, "height": 844}),
    ):
        page, _ = open_page(viewport=viewport, locale="en-GB")
        open_live(page, f"{node.url}/blogs/{slug}")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        # Readable on a phone: nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        backgrounds = set()
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            backgrounds.add(page.evaluate("getComputedStyle(document.body).backgroundColor"))
            path = SCREENSHOTS / f"page-{width}-{scheme}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 10_000
        assert len(backgrounds) == 2  # light and dark really differ


FINISH_LINE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="800" height="400" viewBox="0 0 800 400">
<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="#6fb1fc"/><stop offset="1" stop-color="#d8ecff"/></linearGradient></defs>
<rect width="800" height="400" fill="url(#sky)"/>
<rect y="260" width="800" height="140" fill="#5b5f66"/>
<g fill="#fff"><rect x="380" y="260" width="40" height="140"/></g>
<rect x="120" y="90" width="12" height="190" fill="#333"/><rect x="668" y="90" width="12" height="190" fill="#333"/>
<rect x="120" y="80" width="560" height="44" fill="#c8102e"/>
<text x="400" y="111" font-family="sans-serif" font-size="28" font-weight="700" fill="#fff" text-anchor="middle">FINISH</text>
<circle cx="300" cy="232" r="14" fill="#222"/><rect x="292" y="246" width="16" height="34" fill="#f5a623"/>
</svg>
"""
