"""bench/soak_clients.py fingerprints entries so that a reader's copy (reader frames carry no
Markdown body) equals the server's (the API and the store keep it)."""

from __future__ import annotations

from bench.soak_clients import entry_digest, parse

ENTRY = {"id": "a1", "title": "k-1", "html": "<p>hello</p>", "pinned": False}
STORED = {**ENTRY, "body": "hello"}


def test_an_entry_with_and_without_its_body_has_one_digest() -> None:
    assert entry_digest(STORED) == entry_digest(ENTRY)
    assert entry_digest({**ENTRY, "html": "<p>other</p>"}) != entry_digest(ENTRY)


def test_frames_from_old_and_new_servers_fingerprint_alike() -> None:
    def event(entry: dict[str, object]) -> dict[str, object]:
        return {"type": "event", "seq": 2, "epoch": "e1", "op": "create", "entry": entry}

    def snapshot(entry: dict[str, object]) -> dict[str, object]:
        return {"type": "snapshot", "seq": 2, "epoch": "e1", "blog": {}, "entries": [entry]}

    assert parse(event(STORED)).entry == parse(event(ENTRY)).entry == entry_digest(STORED)
    assert (
        parse(snapshot(STORED)).entries
        == parse(snapshot(ENTRY)).entries
        == {"a1": entry_digest(STORED)}
    )
