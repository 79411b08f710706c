"""Contract: the audit log's hash chain, on both backends and with two boxes appending."""

from __future__ import annotations

import asyncio

from smcp_box.store import Store
from smcp_box.store.audit import AuditEntry

from .conftest import Backend


def _entry(n: int, tenant: str = "t") -> AuditEntry:
    return AuditEntry(f"call.{n}", tenant, "actor", "127.0.0.1", "ok", {"n": n})


async def test_append_page_and_verify(store: Store) -> None:
    first = await store.append_audit(
        "admin.change", tenant=None, actor="admin", source_ip=None, outcome="ok", detail={}
    )
    ids = await store.append_audit_many([_entry(i) for i in range(5)])
    assert ids == list(range(first + 1, first + 6))
    newest = await store.audit_page(limit=2)
    assert [r.id for r in newest] == [ids[-1], ids[-2]]
    assert [r.detail for r in await store.audit_page(since_id=ids[2])] == [{"n": 3}, {"n": 4}]
    assert [r.id for r in await store.audit_page(tenant="t", event="call.1")] == [ids[1]]
    verification = await store.verify_audit_chain()
    assert verification.ok, verification.message
    assert verification.rows_checked == 6
    assert await store.scan_audit_chain() == []


async def test_an_edited_row_is_found(backend: Backend) -> None:
    store = await backend.open()
    ids = await store.append_audit_many([_entry(i) for i in range(4)])
    await backend.raw(f"UPDATE audit SET actor = 'someone else' WHERE id = {ids[1]}")
    verification = await store.verify_audit_chain()
    assert not verification.ok
    assert verification.first_bad_id == ids[1]
    assert [finding.id for finding in await store.scan_audit_chain()] == [ids[1]]


async def test_rows_deleted_from_the_end_are_found(backend: Backend) -> None:
    store = await backend.open()
    ids = await store.append_audit_many([_entry(i) for i in range(3)])
    await backend.raw(f"DELETE FROM audit WHERE id = {ids[-1]}")
    assert not (await store.verify_audit_chain()).ok


async def test_two_boxes_appending_at_once_keep_one_intact_chain(backend: Backend) -> None:
    boxes = [await backend.open(), await backend.open()]
    batches = await asyncio.gather(
        *(boxes[i % 2].append_audit_many([_entry(i), _entry(i)]) for i in range(20))
    )
    ids = sorted(i for batch in batches for i in batch)
    assert ids == list(range(1, 41))
    for box in boxes:
        verification = await box.verify_audit_chain()
        assert verification.ok, verification.message
        assert verification.rows_checked == 40


async def test_pruning_leaves_a_checkpoint_that_verifies(backend: Backend, clock: object) -> None:
    store = await backend.open()
    await store.append_audit_many([_entry(i) for i in range(3)])
    clock.advance(100)  # type: ignore[attr-defined]
    await store.append_audit_many([_entry(9)])
    assert await store.prune_audit(older_than=clock() - 50) == 3  # type: ignore[operator]
    kinds = [r.kind for r in await store.audit_page(since_id=0)]
    assert kinds == ["checkpoint", "event"]
    assert (await store.verify_audit_chain()).ok
