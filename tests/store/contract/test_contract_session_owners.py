"""Contract: sessions that move between boxes (owner, epoch, takeover), on both backends.

Each ``Store`` opened on the test's database is one box; ``join_fleet`` gives it its box id and
its own in-process change feed. Notices between boxes are handed on with
``LocalChangeFeed.deliver``, as a fleet feed does with what it receives.
"""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.errors import SessionMoved, SessionNotFound
from smcp_box.seams import Change
from smcp_box.store import Store
from smcp_box.store.changes import TOPIC_SESSION, LocalChangeFeed

from .conftest import Backend

SESSION_ID = "box_a-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"


class FleetBox:
    """A store standing in for one box, with the feed it publishes on and what it published."""

    def __init__(self, store: Store, box_id: str) -> None:
        self.store = store
        self.box_id = box_id
        self.feed = LocalChangeFeed(box_id)
        self.heard: list[Change] = []
        self.feed.subscribe(TOPIC_SESSION, self.heard.append)
        store.join_fleet(box_id, self.feed)


async def fleet(backend: Backend, *box_ids: str) -> list[FleetBox]:
    return [FleetBox(await backend.open(), box_id) for box_id in box_ids]


async def test_a_session_belongs_to_the_box_that_created_it(backend: Backend) -> None:
    (a,) = await fleet(backend, "box_a")
    await a.store.create_session("t", SESSION_ID, "2025-06-18", {"name": "c"})
    record = await a.store.get_session("t", SESSION_ID)
    assert record is not None
    assert (record.owner_box, record.epoch) == ("box_a", 0)
    # Claiming a session this box owns is the record itself: no write, no notice.
    assert await a.store.claim_session("t", SESSION_ID, record) is record
    assert a.heard == []


async def test_another_box_takes_it_over_with_its_state_and_announces_it(
    backend: Backend,
) -> None:
    a, b = await fleet(backend, "box_a", "box_b")
    await a.store.create_session("t", SESSION_ID, "2025-06-18", {"name": "c"})
    await a.store.update_session_state("t", SESSION_ID, {"log_level": "debug"}, epoch=0)
    seen = await b.store.get_session("t", SESSION_ID)
    assert seen is not None
    assert seen.owner_box == "box_a"

    taken = await b.store.claim_session("t", SESSION_ID, seen)

    assert (taken.owner_box, taken.epoch) == ("box_b", 1)
    assert (taken.session_id, taken.protocol_version) == (SESSION_ID, "2025-06-18")
    assert (taken.client_info, taken.state) == ({"name": "c"}, {"log_level": "debug"})
    (notice,) = b.heard
    tenant, sid_hash_hex, owner = notice.payload.split("\t")
    assert (notice.origin, tenant, owner) == ("box_b", "t", "box_b")
    assert len(bytes.fromhex(sid_hash_hex)) == 32
    assert SESSION_ID not in notice.payload  # a session id is a bearer secret
    # B now serves it from its cache: another claim is free.
    again = await b.store.get_session("t", SESSION_ID)
    assert again is not None
    assert await b.store.claim_session("t", SESSION_ID, again) is again


async def test_the_former_owner_drops_its_cached_copy_on_the_notice(backend: Backend) -> None:
    a, b = await fleet(backend, "box_a", "box_b")
    await a.store.create_session("t", SESSION_ID, "v", {})
    seen = await b.store.get_session("t", SESSION_ID)
    assert seen is not None
    await b.store.claim_session("t", SESSION_ID, seen)
    # Until the notice arrives, A's cached copy still says A owns it.
    stale = await a.store.get_session("t", SESSION_ID)
    assert stale is not None
    assert stale.owner_box == "box_a"

    a.feed.deliver(b.heard[-1])

    fresh = await a.store.get_session("t", SESSION_ID)
    assert fresh is not None
    assert (fresh.owner_box, fresh.epoch) == ("box_b", 1)
    # Malformed notices are logged and ignored, never raised into the feed.
    a.feed.deliver(Change(TOPIC_SESSION, "not a session notice", "box_b"))
    a.feed.deliver(Change(TOPIC_SESSION, "t\tnot hex\tbox_b", "box_b"))


