"""Contract: the audit log's hash chains, one per box, on both backends and with several boxes
appending at once."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from functools import partial

import pytest

from smcp_box.errors import StoreError
from smcp_box.store import Store
from smcp_box.store import db as store_db
from smcp_box.store.audit import AuditEntry, AuditRecord
from smcp_box.store.audit_writer import AuditWriter
from smcp_box.store.chain import ZERO_HASH, ChainRow, encode_head, row_hash
from smcp_box.store.crypto import Crypto
from smcp_box.store.migrations import MIGRATIONS, migrate
from smcp_box.store.pg import PgDatabase
from smcp_box.store.pg_schema import PG_MIGRATIONS

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


async def test_two_stores_of_one_box_keep_one_intact_chain(backend: Backend) -> None:
    # Two stores with one box id (a box and a maintenance command beside it) share its chain.
    stores = [await backend.open(), await backend.open()]
    batches = await asyncio.gather(
        *(stores[i % 2].append_audit_many([_entry(i), _entry(i)]) for i in range(20))
    )
    ids = sorted(i for batch in batches for i in batch)
    assert ids == list(range(1, 41))
    for store in stores:
        (chain,) = await store.verify_audit_chains()
        assert (chain.box, chain.rows, chain.head, chain.ok) == ("box", 40, 40, True)


class Ticks:
    """One clock for every box of a test: each reading a new, later time, so that the boxes'
    rows interleave in time."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


BOXES = ("alpha", "bravo", "charlie")
PER_BOX = 200


async def _three_boxes_audit_at_once(backend: Backend) -> list[Store]:
    """Three boxes on one database, each with its batching writer, each recording PER_BOX rows
    concurrently (as that many requests would), all at once."""
    ticks = Ticks()
    stores = [await backend.open(box_id=box) for box in BOXES]
    writers = [AuditWriter(store, clock=ticks) for store in stores]
    for writer in writers:
        writer.start()

    async def one(writer: AuditWriter, box: str, n: int) -> None:
        await writer.record(
            "admin.change", tenant="t", actor=box, source_ip=None, outcome="ok", detail={"n": n}
        )

    await asyncio.gather(
        *(one(w, box, n) for n in range(PER_BOX) for w, box in zip(writers, BOXES, strict=True))
    )
    for writer in writers:
        await writer.close()
    # Batching kept: far fewer transactions than rows.
    assert all(0 < w.stats.batches < PER_BOX for w in writers), [w.stats for w in writers]
    return stores


async def test_three_boxes_each_keep_an_intact_chain_and_export_merges_them(
    backend: Backend,
) -> None:
    stores = await _three_boxes_audit_at_once(backend)
    for store in stores:
        chains = await store.verify_audit_chains()
        assert [(c.box, c.rows, c.head, c.ok) for c in chains] == [
            (box, PER_BOX, PER_BOX, True) for box in BOXES
        ]
    counts = await backend.raw("SELECT box, count(*), min(seq), max(seq) FROM audit GROUP BY box")
    assert sorted(tuple(row) for row in counts) == [(box, PER_BOX, 1, PER_BOX) for box in BOXES]
    for box in BOXES:  # every row each box recorded, exactly once
        rows = await backend.raw(f"SELECT detail FROM audit WHERE box = '{box}'")
        assert sorted(json.loads(row[0])["n"] for row in rows) == list(range(PER_BOX))

    merged: list[AuditRecord] = []
    after: tuple[float, str, int] | None = None
    while page := await stores[0].audit_by_time(after=after, limit=128):
        merged += page
        after = (page[-1].ts, page[-1].box, page[-1].seq)
    assert len(merged) == len(BOXES) * PER_BOX
    order = [(row.ts, row.box, row.seq) for row in merged]
    assert order == sorted(order)
    assert {row.box for row in merged[:10]} == set(BOXES)  # interleaved in time, not by box


async def test_a_tampered_row_names_its_box_and_the_other_chains_stay_intact(
    backend: Backend,
) -> None:
    stores = await _three_boxes_audit_at_once(backend)
    await backend.raw("UPDATE audit SET outcome = 'denied' WHERE box = 'bravo' AND seq = 77")
    chains = await stores[0].verify_audit_chains()
    verdicts = {c.box: (c.ok, c.verification.first_bad_id, c.verification.problem) for c in chains}
    assert verdicts == {
        "alpha": (True, None, None),
        "bravo": (False, 77, "edited"),
        "charlie": (True, None, None),
    }
    overall = await stores[2].verify_audit_chain()
    assert not overall.ok
    assert overall.message.startswith("The audit chain of box bravo: Audit row 77")
    findings = await stores[1].scan_audit_chain()
    assert [(f.box, f.id, f.problem) for f in findings] == [("bravo", 77, "edited")]
    # Each box keeps appending to its own chain; pruning refuses, naming the broken chain.
    await stores[0].append_audit_many([_entry(1)])
    with pytest.raises(StoreError, match="box bravo"):
        await stores[0].prune_audit(older_than=2_000_000_000.0)


