"""Sessions and replayable SSE events."""

from __future__ import annotations

from typing import Any

import pytest

from smcp_box.errors import SessionNotFound, StoreError
from smcp_box.seams import SessionRecord, SessionStore
from smcp_box.store import Store

CLIENT = {"name": "inspector", "version": "1.2"}


async def test_store_satisfies_session_store_protocol(store: Store) -> None:
    seam: SessionStore = store
    await seam.create_session("acme", "s1", "2025-06-18", CLIENT)
    assert await seam.get_session("acme", "s1") is not None


async def test_session_round_trip(store: Store, clock: Any) -> None:
    await store.create_session("acme", "sess-1", "2025-06-18", CLIENT)
    record = await store.get_session("acme", "sess-1")
    assert record == SessionRecord(
        tenant="acme",
        session_id="sess-1",
        protocol_version="2025-06-18",
        client_info=CLIENT,
        created_at=clock.now,
        last_seen=clock.now,
        ended=False,
        state={},
    )
    clock.advance(5)
    await store.update_session_state("acme", "sess-1", {"initialized": True, "log": "info"})
    record = await store.get_session("acme", "sess-1")
    assert record is not None
    assert record.state == {"initialized": True, "log": "info"}
    assert record.last_seen == clock.now
    assert record.created_at == clock.now - 5


async def test_unknown_session_is_none(store: Store) -> None:
    assert await store.get_session("acme", "nope") is None


async def test_duplicate_session_is_refused(store: Store) -> None:
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    with pytest.raises(StoreError, match="already exists"):
        await store.create_session("acme", "s1", "2025-06-18", CLIENT)


async def test_sessions_are_tenant_isolated(store: Store) -> None:
    await store.create_session("acme", "shared-id", "2025-06-18", {"who": "acme"})
    assert await store.get_session("globex", "shared-id") is None
    # The same id in another tenant is a different session.
    await store.create_session("globex", "shared-id", "2025-03-26", {"who": "globex"})
    acme = await store.get_session("acme", "shared-id")
    globex = await store.get_session("globex", "shared-id")
    assert acme is not None
    assert globex is not None
    assert acme.client_info == {"who": "acme"}
    assert globex.client_info == {"who": "globex"}
    assert [s.tenant for s in await store.list_sessions("acme")] == ["acme"]
    assert len(await store.list_sessions(None)) == 2
    await store.end_session("globex", "shared-id")
    assert await store.get_session("acme", "shared-id") == acme


async def test_update_unknown_or_ended_session_raises(store: Store) -> None:
    with pytest.raises(SessionNotFound):
        await store.update_session_state("acme", "nope", {})
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    assert await store.end_session("acme", "s1") is True
    with pytest.raises(SessionNotFound):
        await store.update_session_state("acme", "s1", {})
    with pytest.raises(SessionNotFound):
        await store.append_event("acme", "s1", "get", "data")


async def test_end_session(store: Store) -> None:
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    event_id = await store.append_event("acme", "s1", "get", "x")
    assert await store.end_session("acme", "s1") is True
    assert await store.end_session("acme", "s1") is False
    assert await store.end_session("acme", "unknown") is False
    record = await store.get_session("acme", "s1")
    assert record is not None
    assert record.ended
    assert await store.replay_events("acme", "s1", event_id) is None
    assert await store.count_open_sessions("acme") == 0


async def test_list_and_count_sessions(store: Store, clock: Any) -> None:
    await store.create_session("acme", "a1", "2025-06-18", CLIENT)
    clock.advance(1)
    await store.create_session("acme", "a2", "2025-06-18", CLIENT)
    clock.advance(1)
    await store.create_session("globex", "g1", "2025-06-18", CLIENT)
    assert [s.session_id for s in await store.list_sessions("acme")] == ["a1", "a2"]
    assert [s.session_id for s in await store.list_sessions(None)] == ["a1", "a2", "g1"]
    assert await store.count_open_sessions("acme") == 2
    assert await store.count_open_sessions(None) == 3
    await store.end_session("acme", "a1")
    assert await store.count_open_sessions("acme") == 1
    assert await store.count_open_sessions("nobody") == 0


async def test_expire_sessions_deletes_idle_sessions_and_events(store: Store, clock: Any) -> None:
    await store.create_session("acme", "old", "2025-06-18", CLIENT)
    old_event = await store.append_event("acme", "old", "get", "old data")
    clock.advance(100)
    await store.create_session("acme", "new", "2025-06-18", CLIENT)
    new_event = await store.append_event("acme", "new", "get", "new data")
    await store.append_event("acme", "new", "get", "more")
    assert await store.expire_sessions(idle_before=clock.now - 50) == 1
    assert await store.get_session("acme", "old") is None
    assert await store.replay_events("acme", "old", old_event) is None
    assert await store.replay_events("acme", "new", new_event) == ("get", [("1-2", "more")])
    assert await store.expire_sessions(idle_before=clock.now - 50) == 0


async def test_activity_keeps_session_alive(store: Store, clock: Any) -> None:
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    clock.advance(100)
    await store.append_event("acme", "s1", "get", "ping")
    assert await store.expire_sessions(idle_before=clock.now - 50) == 0


