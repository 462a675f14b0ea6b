"""The page survives its server: killed, restarted, caught up exactly once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Playwright, expect

from tests.browser.conftest import PageFactory
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, Publisher, feed_ids, wait_until
from tests.support.servers import PushhubProcess, RedisProcess

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_killed_server_page_reconnects_and_shows_the_gap_exactly_once(
    store: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    open_page: PageFactory,
    make_publisher: Callable[[str], Publisher],
    slug: str,
) -> None:
    redis_url = request.getfixturevalue("redis_proc").url if store == "redis" else None
    node = PushhubProcess(tmp_path / "node", redis_url=redis_url).start()
    try:
        editor = make_publisher(node.url)
        editor.blog(slug, title="Restart drill")
        first = editor.publish(slug, "Before anything goes wrong.")
        page, watch = open_page()
        page.goto(f"{node.url}/blogs/{slug}")
        conn = page.locator("#ph-conn")
        expect(conn).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")
        second = editor.publish(slug, "Seen live.")
        expect(page.locator(f"#entry-{second['id']}")).to_be_visible()

        node.kill()
        expect(conn).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#ph-conn-text")).to_have_text("Reconnecting…")

        node.start()
        # Published while the page was still away (it is backing off).
        editor = make_publisher(node.url)
        missed = [editor.publish(slug, f"Published during the outage, {i}.") for i in range(3)]
        for entry in missed:
            expect(page.locator(f"#entry-{entry['id']}")).to_be_visible(timeout=15_000)
        expect(conn).to_have_attribute("data-state", "live")

        after = editor.publish(slug, "Live again.")
        expect(page.locator(f"#entry-{after['id']}")).to_be_visible()
        expected = [after["id"], *(e["id"] for e in reversed(missed)), second["id"], first["id"]]
        wait_until(lambda: feed_ids(page) == expected, what="every entry once, in order")
        assert page.evaluate("window.__sameDocument") is True  # caught up, not reloaded
        assert not watch.errors
    finally:
        node.kill()


def test_store_wiped_page_replaces_its_copy(
    tmp_path: Path,
    redis_proc: RedisProcess,
    open_page: PageFactory,
    make_publisher: Callable[[str], Publisher],
    slug: str,
) -> None:
    """A new epoch (store wiped, blog re-created) answers the resume with a reset snapshot."""
    node = PushhubProcess(tmp_path / "node", redis_url=redis_proc.url).start()
    try:
        editor = make_publisher(node.url)
        editor.blog(slug, title="Before the wipe")
        old = [editor.publish(slug, f"Old history {i}.") for i in range(2)]
        page, _ = open_page()
        page.goto(f"{node.url}/blogs/{slug}")
        expect(page.locator("#ph-conn")).to_have_attribute("data-state", "live")
        assert sorted(feed_ids(page)) == sorted(e["id"] for e in old)

        # The reader's network drops while the store is wiped and the blog re-created, so the
        # page cannot look in between (it would find no blog); it comes back with `online`.
        page.context.set_offline(True)
        node.kill()
        redis_proc.kill()
        shutil.rmtree(redis_proc.dir / "appendonlydir")
        redis_proc.start()
        node.start()
        editor = make_publisher(node.url)
        editor.blog(slug, title="After the wipe")
        fresh = editor.publish(slug, "A new history.")
        expect(page.locator("#ph-conn")).not_to_have_attribute("data-state", "live")
        page.context.set_offline(False)

        # At once on `online`, not at the end of a backoff wait that grew during the outage.
        expect(page.locator(f"#entry-{fresh['id']}")).to_be_visible(timeout=3000)
        wait_until(lambda: feed_ids(page) == [fresh["id"]], what="old copy replaced")
        expect(page.locator("#ph-title")).to_have_text("After the wipe")
    finally:
        node.kill()


def test_back_forward_cache_lets_go_of_the_connection_and_catches_up_on_return(
    playwright: Playwright, node: PushhubProcess, publisher: Publisher, slug: str
) -> None:
    # Playwright turns the back/forward cache off by default; browsers have it on.
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=15_000,
        ignore_default_args=["--disable-back-forward-cache"],
    )  # fmt: skip
    publisher.blog(slug, title="Back and forth")
    first = publisher.publish(slug, "Before leaving.")

    def readers() -> int:
        count: int = httpx.get(f"{node.url}/readyz", timeout=5).json()["readers"]
        return count

    try:
        page = browser.new_page()
        page.goto(f"{node.url}/blogs/{slug}")
        conn = page.locator("#ph-conn")
        expect(conn).to_have_attribute("data-state", "live")
        before = readers()
        page.evaluate("window.__sameDocument = true")

        page.goto(f"{node.url}/healthz")  # away: the page goes into the cache, not away
        wait_until(lambda: readers() == before - 1, what="the cached page's reader gone")
        missed = [publisher.publish(slug, f"While the page was cached, {i}.") for i in range(2)]

        page.go_back(wait_until="commit")  # a page restored from the cache fires no load
        assert page.evaluate("window.__sameDocument") is True, "restored, not reloaded"
        for entry in missed:
            expect(page.locator(f"#entry-{entry['id']}")).to_be_visible(timeout=10_000)
        expect(conn).to_have_attribute("data-state", "live")
        assert feed_ids(page) == [missed[1]["id"], missed[0]["id"], first["id"]]
        wait_until(lambda: readers() == before, what="the restored page's reader back")
    finally:
        browser.close()
