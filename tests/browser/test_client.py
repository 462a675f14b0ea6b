"""pushhub.js against a scripted server: Playwright answers the WebSocket, the test writes frames.

The real server never sends duplicates, gaps or unsanitized HTML; these tests make sure the
client would cope if it (or a proxy, or a bug) ever did.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.conftest import PageFactory
from tests.browser.helpers import HostSite, Publisher, feed_ids, wait_until, widget_page
from tests.browser.test_xss import AUDIT, BODIES, MARK, TEXT
from tests.support.servers import PushhubProcess

pytestmark = pytest.mark.browser


class ScriptedServer:
    """Stands in for /ws/blogs/...: answers pings, records connections, sends what it is told."""

    def __init__(self, page: Page, pattern: str = r"/ws/blogs/", refuse: int = 0) -> None:
        self.urls: list[str] = []
        self.sockets: list[WebSocketRoute] = []
        self.refuse = refuse  # close this many connections before any message, like a proxy
        page.route_web_socket(re.compile(pattern), self._connect)

    def _connect(self, ws: WebSocketRoute) -> None:
        self.urls.append(ws.url)
        if self.refuse > 0:
            self.refuse -= 1
            ws.close(code=1011, reason="scripted refusal")
            return
        self.sockets.append(ws)
        ws.on_message(lambda m: ws.send('{"type":"pong"}') if '"ping"' in str(m) else None)

    def send(self, frame: dict[str, Any]) -> None:
        self.sockets[-1].send(json.dumps(frame))

    def query(self, index: int) -> dict[str, str]:
        q = self.urls[index].split("?", 1)[1] if "?" in self.urls[index] else ""
        return dict(p.split("=", 1) for p in q.split("&") if p)


def entry(eid: str, created: str, **fields: Any) -> dict[str, Any]:
    doc = {
        "id": eid, "created_at": created, "updated_at": created, "author": "Scripted",
        "title": None, "body": "", "html": f"<p>{eid}</p>", "image": None, "pinned": False, "key": False,
    }  # fmt: skip
    doc.update(fields)
    return doc


def event(seq: int, epoch: str, op: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "seq": seq, "epoch": epoch, "op": op, "entry": doc}


def open_scripted(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> tuple[Page, ScriptedServer, int, str]:
    publisher.blog(slug)
    publisher.publish(slug, "Rendered by the server.")
    state = publisher.state(slug)
    page, _ = open_page()
    server = ScriptedServer(page)
    page.goto(f"{node.url}/blogs/{slug}?transport=ws")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live")
    return page, server, int(state["seq"]), str(state["epoch"])


def test_duplicates_stale_frames_and_gaps_never_show_twice_or_out_of_order(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    page, server, seq, epoch = open_scripted(node, publisher, slug, open_page)
    assert server.query(0) == {"since": str(seq), "epoch": epoch}  # resumes from the page's render
    first = feed_ids(page)[0]
    x = entry("zzx1", "2099-01-01T00:00:01.000Z", title="X")
    server.send(event(seq + 1, epoch, "create", x))
    server.send(event(seq + 1, epoch, "create", x))  # duplicate
    server.send(
        event(seq, epoch, "update", entry(first, "2000-01-01T00:00:00.000Z", title="stale"))
    )
    server.send(event(seq + 2, epoch, "update", {**x, "title": "X edited"}))
    expect(page.locator("#entry-zzx1 .ph-title")).to_have_text("X edited")
    assert feed_ids(page) == ["zzx1", first]
    expect(page.locator(f"#entry-{first} .ph-title")).to_have_count(
        0
    )  # the stale frame was ignored

    # A gap: seq + 3 never came. The client must not apply seq + 4 but resume from seq + 2.
    server.send(event(seq + 4, epoch, "create", entry("zzx3", "2099-01-01T00:00:03.000Z")))
    wait_until(lambda: len(server.urls) == 2, what="a resume after the gap", page=page)
    assert server.query(1) == {"since": str(seq + 2), "epoch": epoch}
    expect(page.locator("#entry-zzx3")).to_have_count(0)
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live")
    server.send(event(seq + 3, epoch, "create", entry("zzx2", "2099-01-01T00:00:02.000Z")))
    server.send(event(seq + 4, epoch, "create", entry("zzx3", "2099-01-01T00:00:03.000Z")))
    server.send(event(seq + 5, epoch, "delete", {"id": "zzx1"}))
    wait_until(lambda: feed_ids(page) == ["zzx3", "zzx2", first], what="gap filled in order")


def test_reset_snapshot_replaces_the_whole_copy(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    page, server, _, _ = open_scripted(node, publisher, slug, open_page)
    blog = {**publisher.state(slug)["blog"], "title": "Re-created"}
    fresh = entry("new1", "2099-02-02T00:00:00.000Z", title="Only me")
    server.send(
        {
            "type": "snapshot",
            "seq": 1,
            "epoch": "other",
            "blog": blog,
            "entries": [fresh],
            "reset": True,
        }
    )
    wait_until(lambda: feed_ids(page) == ["new1"], what="copy replaced", page=page)
    expect(page.locator("#ph-title")).to_have_text("Re-created")
    # The new history continues from the snapshot's seq and epoch.
    server.send(event(2, "other", "create", entry("new2", "2099-02-03T00:00:00.000Z")))
    wait_until(lambda: feed_ids(page) == ["new2", "new1"], what="events after the reset", page=page)


@pytest.mark.parametrize(
    ("code", "state"),
    [(4403, "stopped"), (4404, "offline"), (1012, "live"), (1013, "live")],
)
def test_close_codes_stop_or_reconnect_as_documented(
    code: int,
    state: str,
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    open_page: PageFactory,
) -> None:
    """4403 stops; 4404 retries only much later (a minute); the others reconnect with backoff."""
    page, server, _, _ = open_scripted(node, publisher, slug, open_page)
    server.sockets[-1].close(code=code, reason="scripted")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", state)
    if state == "live":
        wait_until(lambda: len(server.urls) == 2, what="a reconnect", page=page)
    else:
        page.wait_for_timeout(1000)
        assert len(server.urls) == 1
        assert page.evaluate("pushhubPage.client.stopped") is (state == "stopped")


def test_backoff_is_capped_exponential_with_full_jitter(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    page, _ = open_page()
    page.goto(f"{node.url}/blogs/{slug}")
    server = ScriptedServer(page, pattern=r"/ws/blogs/scripted-", refuse=1000)
    timings = {}
    for jitter in (0.999, 0.25):
        blog = f"scripted-{int(jitter * 1000)}"
        delays = page.evaluate(
            """async ([blog, jitter]) => {
              const real = window.WebSocket, random = Math.random, starts = [], closes = [];
              window.WebSocket = function (url) {
                starts.push(performance.now());
                const ws = new real(url);
                ws.addEventListener("close", () => closes.push(performance.now()));
                return ws;
              };
              Math.random = () => jitter;
              const c = PushHub.connect({ blog, transports: ["ws"], backoffBase: 40, backoffCap: 300 });
              await new Promise(r => { const t = setInterval(() => { if (starts.length >= 7) { clearInterval(t); r(); } }, 10); });
              c.close();
              window.WebSocket = real; Math.random = random;
              return starts.slice(1).map((t, i) => t - closes[i]);
            }""",
            [blog, jitter],
        )
        timings[jitter] = delays
        ceilings = [40, 80, 160, 300, 300, 300]  # base * 2^n, capped
        for delay, ceiling in zip(delays, ceilings, strict=True):
            assert jitter * ceiling - 5 <= delay <= jitter * ceiling + 40, (jitter, delays)
    assert len(server.urls) >= 14


def test_online_and_visible_catch_up_at_once_instead_of_waiting_out_the_backoff(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    page, _ = open_page()
    page.add_init_script("Math.random = () => 0.999")  # backoff waits are then their full ceiling
    server = ScriptedServer(page, refuse=2)
    page.goto(f"{node.url}/blogs/{slug}?transport=ws")
    # After 2 refusals the next wait is ~2 s; the network coming back must not wait for it.
    wait_until(lambda: len(server.urls) == 2, what="two refusals", timeout=5, page=page)
    page.wait_for_timeout(100)
    page.evaluate("dispatchEvent(new Event('online'))")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live", timeout=1000)
    assert len(server.urls) == 3

    # Same for a tab that becomes visible while the client waits to retry.
    server.refuse = 1
    server.sockets[-1].close(code=1012)
    wait_until(lambda: len(server.urls) == 4, what="one more refusal", timeout=5, page=page)
    page.wait_for_timeout(100)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live", timeout=1000)
    assert len(server.urls) == 5


def test_a_fallback_goes_back_to_websocket_once_it_gets_through_again(
    node: PushhubProcess, publisher: Publisher, slug: str, open_page: PageFactory
) -> None:
    publisher.blog(slug)
    first = publisher.publish(slug, "Before the client.")
    page, _ = open_page()
    # The page's own client long-polls, which holds no reader: /readyz then counts ours alone.
    page.goto(f"{node.url}/blogs/{slug}?transport=poll")
    refused: list[str] = []
    passed: list[str] = []

    def proxy(ws: WebSocketRoute) -> None:
        if len(refused) < 3:  # a proxy that kills upgrades, three times, then lets them through
            refused.append(ws.url)
            ws.close(code=1011, reason="blocked by a proxy")
        else:
            passed.append(ws.url)
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/blogs/"), proxy)
    page.evaluate(
        """blog => {
          window.__log = [];
          window.__starts = [];
          const real = window.WebSocket;
          window.WebSocket = function (url) { __starts.push(performance.now()); return new real(url); };
          window.__c = PushHub.connect({
            blog, upgradeAfter: 200,
            onstatus: (s, info) => __log.push(s + ":" + ((info && info.transport) || "")),
            onchange: c => __log.push(c.kind + ":" + (c.entry ? c.entry.id : "") + ":" + c.seq),
          });
        }""",
        slug,
    )
    wait_until(lambda: "live:sse" in page.evaluate("__log"), what="live on SSE", page=page)
    assert len(refused) == 1
    during = publisher.publish(slug, "Over SSE, while WebSocket is blocked.")
    head = publisher.state(slug)
    wait_until(lambda: page.evaluate("__c.seq") == head["seq"], what="SSE delivery", page=page)

    # The tries of WebSocket from SSE are refused twice more, the waits doubling (200, 400, then
    # 800 ms, each up to half again), and SSE stays live throughout; the third gets through.
    wait_until(lambda: passed != [], timeout=10, what="an upgrade try let through", page=page)
    wait_until(lambda: page.evaluate("__c.transport") == "ws", what="on WebSocket", page=page)
    assert passed[0].split("?")[1] == f"since={head['seq']}&epoch={head['epoch']}"
    starts = page.evaluate("__starts")
    assert len(starts) == 4, starts  # the first round's try, then three tries from SSE
    gaps = [b - a for a, b in itertools.pairwise(starts[1:])]
    assert 400 <= gaps[0] <= 900 and 800 <= gaps[1] <= 1600, gaps
    log = page.evaluate("__log")
    statuses = [
        x for x in log if x.split(":")[0] in ("connecting", "live", "reconnecting", "offline")
    ]
    assert statuses[-2:] == ["live:sse", "live:ws"], log  # never left live on the way
    wait_until(
        lambda: httpx.get(f"{node.url}/readyz").json()["readers"] == 1,
        what="the SSE reader gone from the server", page=page,
    )  # fmt: skip

    after = publisher.publish(slug, "Over WebSocket again.")
    publisher.edit(slug, during["id"], title="Edited after the switch")
    end = publisher.state(slug)["seq"]
    wait_until(lambda: page.evaluate("__c.seq") == end, what="deliveries", page=page)
    changes = [x for x in page.evaluate("__log") if not x.startswith(("live", "connecting"))]
    ids = [c.split(":")[1] for c in changes if c.startswith("create")]
    assert ids == [during["id"], after["id"]], changes  # each once, in seq order
    state = page.evaluate("__c.state()")
    assert [e["id"] for e in state["entries"]] == [after["id"], during["id"], first["id"]]
    assert state["entries"][1]["title"] == "Edited after the switch"
    page.evaluate("__c.close()")


def test_client_cleans_html_the_server_should_have_sanitized(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    """Defence in depth: raw hostile HTML on the wire still runs nothing, in page or widget."""
    publisher.blog(slug, title="Raw")
    state = publisher.state(slug)
    seq, epoch = int(state["seq"]), str(state["epoch"])
    frames = [
        event(
            seq + 1 + i,
            epoch,
            "create",
            entry(f"raw{i:02d}", f"2099-03-03T00:00:{i:02d}.000Z", html=body, title=TEXT),
        )
        for i, body in enumerate(BODIES)
    ]

    page, watch = open_page()
    server = ScriptedServer(page)
    page.goto(f"{node.url}/blogs/{slug}?transport=ws")
    expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live")
    for f in frames:
        server.send(f)
    expect(page.locator("article.ph-entry")).to_have_count(len(BODIES))
    page.locator("text=hover me").hover()
    page.wait_for_timeout(300)
    assert page.evaluate(AUDIT, page.query_selector("#ph-feed")) == []

    # The widget on a page with no CSP at all: only the cleaning stands in the way.
    control = "<div id='control'></div>"
    url = host_site.put(
        f"{slug}.html", widget_page(node.url, [{"pushhub-blog": slug}], body=control)
    )
    wpage, wwatch = open_page()
    wserver = ScriptedServer(wpage)
    wpage.goto(url)
    wait_until(lambda: len(wserver.sockets) == 1, what="the widget's socket", page=wpage)
    snapshot = {
        "type": "snapshot",
        "seq": seq,
        "epoch": epoch,
        "blog": state["blog"],
        "entries": [],
        "reset": False,
    }
    wserver.send(snapshot)
    for f in frames:
        wserver.send(f)
    expect(wpage.locator("#w0 article.ph-entry")).to_have_count(10)  # the default max
    wpage.locator("#w0").locator("text=hover me").hover()
    wpage.wait_for_timeout(300)
    assert (
        wpage.evaluate(AUDIT, wpage.evaluate_handle("document.querySelector('#w0').shadowRoot"))
        == []
    )
    for w in (watch, wwatch):
        assert w.dialogs == [] and w.markers(MARK) == []
    assert wpage.evaluate("window.__xss") is None

    # Control: the same payload put in without the cleaning does run, so the checks above can fail.
    wpage.evaluate(f"document.querySelector('#control').innerHTML = {json.dumps(BODIES[1])}")
    wait_until(lambda: bool(wwatch.markers(MARK)), what="the control payload to run", page=wpage)


def test_pushhub_js_works_as_a_classic_script_and_as_an_es_module(
    node: PushhubProcess,
    publisher: Publisher,
    slug: str,
    host_site: HostSite,
    open_page: PageFactory,
) -> None:
    publisher.blog(slug, title="Library use")
    one = publisher.publish(slug, "One.")
    callback = """(c) => { document.getElementById('out').textContent =
        c.kind + ':' + c.entries.map(e => e.id).join(',') + ':' + c.seq; }"""
    classic = host_site.put(
        f"{slug}-classic.html",
        f"""<!doctype html><meta charset="utf-8"><pre id="out"></pre>
<script src="{node.url}/static/pushhub.js"></script>
<script>window.client = PushHub.connect({{ base: "{node.url}", blog: "{slug}", onchange: {callback} }});</script>""",
    )
    module = host_site.put(
        f"{slug}-module.html",
        f"""<!doctype html><meta charset="utf-8"><pre id="out"></pre>
<script type="module">
import {{ connect }} from "{node.url}/static/pushhub.mjs";
window.client = connect({{ base: "{node.url}", blog: "{slug}", onchange: {callback} }});
</script>""",
    )
    for url in (classic, module):
        page, _ = open_page()
        page.goto(url)
        expect(page.locator("#out")).to_have_text(re.compile(rf"^snapshot:{one['id']}:\d+$"))
        two = publisher.publish(slug, "Two.")
        expect(page.locator("#out")).to_have_text(
            re.compile(rf"^create:{two['id']},{one['id']}:\d+$")
        )
        publisher.delete(slug, two["id"])
        expect(page.locator("#out")).to_have_text(re.compile(rf"^delete:{one['id']}:\d+$"))
        if url == module:
            assert page.evaluate("'PushHub' in window")  # the module re-exports the one global API
