"""The tamper-evident audit log, attacked with raw sqlite3 as someone with file access would."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from smcp_box.errors import StoreError
from smcp_box.store import AuditRecord, Store

Raw = Callable[[], sqlite3.Connection]
COLUMNS = (
    "box, seq, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
)


async def fill(store: Store, clock: Any, n: int = 5) -> list[int]:
    ids = []
    for i in range(n):
        clock.advance(10)
        ids.append(
            await store.append_audit(
                "tool.call" if i % 2 else "key.create",
                tenant="acme" if i % 3 else "globex",
                actor=f"key:{i}",
                source_ip="192.0.2.7",
                outcome="ok",
                detail={"tool": "echo", "n": i, "µ": [1.5, None]},
            )
        )
    return ids


async def test_append_and_page(store: Store, clock: Any) -> None:
    ids = await fill(store, clock, 6)
    assert ids == [1, 2, 3, 4, 5, 6]
    newest = await store.audit_page()
    assert [r.id for r in newest] == [6, 5, 4, 3, 2, 1]
    assert newest[-1] == AuditRecord(
        id=1,
        ts=clock.now - 50,
        event="key.create",
        tenant="globex",
        actor="key:0",
        source_ip="192.0.2.7",
        outcome="ok",
        detail={"tool": "echo", "n": 0, "µ": [1.5, None]},
        box=store.box_id,
        seq=1,
    )
    assert [r.id for r in await store.audit_page(limit=2)] == [6, 5]
    assert [r.id for r in await store.audit_page(before_id=5, limit=2)] == [4, 3]
    assert [r.id for r in await store.audit_page(since_id=2, limit=3)] == [3, 4, 5]
    assert [r.id for r in await store.audit_page(since_id=2, before_id=5)] == [3, 4]
    assert [r.id for r in await store.audit_page(tenant="globex")] == [4, 1]
    assert [r.id for r in await store.audit_page(event="tool.call")] == [6, 4, 2]
    assert await store.audit_page(tenant="acme", event="nothing") == []


async def test_intact_chain_verifies(open_store: Any, clock: Any) -> None:
    store = await open_store()
    assert (await store.verify_audit_chain()).ok
    await fill(store, clock)
    result = await store.verify_audit_chain()
    assert result.ok
    assert result.rows_checked == 5
    await store.close()
    reopened = await open_store()
    await fill(reopened, clock, 2)
    result = await reopened.verify_audit_chain()
    assert (result.ok, result.rows_checked) == (True, 7)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit SET outcome = 'denied' WHERE id = 3",
        'UPDATE audit SET detail = \'{"tool":"rm"}\' WHERE id = 3',
        "UPDATE audit SET ts = ts + 1 WHERE id = 3",
        "UPDATE audit SET tenant = NULL WHERE id = 3",
        "UPDATE audit SET hash = zeroblob(32) WHERE id = 3",
        "UPDATE audit SET prev_hash = zeroblob(32) WHERE id = 3",
        "UPDATE audit SET kind = 'checkpoint' WHERE id = 3",
    ],
)
async def test_edited_row_is_detected(store: Store, clock: Any, raw_db: Raw, sql: str) -> None:
    await fill(store, clock)
    raw_db().execute(sql)
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 3, "edited")
    assert result.rows_checked == 2


async def test_row_inserted_at_end_is_detected(store: Store, clock: Any, raw_db: Raw) -> None:
    await fill(store, clock)
    raw = raw_db()
    (last_hash,) = raw.execute("SELECT hash FROM audit WHERE id = 5").fetchone()
    raw.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES ('box', 6, 1.0, 'event', 'login', NULL, 'eve', NULL,"
        " 'ok', '{}', ?, randomblob(32), NULL)",
        (last_hash,),
    )
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 6, "inserted")


async def test_row_inserted_in_middle_is_detected(store: Store, clock: Any, raw_db: Raw) -> None:
    await fill(store, clock)
    raw = raw_db()
    # Make room at id 3 the only way SQLite allows: shift the later ids up.
    raw.execute("UPDATE audit SET seq = seq + 1000 WHERE seq >= 3")
    raw.execute("UPDATE audit SET seq = seq - 999 WHERE seq >= 1000")
    (prev,) = raw.execute("SELECT hash FROM audit WHERE id = 2").fetchone()
    raw.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES ('box', 3, 1.0, 'event', 'login', NULL, 'eve', NULL,"
        " 'ok', '{}', ?, randomblob(32), NULL)",
        (prev,),
    )
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 3, "inserted")


@pytest.mark.parametrize(
    ("sql", "first_bad"),
    [
        ("DELETE FROM audit WHERE id = 3", 3),
        ("DELETE FROM audit WHERE id IN (2, 3)", 2),
        ("DELETE FROM audit WHERE id = 1", 1),
        ("DELETE FROM audit WHERE id = 5", 5),
        ("DELETE FROM audit", 1),
    ],
)
async def test_deleted_rows_are_detected(
    store: Store, clock: Any, raw_db: Raw, sql: str, first_bad: int
) -> None:
    await fill(store, clock)
    raw_db().execute(sql)
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, first_bad, "deleted")


async def test_deletion_with_renumbering_is_detected(store: Store, clock: Any, raw_db: Raw) -> None:
    await fill(store, clock)
    raw = raw_db()
    raw.execute("DELETE FROM audit WHERE id = 3")
    raw.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 3, "deleted")


async def test_head_tampering_is_detected(store: Store, clock: Any, raw_db: Raw) -> None:
    await fill(store, clock)
    raw = raw_db()
    # Roll the head back one row to hide deleting the last row: its MAC no longer matches.
    (head,) = raw.execute("SELECT value FROM meta WHERE name = 'audit_head:box'").fetchone()
    (prev_hash,) = raw.execute("SELECT hash FROM audit WHERE id = 4").fetchone()
    raw.execute("DELETE FROM audit WHERE id = 5")
    forged = (4).to_bytes(8, "big") + prev_hash + head[40:]
    raw.execute("UPDATE meta SET value = ? WHERE name = 'audit_head:box'", (forged,))
    result = await store.verify_audit_chain()
    assert (result.ok, result.problem) == (False, "edited")
    raw.execute("DELETE FROM meta WHERE name = 'audit_head:box'")
    result = await store.verify_audit_chain()
    assert (result.ok, result.problem) == (False, "deleted")


async def test_logging_continues_and_stays_detectable_after_tail_deletion(
    store: Store, clock: Any, raw_db: Raw
) -> None:
    await fill(store, clock)
    raw_db().execute("DELETE FROM audit WHERE id = 5")
    await store.append_audit("x", tenant=None, actor="a", source_ip=None, outcome="ok", detail={})
    assert (await store.audit_page(limit=1))[0].seq == 6
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 5, "deleted")


async def test_prune_keeps_chain_verifiable(store: Store, clock: Any) -> None:
    await fill(store, clock, 10)  # ts = t0+10 .. t0+100
    cutoff = clock.now - 45  # rows 1..5 are older
    assert await store.prune_audit(cutoff) == 5
    result = await store.verify_audit_chain()
    assert (result.ok, result.rows_checked) == (True, 6)
    page = await store.audit_page(since_id=0)
    assert [r.id for r in page] == [5, 6, 7, 8, 9, 10]
    assert page[0].kind == "checkpoint"
    assert page[0].detail["rows_pruned"] == 5
    # Pruning again with the same cutoff has nothing left to do.
    assert await store.prune_audit(cutoff) == 0
    await fill(store, clock, 3)
    assert (await store.verify_audit_chain()).ok
    # A later prune replaces the old checkpoint too.
    assert await store.prune_audit(clock.now - 15) == 6  # rows 6..11, not the checkpoint
    assert [r.id for r in await store.audit_page(since_id=0)] == [11, 12, 13]
    assert (await store.verify_audit_chain()).ok
    # Pruning everything leaves only a checkpoint, and the chain continues from it.
    assert await store.prune_audit(clock.now + 1) == 2
    assert [r.id for r in await store.audit_page(since_id=0)] == [13]
    await fill(store, clock, 2)
    result = await store.verify_audit_chain()
    assert (result.ok, result.rows_checked) == (True, 3)


async def test_prune_nothing(store: Store, clock: Any) -> None:
    assert await store.prune_audit(clock.now) == 0
    await fill(store, clock, 3)
    assert await store.prune_audit(0.0) == 0
    assert (await store.verify_audit_chain()).rows_checked == 3


async def test_prune_with_nothing_old_enough_reads_no_chain(
    store: Store, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verifying hashes every row while holding up the box's requests; with nothing to drop
    # there is no evidence at risk, so the hourly prune costs one indexed query instead.
    await fill(store, clock, 6)
    await store.prune_audit(clock.now - 25)  # rows 1..3 go: a checkpoint is older than all
    verified: list[bool] = []
    real = store._audit.verify_audit_chains

    async def counting() -> Any:
        verified.append(True)
        return await real()

    monkeypatch.setattr(store._audit, "verify_audit_chains", counting)
    assert await store.prune_audit(clock.now - 25) == 0  # only the checkpoint is that old
    assert await store.prune_audit(0.0) == 0
    assert verified == []
    assert await store.prune_audit(clock.now - 5) == 2  # rows 4 and 5: verified first
    assert verified == [True]


async def test_checkpoint_tampering_is_detected(store: Store, clock: Any, raw_db: Raw) -> None:
    await fill(store, clock, 6)
    await store.prune_audit(clock.now - 25)  # prunes 1..3, checkpoint at 3
    raw = raw_db()
    raw.execute("UPDATE audit SET detail = '{\"rows_pruned\":0}' WHERE id = 3")
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 3, "edited")
    raw.execute("DELETE FROM audit WHERE id = 3")
    result = await store.verify_audit_chain()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 1, "deleted")


async def test_prune_refuses_to_discard_evidence(store: Store, clock: Any, raw_db: Raw) -> None:
    await fill(store, clock)
    raw_db().execute("UPDATE audit SET outcome = 'denied' WHERE id = 2")
    with pytest.raises(StoreError, match="Refusing to prune"):
        await store.prune_audit(clock.now + 1)
    assert len(await store.audit_page()) == 5
