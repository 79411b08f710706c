"""Batched audit appends (one transaction per batch) and the full tamper scan, on a real file."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from smcp_box.errors import StorageFull
from smcp_box.store import AuditEntry, Store

Raw = Callable[[], sqlite3.Connection]
COLUMNS = (
    "box, seq, ts, kind, event, tenant, actor, source_ip, outcome, detail, prev_hash, hash, sig"
)


def entries(n: int, *, start: int = 0, ts: float | None = None) -> list[AuditEntry]:
    return [
        AuditEntry(
            "tool.call",
            "acme",
            f"key:{i}",
            "192.0.2.7",
            "ok",
            {"n": i, "receipt": {"fuel": 40 + i}},
            ts=None if ts is None else ts + i,
        )
        for i in range(start, start + n)
    ]


async def test_batch_appends_in_order_with_their_own_times(store: Store, clock: Any) -> None:
    assert await store.append_audit_many([]) == []
    first = await store.append_audit(
        "box.start", tenant=None, actor="system", source_ip=None, outcome="ok", detail={}
    )
    ids = await store.append_audit_many(entries(3, ts=1000.0))
    assert [first, *ids] == [1, 2, 3, 4]
    # An entry without a time gets the store clock's time when the batch is written.
    (last,) = await store.append_audit_many([AuditEntry("x", None, "a", None, "ok")])
    assert last == 5
    rows = await store.audit_page(since_id=0)
    assert [r.ts for r in rows] == [clock.now, 1000.0, 1001.0, 1002.0, clock.now]
    assert [r.detail.get("n") for r in rows[1:4]] == [0, 1, 2]
    result = await store.verify_audit_chain()
    assert (result.ok, result.rows_checked) == (True, 5)


async def test_batch_larger_than_one_statement(store: Store) -> None:
    ids = await store.append_audit_many(entries(1234))
    assert ids == list(range(1, 1235))
    assert (await store.verify_audit_chain()).rows_checked == 1234


async def test_a_detail_that_is_not_json_is_stored_escaped_and_fails_no_other_row(
    store: Store,
) -> None:
    bad = [*entries(2), AuditEntry("x", None, "a", None, "ok", {"oops": b"\xff", "t": (1,)})]
    assert await store.append_audit_many(bad) == [1, 2, 3]
    rows = sorted(await store.audit_page(), key=lambda row: row.id)
    assert rows[2].detail == {"oops": "b'\\xff'", "t": [1], "_escaped": True}
    assert (await store.verify_audit_chain()).ok


async def test_a_failed_batch_writes_nothing_and_the_chain_goes_on(
    open_store: Any, db_path: Path
) -> None:
    store = await open_store(max_db_bytes=256 * 1024)
    await store.append_audit_many(entries(10))
    huge = [
        AuditEntry("bulk", None, "a", None, "ok", {"pad": "x" * 4000, "i": i}) for i in range(100)
    ]
    with pytest.raises(StorageFull):
        await store.append_audit_many(huge)
    assert len(await store.audit_page(limit=1000)) == 10
    assert await store.append_audit_many(entries(2)) == [11, 12]
    assert (await store.verify_audit_chain()).ok


async def test_a_batch_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # What makes batches cheap: one write transaction (one lock round trip, one commit) per
    # batch instead of per row. How much cheaper is measured by bench/audit_batch_bench.py.
    transactions = []
    write = store._db.write

    @contextlib.asynccontextmanager
    async def counting_write() -> AsyncIterator[Any]:
        transactions.append(1)
        async with write() as tx:
            yield tx

    monkeypatch.setattr(store._db, "write", counting_write)
    rows = 400
    for entry in entries(rows):
        await store.append_audit_many([entry])
    assert len(transactions) == rows
    for chunk in range(0, rows, 100):
        await store.append_audit_many(entries(100, start=chunk))
    assert len(transactions) == rows + 4
    assert (await store.verify_audit_chain()).rows_checked == 2 * rows


# --- the full scan: every tampered row, not only the first ---------------------------------


async def tampered(store: Store, raw_db: Raw, *statements: str) -> list[tuple[int, str]]:
    await store.append_audit_many(entries(8))
    raw = raw_db()
    for sql in statements:
        raw.execute(sql)
    assert not (await store.verify_audit_chain()).ok
    return [(f.id, f.problem) for f in await store.scan_audit_chain()]


async def test_scan_finds_nothing_in_an_intact_chain(store: Store) -> None:
    await store.append_audit_many(entries(8))
    assert await store.scan_audit_chain() == []


async def test_scan_lists_every_edited_row(store: Store, raw_db: Raw) -> None:
    found = await tampered(
        store,
        raw_db,
        "UPDATE audit SET outcome = 'denied' WHERE id = 2",
        "UPDATE audit SET actor = 'someone-else' WHERE id = 5",
        "UPDATE audit SET hash = zeroblob(32) WHERE id = 7",
    )
    assert found == [(2, "edited"), (5, "edited"), (7, "edited")]


async def test_scan_lists_deletions_anywhere(store: Store, raw_db: Raw) -> None:
    found = await tampered(
        store,
        raw_db,
        "DELETE FROM audit WHERE id = 2",
        "DELETE FROM audit WHERE id IN (5, 6)",
        "DELETE FROM audit WHERE id = 8",
    )
    assert found == [(2, "deleted"), (5, "deleted"), (8, "deleted")]


async def test_scan_sees_through_renumbering(store: Store, raw_db: Raw) -> None:
    # Delete row 3 and close the gap, as someone hiding the deletion would.
    found = await tampered(
        store,
        raw_db,
        "DELETE FROM audit WHERE id = 3",
        "UPDATE audit SET seq = seq - 1 WHERE seq > 3",
    )
    assert found == [(3, "deleted")]


async def test_scan_finds_a_row_inserted_in_the_middle(store: Store, raw_db: Raw) -> None:
    await store.append_audit_many(entries(6))
    raw = raw_db()
    raw.execute("UPDATE audit SET seq = seq + 1000 WHERE seq >= 3")
    raw.execute("UPDATE audit SET seq = seq - 999 WHERE seq >= 1000")
    (prev,) = raw.execute("SELECT hash FROM audit WHERE id = 2").fetchone()
    raw.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES ('box', 3, 1.0, 'event', 'login', NULL, 'eve', NULL,"
        " 'ok', '{}', ?, randomblob(32), NULL)",
        (prev,),
    )
    found = [(f.id, f.problem) for f in await store.scan_audit_chain()]
    assert found == [(3, "inserted"), (4, "inserted")]


async def test_scan_finds_rows_appended_past_the_head(store: Store, raw_db: Raw) -> None:
    await store.append_audit_many(entries(4))
    raw = raw_db()
    (last,) = raw.execute("SELECT hash FROM audit WHERE id = 4").fetchone()
    raw.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES ('box', 5, 1.0, 'event', 'login', NULL, 'eve', NULL,"
        " 'ok', '{}', ?, randomblob(32), NULL)",
        (last,),
    )
    assert [(f.id, f.problem) for f in await store.scan_audit_chain()] == [(5, "inserted")]


async def test_scan_after_pruning_starts_at_the_checkpoint(
    store: Store, clock: Any, raw_db: Raw
) -> None:
    await store.append_audit_many(entries(6, ts=clock.now - 100))
    await store.append_audit_many(entries(4, ts=clock.now))
    assert await store.prune_audit(clock.now - 50) == 6
    assert await store.scan_audit_chain() == []
    raw_db().execute("UPDATE audit SET tenant = 'x' WHERE id = 9")
    assert [(f.id, f.problem) for f in await store.scan_audit_chain()] == [(9, "edited")]


@pytest.mark.parametrize(
    "statements",
    [
        ["UPDATE audit SET outcome = 'denied' WHERE id = 3"],
        ["UPDATE audit SET ts = ts + 1 WHERE id = 3"],
        ["UPDATE audit SET prev_hash = zeroblob(32) WHERE id = 3"],
        ["UPDATE audit SET kind = 'checkpoint' WHERE id = 3"],
        ["DELETE FROM audit WHERE id = 1"],
        ["DELETE FROM audit WHERE id = 8"],
        ["DELETE FROM audit"],
        ["DELETE FROM meta WHERE name = 'audit_head:box'"],
        ["UPDATE meta SET value = zeroblob(72) WHERE name = 'audit_head:box'"],
    ],
)
async def test_scan_agrees_with_verification_on_the_first_problem(
    store: Store, raw_db: Raw, statements: list[str]
) -> None:
    await store.append_audit_many(entries(8))
    raw = raw_db()
    for sql in statements:
        raw.execute(sql)
    verification = await store.verify_audit_chain()
    findings = await store.scan_audit_chain()
    assert not verification.ok
    assert findings, verification
    assert findings[0].problem == verification.problem
