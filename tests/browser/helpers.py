"""What the browser tests share: an editor over HTTP, a static site on another origin, and a
watch on each page for errors, dialogs and console markers."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import ConsoleMessage, Dialog, Page

from tests.support.servers import HOST

REPO = Path(__file__).resolve().parents[2]
# Written on every run to an ignored folder; docs/screenshots holds the copies the README shows.
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
ARTIFACTS = REPO / "test-artifacts"
WAIT_MS = 10_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class Publisher:
    """An editor with a token for every blog, over real HTTP."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )

    def blog(self, slug: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", f"Blog {slug}")
        r = self.http.put(f"/api/blogs/{slug}", json=fields)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def publish(self, slug: str, body: str = "An update.", **fields: Any) -> dict[str, Any]:
        r = self.http.post(f"/api/blogs/{slug}/entries", json={"body": body, **fields})
        assert r.status_code == 201, r.text
        return dict(r.json()["entry"])

    def edit(self, slug: str, entry_id: str, **fields: Any) -> dict[str, Any]:
        r = self.http.patch(f"/api/blogs/{slug}/entries/{entry_id}", json=fields)
        assert r.status_code == 200, r.text
        return dict(r.json()["entry"])

    def delete(self, slug: str, entry_id: str) -> None:
        r = self.http.delete(f"/api/blogs/{slug}/entries/{entry_id}")
        assert r.status_code == 200, r.text

    def state(self, slug: str) -> dict[str, Any]:
        r = self.http.get(f"/api/blogs/{slug}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def close(self) -> None:
        self.http.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class HostSite:
    """A static web site on its own loopback port: another origin than the pushhub server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}"

    def put(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Watch:
    """Everything a page said that a test may want to fail on."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", self._on_dialog)

    def _on_console(self, msg: ConsoleMessage) -> None:
        self.console.append(f"{msg.type}: {msg.text}")

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def markers(self, marker: str) -> list[str]:
        return [line for line in self.console if marker in line]


def wait_until(
    check: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "condition",
    page: Page | None = None,
) -> None:
    """Poll `check`. Pass `page` when it reads state that Playwright events update: the sync API
    only dispatches events while one of its calls runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def feed_ids(page: Page, scope: str = "#ph-feed") -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        f"{scope} article.ph-entry", "els => els.map(e => e.dataset.id)"
    )
    return ids


def widget_ids(page: Page, host_selector: str) -> list[str]:
    ids: list[str] = page.eval_on_selector(
        host_selector,
        "h => Array.from(h.shadowRoot.querySelectorAll('article.ph-entry'), e => e.dataset.id)",
    )
    return ids


# Records when each entry's <article> first appears, by the page's own clock (wall time).
APPEAR_RECORDER = """
window.__appeared = {};
new MutationObserver((records) => {
  const now = Date.now();
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType === 1 && n.matches('article.ph-entry') && !(n.dataset.id in window.__appeared)) {
      window.__appeared[n.dataset.id] = now;
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


def widget_page(
    pushhub_url: str, widgets: list[dict[str, str]], css: str = "", body: str = ""
) -> str:
    """A host page with one <div data-pushhub-blog> per dict of data attributes."""
    divs = "\n".join(
        "<div " + " ".join(f'data-{k}="{v}"' for k, v in attrs.items()) + f' id="w{i}"></div>'
        for i, attrs in enumerate(widgets)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Host page</title>
<style>{css}</style></head>
<body>
<h1 class="host-title">A site that embeds a live blog</h1>
<p class="host-text">Host page paragraph.</p>
{body}
{divs}
<script src="{pushhub_url}/embed.js" async></script>
</body></html>
"""


def record_timings(name: str, samples_ms: list[float]) -> dict[str, Any]:
    """Write measured timings to test-artifacts/ (not asserted: machines differ)."""
    ordered = sorted(samples_ms)
    summary = {
        "samples": len(ordered),
        "median_ms": round(ordered[len(ordered) // 2], 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 1),
        "max_ms": round(ordered[-1], 1),
        "min_ms": round(ordered[0], 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "browser-timings.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing[name] = summary
    path.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"{name}: {summary}")
    return summary
