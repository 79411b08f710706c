"""Contract: the fleet's heartbeat rows, box-id claims and derived statuses.

Two stores opened on one database are two boxes; the test clock decides who is alive.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from smcp_box.errors import ConfigError
from smcp_box.store import Store
from smcp_box.store.fleet import Beat, derive_status, ended_on_this_host, new_instance
from tests.store.conftest import FakeClock

from .conftest import Backend

DEAD_AFTER_S = 10.0


def beat(box_id: str, instance: str, **changes: object) -> Beat:
    fields: dict[str, object] = {
        "box_id": box_id,
        "instance": instance,
        "address": f"{box_id}.lan:8765",
        "version": "0.1.0",
    }
    fields.update(changes)
    return Beat(**fields)  # type: ignore[arg-type]


async def statuses(store: Store) -> dict[str, str]:
    return {b.box_id: b.status for b in await store.fleet.boxes(dead_after_s=DEAD_AFTER_S)}


async def test_two_boxes_beat_and_one_falls_silent(backend: Backend, clock: FakeClock) -> None:
    one, two = await backend.open(), await backend.open()
    await one.fleet.claim(beat("one", "i1", sessions=3), dead_after_s=DEAD_AFTER_S)
    await two.fleet.claim(beat("two", "i2"), dead_after_s=DEAD_AFTER_S)
    [first, second] = await two.fleet.boxes(dead_after_s=DEAD_AFTER_S)
    assert (first.box_id, first.address, first.sessions, first.status) == (
        "one",
        "one.lan:8765",
        3,
        "up",
    )
    assert (first.started_at, first.last_beat, first.version) == (clock.now, clock.now, "0.1.0")
    assert second.box_id == "two"

    clock.advance(6)
    assert await two.fleet.beat(beat("two", "i2", state="draining", sessions=1)) is True
    clock.advance(5)  # one: silent for 11 s; two: beat 5 s ago
    found = {b.box_id: b for b in await one.fleet.boxes(dead_after_s=DEAD_AFTER_S)}
    assert (found["one"].status, found["one"].beat_age_s) == ("gone", 11.0)
    assert (found["two"].status, found["two"].sessions) == ("draining", 1)


async def test_a_live_box_id_is_refused_to_another_instance(
    backend: Backend, clock: FakeClock
) -> None:
    one, impostor = await backend.open(), await backend.open()
    await one.fleet.claim(beat("same", "i1", address="10.0.0.1:8765"), dead_after_s=DEAD_AFTER_S)
    clock.advance(3)
    with pytest.raises(ConfigError) as refused:
        await impostor.fleet.claim(beat("same", "i2"), dead_after_s=DEAD_AFTER_S)
    message = refused.value.message
    assert "10.0.0.1:8765" in message
    assert "3.0 s ago" in message
    assert "[cluster] box_id" in message
    # The holder's row is untouched and it keeps beating.
    assert await one.fleet.beat(beat("same", "i1", address="10.0.0.1:8765")) is True
    # The same instance may claim again (a restart of the heartbeat within one process).
    await one.fleet.claim(beat("same", "i1"), dead_after_s=DEAD_AFTER_S)


async def test_a_stale_or_stopped_row_is_taken_over(backend: Backend, clock: FakeClock) -> None:
    old, new = await backend.open(), await backend.open()
    await old.fleet.claim(beat("b", "old"), dead_after_s=DEAD_AFTER_S)
    clock.advance(DEAD_AFTER_S)
    await new.fleet.claim(beat("b", "new", address="new:1"), dead_after_s=DEAD_AFTER_S)
    [row] = await new.fleet.boxes(dead_after_s=DEAD_AFTER_S)
    assert (row.instance, row.address, row.status, row.started_at) == (
        "new",
        "new:1",
        "up",
        clock.now,
    )
    # The old process, back from a pause, finds its row gone and stops beating as "b".
    assert await old.fleet.beat(beat("b", "old")) is False
    assert await old.fleet.stop("b", "old") is False
    assert await statuses(new) == {"b": "up"}

    # A clean stop frees the id at once.
    assert await new.fleet.stop("b", "new") is True
    assert await statuses(new) == {"b": "gone"}
    await old.fleet.claim(beat("b", "third"), dead_after_s=DEAD_AFTER_S)
    assert await statuses(old) == {"b": "up"}
    assert await old.fleet.forget("b") is True
    assert await old.fleet.boxes(dead_after_s=DEAD_AFTER_S) == []


async def test_two_instances_claiming_one_id_at_once_one_wins(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    results = await asyncio.gather(
        *(
            store.fleet.claim(beat("race", f"i{n}"), dead_after_s=DEAD_AFTER_S)
            for n, store in enumerate(stores)
        ),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConfigError", "NoneType"]


async def test_database_health_names_backend_and_location(backend: Backend) -> None:
    store = await backend.open()
    health = await store.database_health()
    assert (health.backend, health.reachable, health.error) == (backend.name, True, None)
    assert health.latency_ms >= 0
    assert "password" not in health.location
    if backend.name == "sqlite":
        assert health.location == backend.where
    await store.close()
    closed = await store.database_health()
    assert closed.reachable is False
    assert closed.error is not None
    assert "closed" in closed.error


def test_status_derivation() -> None:
    assert derive_status("up", 9.9, 10) == "up"
    assert derive_status("up", 10, 10) == "gone"
    assert derive_status("draining", 1, 10) == "draining"
    assert derive_status("stopped", 0, 10) == "gone"


async def test_a_crashed_process_of_this_host_is_taken_over_at_once(backend: Backend) -> None:
    # A process that ran here and ended (its PID is free): its row is fresh but dead.
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    crashed = f"{socket.gethostname()}/{child.pid}/abc"
    assert ended_on_this_host(crashed)
    # This very process, and processes of other hosts, are never judged from here.
    assert not ended_on_this_host(f"{socket.gethostname()}/{os.getpid()}/abc")
    assert not ended_on_this_host(f"elsewhere_{socket.gethostname()}/1/abc")
    old, restarted = await backend.open(), await backend.open()
    await old.fleet.claim(beat("b", crashed), dead_after_s=DEAD_AFTER_S)
    await restarted.fleet.claim(beat("b", new_instance()), dead_after_s=DEAD_AFTER_S)
    [row] = await restarted.fleet.boxes(dead_after_s=DEAD_AFTER_S)
    assert row.instance != crashed
    assert row.instance.startswith(f"{socket.gethostname()}/{os.getpid()}/")
