"""Contract: durable tasks on both backends, from one box and from two sharing the database.

A second store opened with another ``box_id`` stands for a second box: crash recovery of one
box fails only the tasks that box was running.
"""

from __future__ import annotations

import asyncio
from typing import Any

from smcp_box.errors import TaskQuotaExceeded
from smcp_box.store import Store
from smcp_box.store.tasks import TaskRecord
from tests.store.conftest import FakeClock

from .conftest import Backend

REASON = "the box restarted while the task ran"


async def _create(
    store: Store, tenant: str = "notes", owner: str = "alice", **kw: Any
) -> TaskRecord:
    kw.setdefault("ttl_ms", 60_000)
    kw.setdefault("poll_interval_ms", 1_000)
    kw.setdefault("timeout_s", 30.0)
    kw.setdefault("max_open", 10)
    return await store.tasks.create(tenant, owner, "slow", {"name": "slow"}, **kw)


async def test_create_get_list_and_finish(store: Store, clock: FakeClock) -> None:
    task = await _create(store)
    assert task.status == "working"
    assert task.expires_at == clock.now + 60
    assert task.timeout_s == 30.0
    assert await store.tasks.get("notes", task.task_id, "alice") == task
    assert await store.tasks.get("notes", task.task_id, "bob") is None
    assert await store.tasks.get("utils", task.task_id, "alice") is None
    other = await _create(store, owner="bob")
    page = await store.tasks.list("notes", "alice")
    assert [t.task_id for t in page.tasks] == [task.task_id]
    everyone = await store.tasks.list("notes", limit=1)
    assert [t.task_id for t in everyone.tasks] == [task.task_id]
    rest = await store.tasks.list("notes", cursor=everyone.next_cursor)
    assert [t.task_id for t in rest.tasks] == [other.task_id]
    assert rest.next_cursor is None
    assert await store.tasks.count_open() == {"notes": 2}

    clock.advance(5)
    assert await store.tasks.complete("notes", task.task_id, {"content": []}) is True
    assert await store.tasks.fail("notes", task.task_id, {"code": 1, "message": "x"}) is False
    done = await store.tasks.get("notes", task.task_id, "alice")
    assert done is not None
    assert (done.status, done.result, done.expires_at) == (
        "completed",
        {"content": []},
        clock.now + 60,
    )
    assert await store.tasks.open_by_status("notes") == {"working": 1, "input_required": 0}


async def test_input_rounds_and_cancel(store: Store) -> None:
    task = await _create(store)
    asks = {"a": {"method": "elicitation/create"}, "b": {"method": "elicitation/create"}}
    assert await store.tasks.require_input("notes", task.task_id, asks, {"step": 1}) is True
    waiting = await store.tasks.answer_inputs("notes", task.task_id, "alice", {"a": 1, "zz": 2})
    assert waiting is not None
    assert (waiting.status, waiting.input_responses) == ("input_required", {"a": 1})
    assert waiting.input_requests == {"b": asks["b"]}
    ready = await store.tasks.answer_inputs("notes", task.task_id, "alice", {"b": 2})
    assert ready is not None
    assert (ready.status, ready.input_responses, ready.request_state) == (
        "working",
        {"a": 1, "b": 2},
        {"step": 1},
    )
    assert await store.tasks.resume("notes", task.task_id) is True
    resumed = await store.tasks.get("notes", task.task_id, "alice")
    assert resumed is not None
    assert (resumed.input_responses, resumed.request_state) == ({}, None)

    cancelled = await store.tasks.cancel("notes", task.task_id, "alice")
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    assert await store.tasks.complete("notes", task.task_id, {"content": []}) is False
    again = await store.tasks.cancel("notes", task.task_id, "alice")
    assert again is not None
    assert again.status == "cancelled"


async def test_the_open_task_quota_holds_across_boxes(backend: Backend) -> None:
    first = await backend.open(box_id="one")
    second = await backend.open(box_id="two")

    async def attempt(store: Store) -> bool:
        try:
            await _create(store, max_open=5)
        except TaskQuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(s) for s in (first, second) * 6))
    assert results.count(True) == 5
    assert await first.tasks.count_open("notes") == {"notes": 5}


async def test_ttl_purge_keeps_running_tasks(store: Store, clock: FakeClock) -> None:
    running = await _create(store, ttl_ms=1_000)
    finished = await _create(store, ttl_ms=1_000)
    await store.tasks.complete("notes", finished.task_id, {"content": []})
    clock.advance(2)
    assert await store.tasks.get("notes", finished.task_id, "alice") is None
    assert await store.tasks.purge_expired() == 1
    assert await store.tasks.get("notes", running.task_id, "alice") is not None
    assert await store.tasks.delete_tenant("notes") == 1


async def test_recovery_fails_only_the_own_boxes_running_tasks(backend: Backend) -> None:
    one = await backend.open(box_id="one")
    two = await backend.open(box_id="two")
    mine = await _create(one)
    theirs = await _create(two)
    parked = await _create(one)
    await one.tasks.require_input("notes", parked.task_id, {"a": {}}, None)

    assert await one.tasks.recover_for("one", REASON) == 1
    failed = await one.tasks.get("notes", mine.task_id, "alice")
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", {"code": -32603, "message": REASON})
    # The other box's call is still running there, and can still finish.
    alive = await one.tasks.get("notes", theirs.task_id, "alice")
    assert alive is not None
    assert alive.status == "working"
    assert await two.tasks.complete("notes", theirs.task_id, {"content": []}) is True
    # Waiting for input runs nothing: intact.
    waiting = await one.tasks.get("notes", parked.task_id, "alice")
    assert waiting is not None
    assert waiting.status == "input_required"
    assert await one.tasks.recover_for("one", REASON) == 0


async def test_a_dead_boxs_tasks_are_recovered_by_the_box_that_notices(backend: Backend) -> None:
    dead = await backend.open(box_id="dead")
    survivor = await backend.open(box_id="alive")
    left = await _create(dead)
    parked = await _create(dead)
    await dead.tasks.require_input("notes", parked.task_id, {"a": {}}, {"s": 1})
    await dead.close()

    # The client answers the parked task on the survivor, which runs its next round.
    ready = await survivor.tasks.answer_inputs("notes", parked.task_id, "alice", {"a": 1})
    assert ready is not None
    assert ready.status == "working"
    assert await survivor.tasks.recover_for("dead", REASON) == 1
    gone = await survivor.tasks.get("notes", left.task_id, "alice")
    moved = await survivor.tasks.get("notes", parked.task_id, "alice")
    assert gone is not None
    assert moved is not None
    assert (gone.status, moved.status) == ("failed", "working")


async def test_concurrent_answers_from_two_boxes_lose_none(backend: Backend) -> None:
    rounds = 8
    one = await backend.open(box_id="one")
    two = await backend.open(box_id="two")
    task = await _create(one)
    asks = {f"k{i}": {} for i in range(rounds)}
    await one.tasks.require_input("notes", task.task_id, asks, None)
    await asyncio.gather(
        *(
            (one if i % 2 else two).tasks.answer_inputs(
                "notes", task.task_id, "alice", {f"k{i}": i}
            )
            for i in range(rounds)
        )
    )
    ready = await one.tasks.get("notes", task.task_id, "alice")
    assert ready is not None
    assert ready.status == "working"
    assert ready.input_responses == {f"k{i}": i for i in range(rounds)}