async def test_a_stale_owner_cannot_overwrite_the_new_owners_state(backend: Backend) -> None:
    a, b = await fleet(backend, "box_a", "box_b")
    await a.store.create_session("t", SESSION_ID, "v", {})
    seen = await b.store.get_session("t", SESSION_ID)
    assert seen is not None
    taken = await b.store.claim_session("t", SESSION_ID, seen)
    await b.store.update_session_state("t", SESSION_ID, {"from": "b"}, epoch=taken.epoch)

    # A never heard of the takeover: it writes at the epoch it holds, and is refused.
    with pytest.raises(SessionMoved, match="taken over by another box"):
        await a.store.update_session_state("t", SESSION_ID, {"from": "a"}, epoch=0)

    # The refusal dropped A's copy: A re-reads the new owner's row and state.
    reread = await a.store.get_session("t", SESSION_ID)
    assert reread is not None
    assert (reread.owner_box, reread.epoch, reread.state) == ("box_b", 1, {"from": "b"})
    # A box that owned it before, lost it and took it back (A, B, A) holds a new epoch: a write
    # at its first epoch is still refused.
    back = await a.store.claim_session("t", SESSION_ID, reread)
    assert (back.owner_box, back.epoch) == ("box_a", 2)
    with pytest.raises(SessionMoved):
        await a.store.update_session_state("t", SESSION_ID, {"from": "a, first epoch"}, epoch=0)
    await a.store.update_session_state("t", SESSION_ID, {"from": "a"}, epoch=back.epoch)
    b.feed.deliver(a.heard[-1])  # A's takeover notice reaches B, which drops its copy
    final = await b.store.get_session("t", SESSION_ID)
    assert final is not None
    assert final.state == {"from": "a"}


async def test_of_two_boxes_racing_for_a_session_exactly_one_wins(backend: Backend) -> None:
    a, b, c = await fleet(backend, "box_a", "box_b", "box_c")
    await a.store.create_session("t", SESSION_ID, "v", {})
    seen_b = await b.store.get_session("t", SESSION_ID)
    seen_c = await c.store.get_session("t", SESSION_ID)
    assert seen_b is not None
    assert seen_c is not None

    got_b, got_c = await asyncio.gather(
        b.store.claim_session("t", SESSION_ID, seen_b),
        c.store.claim_session("t", SESSION_ID, seen_c),
    )

    # Both serve from the winner's row; only the winner announced a takeover.
    assert got_b.owner_box == got_c.owner_box
    assert got_b.epoch == got_c.epoch == 1
    winner, loser = (b, c) if got_b.owner_box == "box_b" else (c, b)
    assert len(winner.heard) == 1
    assert loser.heard == []
    rows = await backend.raw("SELECT owner_box, epoch FROM sessions")
    assert rows == [(winner.box_id, 1)]
    # The loser cannot write at the winner's epoch: it must take the session over first.
    with pytest.raises(SessionMoved):
        await loser.store.update_session_state("t", SESSION_ID, {}, epoch=1)


async def test_event_ids_go_on_across_a_takeover(backend: Backend) -> None:
    a, b = await fleet(backend, "box_a", "box_b")
    await a.store.create_session("t", SESSION_ID, "v", {})
    before = [await a.store.append_event("t", SESSION_ID, "_standalone", f"a{i}") for i in (1, 2)]
    seen = await b.store.get_session("t", SESSION_ID)
    assert seen is not None
    await b.store.claim_session("t", SESSION_ID, seen)
    # The former owner's call still running appends too: ids come from the database.
    after = await asyncio.gather(
        b.store.append_event("t", SESSION_ID, "_standalone", "b1"),
        a.store.append_event("t", SESSION_ID, "_standalone", "a3"),
        b.store.append_event("t", SESSION_ID, "_standalone", "b2"),
    )
    assert before == ["1-1", "1-2"]
    assert sorted(after, key=lambda i: int(i.split("-")[1])) == ["1-3", "1-4", "1-5"]
    replay = await b.store.replay_events("t", SESSION_ID, "1-1")
    assert replay is not None
    stream_id, events = replay
    assert stream_id == "_standalone"
    assert [event_id for event_id, _ in events] == ["1-2", "1-3", "1-4", "1-5"]
    assert sorted(payload for _, payload in events) == ["a2", "a3", "b1", "b2"]


async def test_an_ended_session_cannot_be_taken_over_and_its_end_is_announced(
    backend: Backend,
) -> None:
    a, b = await fleet(backend, "box_a", "box_b")
    await a.store.create_session("t", SESSION_ID, "v", {})
    seen = await b.store.get_session("t", SESSION_ID)
    assert seen is not None
    assert await a.store.end_session("t", SESSION_ID) is True
    (notice,) = a.heard
    assert notice.payload.endswith("\tbox_a")
    with pytest.raises(SessionNotFound):
        await b.store.claim_session("t", SESSION_ID, seen)
