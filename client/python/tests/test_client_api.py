"""Every call of `PushHub` and `AsyncPushHub` against a real server, on both stores."""

from __future__ import annotations

import asyncio
import time

import pytest
from client_helpers import FAST_RETRY, new_slug, token_for
from pushhub_client import (
    AsyncPushHub,
    AuthError,
    Backoff,
    Entry,
    Event,
    Image,
    NotFound,
    PushHub,
    RetryPolicy,
    Snapshot,
    Unavailable,
    ValidationError,
)

from tests.support.servers import PushhubProcess, RedisProcess, free_port


def test_blogs_are_created_updated_listed_and_read(hub: PushHub) -> None:
    slug = new_slug()
    created = hub.create_blog(slug, "Night ferry race", summary="Boats at night")
    assert created.created and created.blog.slug == slug and created.blog.status == "live"
    updated = hub.update_blog(
        slug, status="ended", allowed_origins=["https://news.example"], summary="Over"
    )
    assert not updated.created and updated.seq == created.seq + 1
    assert updated.blog.title == "Night ferry race", "fields not given stay as they were"
    assert updated.blog.status == "ended" and updated.blog.summary == "Over"
    assert updated.blog.allowed_origins == ("https://news.example",)
    assert slug in {b.slug for b in hub.list_blogs()}
    state = hub.get_blog(slug)
    assert state.blog == updated.blog and state.entries == [] and state.seq == updated.seq
    assert state.epoch == created.epoch


def test_publish_edit_pin_delete_and_list(hub: PushHub, slug: str) -> None:
    first = hub.publish(slug, "Fog over the *harbour*.", title="Fog")
    assert isinstance(first.entry, Entry)
    assert first.entry.author == "Test Editor", "the author defaults to the token's subject"
    assert first.entry.html == "<p>Fog over the <em>harbour</em>.</p>"
    assert first.entry.image is None and not first.entry.pinned and not first.entry.key

    second = hub.publish(
        slug,
        "Boats leave the quay.",
        title="Start",
        author="Kim Lowe",
        image=Image("https://images.example/quay.jpg", "The quay", "K. Lowe"),
        key=True,
    )
    assert second.seq == first.seq + 1
    assert second.entry.image == Image("https://images.example/quay.jpg", "The quay", "K. Lowe")
    assert second.entry.author == "Kim Lowe" and second.entry.key

    assert [e.id for e in hub.list_entries(slug)] == [second.entry.id, first.entry.id]
    pinned = hub.pin(slug, first.entry.id)
    assert pinned.entry.pinned and pinned.seq == second.seq + 1
    assert [e.id for e in hub.list_entries(slug)] == [first.entry.id, second.entry.id]

    edited = hub.edit(slug, second.entry.id, title=None, image=None, body="Boats **left**.")
    assert edited.entry.title is None and edited.entry.image is None
    assert edited.entry.html == "<p>Boats <strong>left</strong>.</p>"
    assert edited.entry.key and edited.entry.author == "Kim Lowe", "untouched fields stay"
    assert edited.entry.created_at == second.entry.created_at
    assert edited.entry.updated_at >= second.entry.updated_at

    unpinned = hub.unpin(slug, first.entry.id)
    assert not unpinned.entry.pinned
    deleted = hub.delete(slug, first.entry.id)
    assert deleted.entry.id == first.entry.id and deleted.entry.title == "Fog"
    state = hub.get_blog(slug)
    assert [e.id for e in state.entries] == [second.entry.id] and state.seq == deleted.seq


def test_events_since_returns_the_changes_and_a_snapshot_without_since(
    hub: PushHub, slug: str
) -> None:
    head = hub.get_blog(slug)
    one = hub.publish(slug, "one")
    hub.pin(slug, one.entry.id)
    hub.delete(slug, one.entry.id)
    page = hub.events(slug, since=head.seq, epoch=head.epoch)
    assert [(f.seq, f.op) for f in page.frames if isinstance(f, Event)] == [
        (head.seq + 1, "create"),
        (head.seq + 2, "update"),
        (head.seq + 3, "delete"),
    ]
    assert page.seq == head.seq + 3
    snap = hub.events(slug).frames
    assert len(snap) == 1 and isinstance(snap[0], Snapshot) and snap[0].entries == []


async def test_async_client_makes_every_call(ahub: AsyncPushHub) -> None:
    slug = new_slug()
    assert (await ahub.create_blog(slug, "Async blog")).created
    assert (await ahub.update_blog(slug, title="Async blog 2")).blog.title == "Async blog 2"
    assert slug in {b.slug for b in await ahub.list_blogs()}
    a = await ahub.publish(slug, "a", title="A", pinned=True)
    b = await ahub.publish(slug, "b", key=True)
    assert a.entry.pinned and b.entry.key
    assert (await ahub.edit(slug, b.entry.id, body="b2")).entry.body == "b2"
    assert not (await ahub.unpin(slug, a.entry.id)).entry.pinned
    assert (await ahub.pin(slug, b.entry.id)).entry.pinned
    assert [e.id for e in await ahub.list_entries(slug)] == [b.entry.id, a.entry.id]
    assert (await ahub.delete(slug, a.entry.id)).entry.id == a.entry.id
    state = await ahub.get_blog(slug)
    assert [e.id for e in state.entries] == [b.entry.id]
    page = await ahub.events(slug, since=state.seq - 1, epoch=state.epoch)
    assert [f.seq for f in page.frames] == [state.seq]


