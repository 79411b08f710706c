"""Session lifetimes and event retention, on an injected clock: a lookup finds an expired session
gone before the cleaner runs, the cleaner deletes by idle time and by age, and the events kept
per session follow the (reloadable) bound."""

from __future__ import annotations

from typing import Any

from smcp_box.store import Store

CLIENT = {"name": "inspector", "version": "1.2"}
IDLE_S = 100.0
MAX_AGE_S = 1_000.0


def configure(store: Store, max_events: int = 1_000) -> None:
    store.configure_sessions(
        idle_timeout_s=IDLE_S, max_age_s=MAX_AGE_S, max_events_per_session=max_events
    )


async def test_idle_session_is_gone_at_lookup_before_the_cleaner_runs(
    store: Store, clock: Any
) -> None:
    configure(store)
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    clock.advance(IDLE_S)
    assert await store.get_session("acme", "s1") is not None, "at the limit it still lives"
    clock.advance(1)
    assert await store.get_session("acme", "s1") is None
    # Its row is still there: only the cleaner deletes, once for all.
    assert [s.session_id for s in await store.list_sessions("acme")] == ["s1"]
    assert await store.expire_sessions(clock.now - IDLE_S, clock.now - MAX_AGE_S) == 1
    assert await store.list_sessions("acme") == []
    assert await store.get_session("acme", "s1") is None


async def test_a_session_in_use_expires_at_its_absolute_age(store: Store, clock: Any) -> None:
    configure(store)
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    created = clock.now
    # Used every half idle period: the idle lifetime never runs out.
    while clock.now + IDLE_S / 2 <= created + MAX_AGE_S:
        clock.advance(IDLE_S / 2)
        await store.update_session_state("acme", "s1", {"used": clock.now})
        assert await store.get_session("acme", "s1") is not None
    clock.advance(IDLE_S / 2)
    assert await store.get_session("acme", "s1") is None
    # The cleaner deletes it by age although it was seen just now.
    assert await store.expire_sessions(clock.now - IDLE_S, clock.now - MAX_AGE_S) == 1


async def test_events_keep_a_cached_session_from_looking_idle(store: Store, clock: Any) -> None:
    configure(store)
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    assert await store.get_session("acme", "s1") is not None  # cached now
    clock.advance(IDLE_S - 1)
    await store.append_event("acme", "s1", "get", "tick")
    clock.advance(IDLE_S - 1)
    # The row was marked seen by the append; the lookup (from the cache) agrees.
    assert await store.get_session("acme", "s1") is not None
    assert await store.expire_sessions(clock.now - IDLE_S, clock.now - MAX_AGE_S) == 0


async def test_cleaner_without_an_age_bound_deletes_by_idle_time_only(
    store: Store, clock: Any
) -> None:
    await store.create_session("acme", "old", "2025-06-18", CLIENT)
    clock.advance(10)
    await store.update_session_state("acme", "old", {})
    assert await store.expire_sessions(idle_before=clock.now - 5) == 0
    assert await store.expire_sessions(clock.now - 5, created_before=clock.now - 5) == 1


async def test_event_retention_drops_the_oldest_and_replay_gives_what_is_left(
    store: Store,
) -> None:
    configure(store, max_events=3)
    await store.create_session("acme", "s1", "2025-06-18", CLIENT)
    ids = [await store.append_event("acme", "s1", "get", f"e{i}") for i in range(5)]
    # Resuming from a dropped event: the events still kept, not a refusal.
    assert await store.replay_events("acme", "s1", ids[0]) == (
        "get",
        [(ids[2], "e2"), (ids[3], "e3"), (ids[4], "e4")],
    )
    # A lower bound (a reload) applies at the next append.
    configure(store, max_events=1)
    last = await store.append_event("acme", "s1", "get", "e5")
    assert await store.replay_events("acme", "s1", ids[0]) == ("get", [(last, "e5")])
