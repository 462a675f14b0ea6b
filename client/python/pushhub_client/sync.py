"""`PushHub`: the blocking editor client, for scripts and CMS plugins without an event loop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import TypeVar

import httpx

from pushhub_client import _api
from pushhub_client._api import UNSET, Call, Unset
from pushhub_client._retry import RetryPolicy
from pushhub_client.errors import PushHubError
from pushhub_client.models import Blog, BlogState, BlogWrite, Entry, EntryWrite, EventsPage, Image
from pushhub_client.version import USER_AGENT

T = TypeVar("T")


class PushHub:
    """Publish to and read from a pushhub server.

    `token` is an editor JWT (`pushhub token`); reading needs none. Every write carries a fresh
    `Idempotency-Key`, and transient failures are retried under `retry`, so a publish that is
    retried after a lost answer still makes exactly one entry.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PushHub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    content=_api.encode_body(call),
                    params=call.params,
                    headers=_api.headers(self.token, call, USER_AGENT)
                    | ({"Content-Type": "application/json"} if call.body is not None else {}),
                    timeout=self.timeout + call.extra_timeout,
                )
                return _api.read_response(call, response)
            except _api.RETRYABLE_EXCEPTIONS as exc:
                error: PushHubError = _api.transport_error(call, self.url, exc)
            except PushHubError as exc:
                error = exc
            delay = self.retry.next_delay(attempt, error)
            if delay is None:
                raise error
            time.sleep(delay)
            attempt += 1

    # --- blogs ---------------------------------------------------------------------------------

    def list_blogs(self) -> list[Blog]:
        return self._send(_api.list_blogs())

    def create_blog(
        self,
        slug: str,
        title: str,
        *,
        summary: str | None = None,
        status: str | None = None,
        allowed_origins: Sequence[str] | None = None,
    ) -> BlogWrite:
        """Create the blog, or update it if it exists (`result.created` tells which)."""
        return self._send(
            _api.put_blog(
                slug, title=title, summary=summary, status=status, allowed_origins=allowed_origins
            )
        )

    def update_blog(
        self,
        slug: str,
        *,
        title: str | None = None,
        summary: str | None = None,
        status: str | None = None,
        allowed_origins: Sequence[str] | None = None,
    ) -> BlogWrite:
        """Change the given fields of a blog; those left as None stay as they are."""
        return self._send(
            _api.put_blog(
                slug, title=title, summary=summary, status=status, allowed_origins=allowed_origins
            )
        )

    def get_blog(self, slug: str) -> BlogState:
        return self._send(_api.get_blog(slug))

    def list_entries(self, slug: str) -> list[Entry]:
        """The blog's entries, pinned first, then newest first."""
        return self._send(_api.list_entries(slug))

    def events(
        self,
        slug: str,
        *,
        since: int | None = None,
        epoch: str | None = None,
        wait: float | None = None,
    ) -> EventsPage:
        """The frames after `since` (long-poll: with `wait`, held until something happens)."""
        return self._send(_api.events(slug, since=since, epoch=epoch, wait=wait))

    # --- entries -------------------------------------------------------------------------------

    def publish(
        self,
        slug: str,
        body: str,
        *,
        title: str | None = None,
        author: str | None = None,
        image: Image | None = None,
        pinned: bool = False,
        key: bool = False,
        idempotency_key: str | None = None,
    ) -> EntryWrite:
        """Publish a new entry (`body` is Markdown). Pass your own `idempotency_key` to make a
        whole script safe to re-run: the same key on the same blog never makes a second entry."""
        return self._send(
            _api.publish(
                slug,
                body,
                title=title,
                author=author,
                image=image,
                pinned=pinned,
                key=key,
                idempotency_key=idempotency_key,
            )
        )

    def edit(
        self,
        slug: str,
        entry_id: str,
        *,
        title: str | Unset | None = UNSET,
        body: str | Unset = UNSET,
        author: str | Unset = UNSET,
        image: Image | Unset | None = UNSET,
        pinned: bool | Unset = UNSET,
        key: bool | Unset = UNSET,
    ) -> EntryWrite:
        """Change the given fields of an entry; `title=None` or `image=None` removes them."""
        return self._send(
            _api.edit(
                slug,
                entry_id,
                title=title,
                body=body,
                author=author,
                image=image,
                pinned=pinned,
                key=key,
            )
        )

    def pin(self, slug: str, entry_id: str) -> EntryWrite:
        return self._send(_api.edit(slug, entry_id, pinned=True))

    def unpin(self, slug: str, entry_id: str) -> EntryWrite:
        return self._send(_api.edit(slug, entry_id, pinned=False))

    def delete(self, slug: str, entry_id: str) -> EntryWrite:
        """Delete an entry; the result holds the entry as it was."""
        return self._send(_api.delete(slug, entry_id))
