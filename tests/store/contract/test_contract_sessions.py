"""Contract: sessions and their replayable events, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.errors import SessionNotFound, StoreError
from smcp_box.store import Store

from .conftest import Backend


async def test_create_get_update_end(store: Store) -> None:
    await store.create_session("t", "sid-1", "2025-06-18", {"name": "client"})
    record = await store.get_session("t", "sid-1")
    assert record is not None
    assert (record.session_id, record.client_info, record.state) == (
        "sid-1",
        {"name": "client"},
        {},
    )
    assert await store.get_session("other", "sid-1") is None
    await store.update_session_state("t", "sid-1", {"level": "debug"})
    record = await store.get_session("t", "sid-1")
    assert record is not None
    assert record.state == {"level": "debug"}
    assert await store.count_open_sessions("t") == 1
    assert await store.end_session("t", "sid-1") is True
    assert await store.end_session("t", "sid-1") is False
    assert await store.count_open_sessions() == 0
    with pytest.raises(SessionNotFound):
        await store.update_session_state("t", "sid-1", {})


async def test_a_reused_session_id_is_refused(store: Store) -> None:
    await store.create_session("t", "sid", "v", {})
    with pytest.raises(StoreError, match="already exists"):
        await store.create_session("t", "sid", "v", {})


async def test_events_replay_after_an_id_and_never_reuse_ids(store: Store) -> None:
    await store.create_session("t", "s", "v", {})
    ids = [await store.append_event("t", "s", "stream-a", f"e{i}") for i in range(3)]
    other = await store.append_event("t", "s", "stream-b", "b0")
    assert ids == ["1-1", "1-2", "1-3"]
    assert other == "2-1"
    assert await store.replay_events("t", "s", "1-1") == (
        "stream-a",
        [("1-2", "e1"), ("1-3", "e2")],
    )
    assert await store.replay_events("t", "s", "1-9") is None
    assert await store.replay_events("t", "s", "garbage") is None


async def test_old_events_are_pruned_past_the_bound(backend: Backend) -> None:
    store = await backend.open(max_events_per_session=2)
    await store.create_session("t", "s", "v", {})
    for i in range(4):
        await store.append_event("t", "s", "st", f"e{i}")
    assert await store.replay_events("t", "s", "1-1") == ("st", [("1-3", "e2"), ("1-4", "e3")])


async def test_another_box_sees_the_session_and_its_events(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    await first.create_session("t", "s", "v", {"n": 1})
    await first.append_event("t", "s", "st", "hello")
    record = await second.get_session("t", "s")
    assert record is not None
    assert record.client_info == {"n": 1}
    assert await second.replay_events("t", "s", "1-1") == ("st", [])
    await second.append_event("t", "s", "st", "from the second box")
    assert await first.replay_events("t", "s", "1-1") == ("st", [("1-2", "from the second box")])


async def test_concurrent_appends_from_two_boxes_get_distinct_ids(backend: Backend) -> None:
    boxes = [await backend.open(), await backend.open()]
    await boxes[0].create_session("t", "s", "v", {})
    ids = await asyncio.gather(
        *(boxes[i % 2].append_event("t", "s", "st", f"e{i}") for i in range(30))
    )
    assert sorted(ids, key=lambda i: int(i.split("-")[1])) == [f"1-{n}" for n in range(1, 31)]
    replayed = await boxes[1].replay_events("t", "s", "1-1")
    assert replayed is not None
    assert len(replayed[1]) == 29


async def test_expire_and_list(backend: Backend, clock: object) -> None:
    store = await backend.open()
    await store.create_session("a", "s1", "v", {})
    await store.create_session("b", "s2", "v", {})
    assert [r.tenant for r in await store.list_sessions()] == ["a", "b"]
    assert [r.session_id for r in await store.list_sessions("b")] == ["s2"]
    assert await store.expire_sessions(idle_before=0.0) == 0
    assert await store.expire_sessions(idle_before=float("inf")) == 2
    assert await store.list_sessions() == []


async def test_session_ids_and_events_are_stored_encrypted(backend: Backend) -> None:
    store = await backend.open()
    await store.create_session("t", "visible-session-id", "v", {"client": "visible-info"})
    await store.append_event("t", "visible-session-id", "visible-stream", "visible-payload")
    for table in ("sessions", "streams", "events"):
        for row in await backend.raw(f"SELECT * FROM {table}"):
            for value in row:
                if isinstance(value, bytes | memoryview):
                    assert b"visible" not in bytes(value), table