async def test_replay_two_interleaved_streams(store: Store) -> None:
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    ids: dict[str, list[str]] = {"get": [], "post-7": []}
    for i in range(4):
        for stream in ids:
            ids[stream].append(await store.append_event("acme", "s1", stream, f"{stream}#{i}"))
    all_ids = ids["get"] + ids["post-7"]
    assert len(set(all_ids)) == len(all_ids)

    replay = await store.replay_events("acme", "s1", ids["get"][1])
    assert replay == ("get", [(ids["get"][2], "get#2"), (ids["get"][3], "get#3")])
    replay = await store.replay_events("acme", "s1", ids["post-7"][0])
    assert replay is not None
    assert replay[0] == "post-7"
    assert [payload for _, payload in replay[1]] == ["post-7#1", "post-7#2", "post-7#3"]
    assert [event_id for event_id, _ in replay[1]] == ids["post-7"][1:]
    # The last event of a stream: known, nothing after it.
    assert await store.replay_events("acme", "s1", ids["get"][3]) == ("get", [])


@pytest.mark.parametrize(
    "bad_id",
    ["", "garbage", "1", "1-", "-1", "1-2-3", "9-1", "1-99", "1-0", "0-0", " 1-1", "\u0661-\u0661"],
)
async def test_replay_unknown_or_garbled_id_is_none(store: Store, bad_id: str) -> None:
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    await store.append_event("acme", "s1", "get", "x")
    await store.append_event("acme", "s1", "get", "y")
    assert await store.replay_events("acme", "s1", bad_id) is None


async def test_replay_never_crosses_sessions_or_tenants(store: Store) -> None:
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    await store.create_session("acme", "s2", "2025-06-18", CLIENT)
    await store.create_session("globex", "s1", "2025-06-18", CLIENT)
    first = await store.append_event("acme", "s1", "get", "acme s1 a")
    await store.append_event("acme", "s1", "get", "acme s1 b")
    # Same ids exist in the other sessions, with other payloads.
    assert await store.append_event("acme", "s2", "get", "acme s2 a") == first
    await store.append_event("acme", "s2", "get", "acme s2 b")
    assert await store.append_event("globex", "s1", "get", "globex a") == first
    await store.append_event("globex", "s1", "get", "globex b")

    assert await store.replay_events("acme", "s1", first) == ("get", [("1-2", "acme s1 b")])
    assert await store.replay_events("acme", "s2", first) == ("get", [("1-2", "acme s2 b")])
    assert await store.replay_events("globex", "s1", first) == ("get", [("1-2", "globex b")])
    assert await store.replay_events("initech", "s1", first) is None


async def test_event_cap_prunes_oldest(open_store: Any) -> None:
    store = await open_store(max_events_per_session=5)
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    ids = []
    for i in range(8):
        stream = "a" if i % 2 == 0 else "b"
        ids.append(await store.append_event("acme", "s1", stream, f"p{i}"))
    # Events 0..2 were pruned; ids stay known, the client gets what is left.
    replay = await store.replay_events("acme", "s1", ids[0])
    assert replay == ("a", [(ids[4], "p4"), (ids[6], "p6")])
    replay = await store.replay_events("acme", "s1", ids[1])
    assert replay == ("b", [(ids[3], "p3"), (ids[5], "p5"), (ids[7], "p7")])
    # New events keep numbering after pruned ones: ids are never reused.
    assert await store.append_event("acme", "s1", "a", "p8") == "1-5"


async def test_sessions_and_events_survive_restart(open_store: Any, clock: Any) -> None:
    store = await open_store()
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    await store.update_session_state("acme", "s1", {"initialized": True})
    first = await store.append_event("acme", "s1", "get", "one")
    await store.append_event("acme", "s1", "get", "two")
    await store.close()

    reopened = await open_store()
    record = await reopened.get_session("acme", "s1")
    assert record is not None
    assert record.state == {"initialized": True}
    assert record.client_info == CLIENT
    assert await reopened.replay_events("acme", "s1", first) == ("get", [("1-2", "two")])
    # Numbering continues where it stopped.
    assert await reopened.append_event("acme", "s1", "get", "three") == "1-3"
    assert await reopened.append_event("acme", "s1", "other", "x") == "2-1"


async def test_concurrent_appends_get_distinct_ids(store: Store) -> None:
    import asyncio

    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    ids = await asyncio.gather(
        *(store.append_event("acme", "s1", f"stream-{i % 3}", f"p{i}") for i in range(30))
    )
    assert len(set(ids)) == 30


async def test_session_cache_follows_every_write(store: Store) -> None:
    """Reads of open sessions come from a write-through cache; each write must show at once."""
    await store.create_session("acme", "cached", "2025-11-25", {"name": "c"})
    first = await store.get_session("acme", "cached")
    assert first is not None
    assert first.state == {}
    await store.update_session_state("acme", "cached", {"initialized": True})
    updated = await store.get_session("acme", "cached")
    assert updated is not None
    assert updated.state == {"initialized": True}
    assert await store.end_session("acme", "cached")
    ended = await store.get_session("acme", "cached")
    assert ended is not None
    assert ended.ended
    with pytest.raises(SessionNotFound):
        await store.update_session_state("acme", "cached", {})


async def test_session_cache_is_bounded(store: Store) -> None:
    from smcp_box.store.sessions import SESSION_CACHE_SIZE

    sessions = store._sessions
    sessions._cache_size = 3
    for i in range(5):
        await store.create_session("acme", f"s{i}", "2025-11-25", {})
    assert len(sessions._cache) == 3
    # An evicted session is read back from the database (and cached again).
    again = await store.get_session("acme", "s0")
    assert again is not None
    assert again.session_id == "s0"
    assert SESSION_CACHE_SIZE >= 1000
