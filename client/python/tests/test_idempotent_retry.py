"""A write whose answer is lost is retried with the same Idempotency-Key and happens once."""

from __future__ import annotations

import pytest
from client_helpers import FAST_RETRY
from faulty_proxy import Fault, FaultyProxy
from pushhub_client import AsyncPushHub, PushHub, Unavailable

from tests.support.servers import PushhubProcess


def test_publish_whose_answer_is_dropped_makes_one_entry(
    shared_server: PushhubProcess, hub: PushHub, slug: str, token: str
) -> None:
    before = hub.get_blog(slug)
    with FaultyProxy(shared_server.port, fault="drop") as proxy:
        with PushHub(proxy.url, token, retry=FAST_RETRY) as via_proxy:
            result = via_proxy.publish(slug, "The ferry docks.", title="Docked")
        posts = [s for s in proxy.seen if s.method == "POST"]
    assert len(posts) == 2 and not posts[0].answered and posts[1].answered
    assert posts[0].idempotency_key and posts[0].idempotency_key == posts[1].idempotency_key
    after = hub.get_blog(slug)
    assert [e.id for e in after.entries] == [result.entry.id], "exactly one entry"
    assert after.seq == before.seq + 1 == result.seq, "and exactly one change"


async def test_async_publish_answered_502_makes_one_entry(
    shared_server: PushhubProcess, hub: PushHub, slug: str, token: str
) -> None:
    before = hub.get_blog(slug)
    with FaultyProxy(shared_server.port, fault="502", faults=2) as proxy:
        async with AsyncPushHub(proxy.url, token, retry=FAST_RETRY) as via_proxy:
            result = await via_proxy.publish(slug, "Second ferry docks.")
    assert [s.answered for s in proxy.seen] == [False, False, True]
    assert len({s.idempotency_key for s in proxy.seen}) == 1
    after = hub.get_blog(slug)
    assert [e.id for e in after.entries] == [result.entry.id]
    assert after.seq == before.seq + 1 == result.seq


@pytest.mark.parametrize("fault", ["drop", "502"])
def test_edit_whose_answer_is_lost_happens_once(
    shared_server: PushhubProcess, hub: PushHub, slug: str, token: str, fault: Fault
) -> None:
    entry = hub.publish(slug, "to be pinned")
    with (
        FaultyProxy(shared_server.port, fault=fault) as proxy,
        PushHub(proxy.url, token, retry=FAST_RETRY) as via_proxy,
    ):
        pinned = via_proxy.pin(slug, entry.entry.id)
    assert [s.answered for s in proxy.seen] == [False, True]
    assert pinned.entry.pinned and pinned.seq == entry.seq + 1, "one change"
    assert hub.get_blog(slug).seq == pinned.seq


@pytest.mark.parametrize("fault", ["drop", "502"])
def test_delete_whose_answer_is_lost_gets_the_first_answer(
    shared_server: PushhubProcess, hub: PushHub, slug: str, token: str, fault: Fault
) -> None:
    entry = hub.publish(slug, "to be deleted")
    with (
        FaultyProxy(shared_server.port, fault=fault) as proxy,
        PushHub(proxy.url, token, retry=FAST_RETRY) as via_proxy,
    ):
        deleted = via_proxy.delete(slug, entry.entry.id)
    assert [s.answered for s in proxy.seen] == [False, True]
    # docs/protocol.md: a retry with the same key returns the first answer, not a 404.
    assert deleted.entry.id == entry.entry.id and deleted.seq == entry.seq + 1
    assert hub.get_blog(slug).entries == []


def test_retries_end_with_unavailable_when_every_answer_is_lost(
    shared_server: PushhubProcess, hub: PushHub, slug: str, token: str
) -> None:
    with (
        FaultyProxy(shared_server.port, fault="502", faults=100) as proxy,
        PushHub(proxy.url, token, retry=FAST_RETRY) as via_proxy,
        pytest.raises(Unavailable) as caught,
    ):
        via_proxy.publish(slug, "never heard back")
    assert caught.value.status == 502 and len(proxy.seen) == FAST_RETRY.attempts
    assert len(hub.list_entries(slug)) == 1, "the server wrote it once, whatever we heard"