async def test_pruning_leaves_a_checkpoint_that_verifies(backend: Backend, clock: object) -> None:
    store = await backend.open()
    await store.append_audit_many([_entry(i) for i in range(3)])
    clock.advance(100)  # type: ignore[attr-defined]
    await store.append_audit_many([_entry(9)])
    assert await store.prune_audit(older_than=clock() - 50) == 3  # type: ignore[operator]
    kinds = [r.kind for r in await store.audit_page(since_id=0)]
    assert kinds == ["checkpoint", "event"]
    assert (await store.verify_audit_chain()).ok


async def test_pruning_prunes_every_chain_each_to_its_own_checkpoint(
    backend: Backend, clock: object
) -> None:
    stores = [await backend.open(box_id=box) for box in ("one", "two")]
    for store in stores:
        await store.append_audit_many([_entry(i) for i in range(3)])
    clock.advance(100)  # type: ignore[attr-defined]
    await stores[1].append_audit_many([_entry(9)])
    # One box prunes for the fleet: the other box's chain too (a gone box's included).
    assert await stores[0].prune_audit(older_than=clock() - 50) == 6  # type: ignore[operator]
    rows = await stores[1].audit_by_time()
    assert [(r.box, r.seq, r.kind) for r in rows] == [
        ("one", 3, "checkpoint"),
        ("two", 3, "checkpoint"),
        ("two", 4, "event"),
    ]
    chains = await stores[1].verify_audit_chains()
    assert [(c.box, c.rows, c.head, c.ok) for c in chains] == [
        ("one", 1, 3, True),
        ("two", 2, 4, True),
    ]


async def test_a_single_chain_from_before_boxes_verifies_after_the_upgrade_and_is_adopted(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The schema as it was before per-box chains: every migration but the last (this one).
    monkeypatch.setattr(store_db, "migrate", partial(migrate, migrations=MIGRATIONS[:-1]))
    original = PgDatabase._migrate
    monkeypatch.setattr(
        PgDatabase, "_migrate", lambda db: original(db, migrations=PG_MIGRATIONS[:-1])
    )
    await (await backend.open()).close()
    # Three rows and the head as the previous release wrote them: one chain, place = id.
    crypto = Crypto(backend.data_key)
    prev = ZERO_HASH
    for n in range(1, 4):
        row = ChainRow(n, 1_700_000_000.0 + n, "event", f"old.{n}", None, "admin", None, "ok",
                       "{}", prev, b"", None)  # fmt: skip
        row = replace(row, hash=row_hash(crypto, prev, row))
        await backend.raw(
            "INSERT INTO audit (id, ts, kind, event, tenant, actor, source_ip, outcome, detail,"
            f" prev_hash, hash, sig) VALUES ({n}, {row.ts}, 'event', '{row.event}', NULL,"
            f" 'admin', NULL, 'ok', '{{}}', {_blob(backend, prev)}, {_blob(backend, row.hash)},"
            " NULL)"
        )
        prev = row.hash
    await backend.raw(
        "INSERT INTO meta (name, value) VALUES"
        f" ('audit_head', {_blob(backend, encode_head(crypto, 3, prev))})"
    )
    monkeypatch.undo()

    store = await backend.open(box_id="homelab")
    (legacy,) = await store.verify_audit_chains()
    assert (legacy.box, legacy.rows, legacy.head, legacy.ok) == ("", 3, 3, True)
    later = AuditEntry("new", None, "box", None, "ok", ts=1_800_000_000.0)
    assert await store.append_audit_many([later]) == [4]
    (adopted,) = await store.verify_audit_chains()
    assert (adopted.box, adopted.rows, adopted.head, adopted.ok) == ("homelab", 4, 4, True)
    rows = await store.audit_by_time()
    assert [(r.id, r.box, r.seq) for r in rows] == [(n, "homelab", n) for n in range(1, 5)]


def _blob(backend: Backend, value: bytes) -> str:
    """``value`` as a binary literal in ``backend``'s SQL."""
    return f"X'{value.hex()}'" if backend.name == "sqlite" else f"'\\x{value.hex()}'::bytea"