async def test_long_poll_is_held_until_something_is_published(ahub: AsyncPushHub) -> None:
    slug = new_slug()
    head = await ahub.create_blog(slug, "Long poll")
    async with asyncio.timeout(10):
        waiting = asyncio.create_task(ahub.events(slug, since=head.seq, epoch=head.epoch, wait=8))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "nothing was published yet: the request must be held"
        started = time.monotonic()
        published = await ahub.publish(slug, "now")
        page = await waiting
    assert time.monotonic() - started < 3
    assert [(f.seq, f.op) for f in page.frames if isinstance(f, Event)] == [
        (published.seq, "create")
    ]


def test_same_idempotency_key_publishes_once(hub: PushHub, slug: str) -> None:
    first = hub.publish(slug, "only once", idempotency_key="script-run-42/entry-1")
    again = hub.publish(slug, "only once", idempotency_key="script-run-42/entry-1")
    assert (again.entry.id, again.seq) == (first.entry.id, first.seq)
    assert len(hub.list_entries(slug)) == 1


def test_bad_or_missing_token_is_an_auth_error(shared_server: PushhubProcess, slug: str) -> None:
    for token in ("not-a-jwt", None):
        with PushHub(shared_server.url, token) as anonymous, pytest.raises(AuthError) as caught:
            anonymous.publish(slug, "hello")
        assert caught.value.status == 401 and caught.value.code == "unauthorized"
        assert caught.value.message


def test_token_for_another_blog_is_forbidden(shared_server: PushhubProcess, slug: str) -> None:
    with PushHub(shared_server.url, token_for("some-other-blog")) as hub:
        with pytest.raises(AuthError) as caught:
            hub.publish(slug, "hello")
        assert caught.value.status == 403 and caught.value.code == "forbidden"
        assert hub.get_blog(slug).entries == [], "reading needs no permission"


def test_unknown_blog_or_entry_is_not_found(hub: PushHub, slug: str) -> None:
    missing = new_slug("missing")
    for call in (
        lambda: hub.get_blog(missing),
        lambda: hub.publish(missing, "x"),
        lambda: hub.edit(slug, "0nosuchentry0", title="x"),
        lambda: hub.delete(slug, "0nosuchentry0"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.status == 404 and caught.value.code == "not_found"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"body": "   "}, "body"),
        ({"body": "x", "image": Image("javascript:alert(1)")}, "image.url"),
        ({"body": "x", "title": "t" * 301}, "title"),
    ],
)
def test_invalid_fields_are_validation_errors_naming_the_field(
    hub: PushHub, slug: str, kwargs: dict[str, object], field: str
) -> None:
    fields = dict(kwargs)  # the parameters are shared by both stores' runs
    body = str(fields.pop("body"))
    with pytest.raises(ValidationError) as caught:
        hub.publish(slug, body, **fields)  # type: ignore[arg-type]
    assert caught.value.status == 422 and caught.value.field == field
    assert caught.value.message
    assert hub.list_entries(slug) == [], "nothing was written"


def test_bad_blog_fields_are_validation_errors(hub: PushHub) -> None:
    slug = new_slug()
    with pytest.raises(ValidationError) as caught:
        hub.update_blog(slug, summary="no title")
    assert caught.value.field == "title", "creating a blog needs a title"
    with pytest.raises(ValidationError) as caught:
        hub.create_blog(slug, "x", allowed_origins=["not an origin"])
    assert caught.value.field is not None and caught.value.field.startswith("allowed_origins")


def test_nobody_listening_is_unavailable_after_retries(token: str) -> None:
    policy = RetryPolicy(attempts=3, backoff=Backoff(initial=0.1, factor=2.0, jitter=0.0))
    started = time.monotonic()
    url = f"http://127.0.0.1:{free_port()}"
    with PushHub(url, token, retry=policy) as hub, pytest.raises(Unavailable) as caught:
        hub.publish("any", "x")
    assert caught.value.status is None and "cannot connect" in caught.value.message
    assert time.monotonic() - started >= 0.3, "it must have backed off 0.1 s then 0.2 s"


@pytest.mark.parametrize("store_kind", ["redis"])
async def test_store_down_is_unavailable_503(
    server: PushhubProcess, redis_proc: RedisProcess, token: str
) -> None:
    async with AsyncPushHub(server.url, token, retry=FAST_RETRY) as hub:
        slug = new_slug()
        await hub.create_blog(slug, "Store goes away")
        redis_proc.kill()
        async with asyncio.timeout(60):
            with pytest.raises(Unavailable) as caught:
                await hub.publish(slug, "into the void")
    assert caught.value.status == 503 and caught.value.code == "unavailable"
