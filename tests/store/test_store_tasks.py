"""Durable tasks in the store: lifecycle, visibility, quota, TTL, restart marking, sealing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smcp_box.errors import TaskQuotaExceeded
from smcp_box.store import Store
from smcp_box.store.tasks import TaskRecord
from tests.store.conftest import FakeClock, OpenStore


def _request(marker: str = "hello") -> dict[str, Any]:
    return {"name": "slow", "arguments": {"text": marker}}


async def _create(
    store: Store, tenant: str = "notes", owner: str = "alice", **kw: Any
) -> TaskRecord:
    kw.setdefault("ttl_ms", 60_000)
    kw.setdefault("poll_interval_ms", 1_000)
    kw.setdefault("timeout_s", 30.0)
    kw.setdefault("max_open", 10)
    return await store.tasks.create(tenant, owner, "slow", _request(), **kw)


async def test_create_then_get_returns_the_working_task(store: Store, clock: FakeClock) -> None:
    task = await _create(store)
    assert task.status == "working"
    assert task.created_at == task.updated_at == clock.now
    assert task.expires_at == clock.now + 60
    assert task.request == _request()
    assert task.result is None
    assert task.error is None
    assert task.input_requests == {}
    assert await store.tasks.get("notes", task.task_id, "alice") == task


async def test_ids_are_long_and_distinct(open_store: OpenStore) -> None:
    import secrets

    store = await open_store(token_source=secrets.token_bytes)
    ids = {(await _create(store)).task_id for _ in range(5)}
    assert len(ids) == 5
    assert all(len(task_id) >= 22 for task_id in ids)  # 128 bits in base64url


async def test_a_task_is_visible_only_to_its_tenant_and_owner(store: Store) -> None:
    task = await _create(store)
    assert await store.tasks.get("utils", task.task_id, "alice") is None
    assert await store.tasks.get("notes", task.task_id, "bob") is None
    assert await store.tasks.cancel("notes", task.task_id, "bob") is None
    assert await store.tasks.answer_inputs("notes", task.task_id, "bob", {"k": 1}) is None
    # The admin's view (owner None) sees it.
    assert await store.tasks.get("notes", task.task_id, None) is not None


async def test_complete_and_fail_are_final(store: Store) -> None:
    done = await _create(store)
    assert await store.tasks.complete("notes", done.task_id, {"content": []}) is True
    assert await store.tasks.fail("notes", done.task_id, {"code": 1, "message": "x"}) is False
    got = await store.tasks.get("notes", done.task_id, "alice")
    assert got is not None
    assert got.status == "completed"
    assert got.result == {"content": []}
    assert got.error is None

    failed = await _create(store)
    error = {"code": -32050, "message": "trapped"}
    assert await store.tasks.fail("notes", failed.task_id, error) is True
    assert await store.tasks.complete("notes", failed.task_id, {"content": []}) is False
    got = await store.tasks.get("notes", failed.task_id, "alice")
    assert got is not None
    assert got.status == "failed"
    assert got.error == error
    assert got.result is None


async def test_cancel_is_idempotent_and_wins_over_a_late_result(store: Store) -> None:
    task = await _create(store)
    cancelled = await store.tasks.cancel("notes", task.task_id, "alice")
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    again = await store.tasks.cancel("notes", task.task_id, "alice")
    assert again is not None
    assert again.status == "cancelled"
    assert await store.tasks.complete("notes", task.task_id, {"content": []}) is False
    assert await store.tasks.cancel("notes", "no-such-task", "alice") is None


async def test_input_rounds_collect_responses_until_none_is_pending(store: Store) -> None:
    task = await _create(store)
    requests = {"a": {"method": "elicitation/create"}, "b": {"method": "elicitation/create"}}
    assert await store.tasks.require_input("notes", task.task_id, requests, {"round": 1})
    parked = await store.tasks.get("notes", task.task_id, "alice")
    assert parked is not None
    assert parked.status == "input_required"
    assert parked.input_requests == requests
    assert parked.request_state == {"round": 1}

    partial = await store.tasks.answer_inputs("notes", task.task_id, "alice", {"a": {"x": 1}})
    assert partial is not None
    assert partial.status == "input_required"
    assert list(partial.input_requests) == ["b"]
    # An unknown key is ignored and changes nothing.
    same = await store.tasks.answer_inputs("notes", task.task_id, "alice", {"zzz": {}})
    assert same == partial

    ready = await store.tasks.answer_inputs("notes", task.task_id, "alice", {"b": {"y": 2}})
    assert ready is not None
    assert ready.status == "working"
    assert ready.input_responses == {"a": {"x": 1}, "b": {"y": 2}}
    assert ready.request_state == {"round": 1}
    assert await store.tasks.resume("notes", task.task_id) is True
    resumed = await store.tasks.get("notes", task.task_id, "alice")
    assert resumed is not None
    assert resumed.input_responses == {}
    assert resumed.request_state is None


async def test_require_input_on_a_cancelled_task_is_refused(store: Store) -> None:
    task = await _create(store)
    await store.tasks.cancel("notes", task.task_id, "alice")
    assert await store.tasks.require_input("notes", task.task_id, {"a": {}}, None) is False


async def test_open_task_quota_boundary_is_per_tenant(store: Store) -> None:
    first = await _create(store, max_open=2)
    await _create(store, max_open=2)
    with pytest.raises(TaskQuotaExceeded) as caught:
        await _create(store, max_open=2)
    assert caught.value.quota == "max_open_tasks"
    assert "max_open_tasks" in caught.value.message
    await _create(store, tenant="utils", max_open=2)  # another tenant's quota is its own
    # A finished task no longer counts.
    await store.tasks.complete("notes", first.task_id, {"content": []})
    await _create(store, max_open=2)
    assert await store.tasks.count_open() == {"notes": 2, "utils": 1}


async def test_list_pages_with_a_cursor(store: Store) -> None:
    made = [await _create(store) for _ in range(5)]
    await _create(store, owner="bob")
    first = await store.tasks.list("notes", "alice", limit=2)
    assert [t.task_id for t in first.tasks] == [t.task_id for t in made[:2]]
    assert first.next_cursor is not None
    second = await store.tasks.list("notes", "alice", cursor=first.next_cursor, limit=2)
    third = await store.tasks.list("notes", "alice", cursor=second.next_cursor, limit=2)
    assert [t.task_id for t in second.tasks + third.tasks] == [t.task_id for t in made[2:]]
    assert third.next_cursor is None
    assert len((await store.tasks.list()).tasks) == 6
    with pytest.raises(ValueError, match="cursor"):
        await store.tasks.list(cursor="not-a-cursor")


async def test_ttl_keeps_a_task_until_expiry_then_purges_it(store: Store, clock: FakeClock) -> None:
    done = await _create(store, ttl_ms=10_000)
    await store.tasks.complete("notes", done.task_id, {"content": []})
    running = await _create(store, ttl_ms=10_000)
    waiting = await _create(store, ttl_ms=10_000)
    await store.tasks.require_input("notes", waiting.task_id, {"a": {}}, None)
    clock.advance(9.999)
    assert await store.tasks.purge_expired() == 0
    assert await store.tasks.get("notes", done.task_id, "alice") is not None
    clock.advance(0.001)
    # Expired and not running: invisible at once, deleted by the purge.
    assert await store.tasks.get("notes", done.task_id, "alice") is None
    assert await store.tasks.get("notes", waiting.task_id, "alice") is None
    assert await store.tasks.purge_expired() == 2  # the finished one and the waiting one
    assert await store.tasks.get("notes", waiting.task_id, None) is None
    # A running task is kept until its call ends.
    assert await store.tasks.get("notes", running.task_id, "alice") is not None


async def test_each_change_keeps_the_task_a_full_ttl_longer(store: Store, clock: FakeClock) -> None:
    task = await _create(store, ttl_ms=10_000)
    clock.advance(8)
    await store.tasks.complete("notes", task.task_id, {"content": []})
    clock.advance(8)  # 16 s after creation, 8 s after the result arrived
    kept = await store.tasks.get("notes", task.task_id, "alice")
    assert kept is not None
    assert kept.expires_at == clock.now + 2
    assert await store.tasks.purge_expired() == 0
    clock.advance(2)
    assert await store.tasks.purge_expired() == 1


async def test_restart_fails_running_tasks_with_a_reason(
    open_store: OpenStore, db_path: Path, clock: FakeClock
) -> None:
    store = await open_store()
    running = await _create(store)
    waiting = await _create(store)
    await store.tasks.require_input("notes", waiting.task_id, {"a": {}}, None)
    done = await _create(store)
    await store.tasks.complete("notes", done.task_id, {"content": []})
    await store.close()

    again = await open_store()
    assert await again.tasks.recover_for(again.box_id, "the box restarted while the task ran") == 1
    failed = await again.tasks.get("notes", running.task_id, "alice")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == {"code": -32603, "message": "the box restarted while the task ran"}
    still = await again.tasks.get("notes", waiting.task_id, "alice")
    assert still is not None
    assert still.status == "input_required"
    kept = await again.tasks.get("notes", done.task_id, "alice")
    assert kept is not None
    assert kept.status == "completed"


async def test_params_inputs_and_results_are_sealed_on_disk(
    store: Store, db_path: Path, raw_db: Callable[[], Any]
) -> None:
    task = await store.tasks.create(
        "notes",
        "alice",
        "slow",
        _request("ARGUMENT-MARKER-1"),
        ttl_ms=60_000,
        poll_interval_ms=1_000,
        timeout_s=30.0,
        max_open=10,
    )
    await store.tasks.require_input(
        "notes", task.task_id, {"k": {"params": "INPUT-MARKER-2"}}, "STATE-MARKER-3"
    )
    await store.tasks.answer_inputs("notes", task.task_id, "alice", {"k": "RESPONSE-MARKER-4"})
    await store.tasks.complete("notes", task.task_id, {"content": [{"text": "RESULT-MARKER-5"}]})
    other = await _create(store)
    await store.tasks.fail("notes", other.task_id, {"code": 1, "message": "ERROR-MARKER-6"})
    await store.close()
    data = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.is_file())
    for marker in ("ARGUMENT", "INPUT", "RESPONSE", "RESULT", "ERROR"):
        assert f"{marker}-MARKER".encode() not in data, marker
    assert b"slow" in data  # the tool name is readable: listing needs it


async def test_a_sealed_value_moved_to_another_task_does_not_open(
    open_store: OpenStore, raw_db: Callable[[], Any]
) -> None:
    from smcp_box.errors import DecryptionFailed

    store = await open_store()
    one = await _create(store)
    two = await _create(store)
    await store.close()
    conn = raw_db()
    (blob,) = conn.execute(
        "SELECT request_enc FROM tasks WHERE task_id = ?", (one.task_id,)
    ).fetchone()
    conn.execute("UPDATE tasks SET request_enc = ? WHERE task_id = ?", (blob, two.task_id))
    again = await open_store()
    with pytest.raises(DecryptionFailed):
        await again.tasks.get("notes", two.task_id, "alice")
