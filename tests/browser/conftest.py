"""Real headless Chromium (Debian's) driven by Playwright, against real pushhub processes."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from pushhub.auth import issue_token
from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    HostSite,
    Publisher,
    Watch,
)
from tests.support.servers import TEST_SECRET, PushhubProcess

_counter = itertools.count(1)

PageFactory = Callable[..., tuple[Page, Watch]]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=15_000)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushhubProcess]:
    """One pushhub node (embedded store) per test module; each test uses its own blog."""
    # Tests publish in bursts far above any editor's pace; the write limit is tested elsewhere.
    env = {"PUSHHUB_PUBLISH_RATE": "0"}
    proc = PushhubProcess(tmp_path_factory.mktemp("node"), extra_env=env).start()
    try:
        yield proc
    finally:
        proc.kill()


def _token() -> str:
    return issue_token(TEST_SECRET, subject="Browser Test", blogs=["*"], ttl_seconds=3600)


@pytest.fixture(scope="module")
def publisher(node: PushhubProcess) -> Iterator[Publisher]:
    p = Publisher(node.url, _token())
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def make_publisher() -> Iterator[Callable[[str], Publisher]]:
    made: list[Publisher] = []

    def make(base: str) -> Publisher:
        made.append(Publisher(base, _token()))
        return made[-1]

    try:
        yield make
    finally:
        for p in made:
            p.close()


@pytest.fixture
def slug(request: pytest.FixtureRequest) -> str:
    """A blog slug of this test's own."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"{name[:48]}-{next(_counter)}".strip("-")


@pytest.fixture(scope="module")
def host_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSite]:
    site = HostSite(tmp_path_factory.mktemp("host-site"))
    try:
        yield site
    finally:
        site.close()


@pytest.fixture(scope="module")
def other_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSite]:
    site = HostSite(tmp_path_factory.mktemp("other-site"))
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[PageFactory]:
    """Pages in fresh contexts; any uncaught script error on one fails the test."""
    opened: list[tuple[BrowserContext, Watch]] = []

    def make(**context_options: Any) -> tuple[Page, Watch]:
        context_options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**context_options)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        opened.append((context, watch))
        return page, watch

    try:
        yield make
    finally:
        errors = [e for _, w in opened for e in w.errors]
        for context, _ in opened:
            context.close()
        assert not errors, f"uncaught errors in the page: {errors}"
