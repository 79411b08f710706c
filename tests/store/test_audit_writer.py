"""The batched audit writer against a real store: order, times, batching, waiting, failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from smcp_box.errors import StoreError
from smcp_box.store import AuditEntry, Store
from smcp_box.store.audit_writer import AuditWriter
from tests.support.waiting import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "audit.db", bytes(range(32)))
    yield opened
    await opened.close()


async def record(writer: AuditWriter, event: str, n: int = 0) -> None:
    await writer.record(
        event, tenant="acme", actor="key:k1", source_ip="192.0.2.1", outcome="ok", detail={"n": n}
    )


async def test_rows_keep_order_and_the_time_they_were_recorded(store: Store) -> None:
    clock = Clock()
    writer = AuditWriter(store, clock=clock)
    writer.start()
    for n in range(5):
        clock.now += 1
        await record(writer, "tool.call", n)
    await writer.flush()
    rows = await store.audit_page(since_id=0)
    assert [r.detail["n"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r.ts for r in rows] == [1_700_000_001.0 + n for n in range(5)]
    await writer.close()
    assert (await store.verify_audit_chain()).rows_checked == 5


async def test_admin_rows_are_committed_before_record_returns(store: Store) -> None:
    writer = AuditWriter(store)
    writer.start()
    await record(writer, "admin.key.create")
    assert [r.event for r in await store.audit_page()] == ["admin.key.create"]
    await writer.close()


async def test_many_concurrent_rows_share_few_transactions(store: Store) -> None:
    writer = AuditWriter(store)
    writer.start()
    await asyncio.gather(*(record(writer, "auth.success", n) for n in range(2000)))
    await writer.flush()
    assert writer.stats.rows_written == 2000
    # Rows queue up while a batch commits, so the batches grow with the load.
    assert writer.stats.batches < 200
    assert writer.stats.largest_batch > 10
    await writer.close()
    assert (await store.verify_audit_chain()).rows_checked == 2000


class FlakySink:
    """Fails the first ``failures`` writes, then appends to the real store."""

    def __init__(self, store: Store, failures: int) -> None:
        self.store = store
        self.failures = failures
        self.calls = 0

    async def append_audit_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("Database error: disk I/O error.")
        return await self.store.append_audit_many(entries)


async def test_a_failed_write_is_retried(store: Store) -> None:
    sink = FlakySink(store, failures=2)
    writer = AuditWriter(sink, retry_delays=(0.01, 0.01, 0.01))
    writer.start()
    await record(writer, "admin.tenant.reload")
    assert sink.calls == 3
    assert len(await store.audit_page()) == 1
    await writer.close()


async def test_a_batch_that_keeps_failing_is_dropped_and_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FlakySink(store, failures=100)
    writer = AuditWriter(sink, retry_delays=(0.01,))
    writer.start()
    await record(writer, "tool.call")
    with caplog.at_level(logging.ERROR, logger="smcp_box.audit"):
        await writer.flush()
    assert writer.stats.rows_dropped == 1
    assert "could not be written and are lost (events: tool.call)" in caplog.text
    # A row somebody waits for gets the error.
    with pytest.raises(StoreError):
        await record(writer, "admin.key.revoke")
    # The writer keeps going once the database works again.
    sink.failures = 0
    await record(writer, "admin.key.revoke")
    assert [r.event for r in await store.audit_page()] == ["admin.key.revoke"]
    await writer.close()


class SlowSink:
    """A sink that holds every batch until ``gate`` is set; ``entered`` counts the batches."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.entered = 0

    async def append_audit_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        self.entered += 1
        await self.gate.wait()
        return await self.store.append_audit_many(entries)


class CountingClock:
    """The writer reads its clock once per ``record``, just before queueing the row."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return 1_700_000_000.0 + self.readings


async def test_a_full_queue_makes_callers_wait(store: Store) -> None:
    sink = SlowSink(store)
    clock = CountingClock()
    # back-pressure, not batching
    writer = AuditWriter(sink, max_pending=3, linger_s=0, clock=clock)
    writer.start()
    await record(writer, "tool.call", 0)
    await wait_until(lambda: sink.entered == 1, what="row 0 to be stuck in the sink")
    for n in range(1, 4):  # the queue has room for three
        await asyncio.wait_for(record(writer, "tool.call", n), 10)
    blocked = asyncio.create_task(record(writer, "tool.call", 4))
    # Row 4 read the clock, then went straight to the full queue: it waits there now.
    await wait_until(lambda: clock.readings == 5, what="row 4 to reach the full queue")
    assert not blocked.done()
    assert writer.pending == 3
    sink.gate.set()
    await asyncio.wait_for(blocked, 5)
    await writer.close()
    assert [r.detail["n"] for r in await store.audit_page(since_id=0)] == [0, 1, 2, 3, 4]


async def test_close_writes_everything_then_writes_through(store: Store) -> None:
    sink = SlowSink(store)
    # Lingering for an hour: only close can send the batch on to the sink.
    writer = AuditWriter(sink, linger_s=3600)
    writer.start()
    for n in range(10):
        await record(writer, "auth.success", n)
    closing = asyncio.create_task(writer.close())
    await wait_until(lambda: sink.entered == 1, what="close to send the batch to the sink")
    assert not closing.done()
    sink.gate.set()
    await closing
    assert len(await store.audit_page(limit=100)) == 10
    await record(writer, "box.stop")
    assert (await store.audit_page(limit=1))[0].event == "box.stop"


async def test_a_detail_that_is_not_json_fails_at_the_caller(store: Store) -> None:
    writer = AuditWriter(store)
    writer.start()
    with pytest.raises(TypeError):
        await writer.record(
            "tool.call", tenant=None, actor="a", source_ip=None, outcome="ok", detail={"x": {1, 2}}
        )
    await record(writer, "tool.call")
    await writer.close()
    assert len(await store.audit_page()) == 1


async def test_a_trickle_of_rows_shares_a_batch(store: Store) -> None:
    # Lingering for an hour: the first row waits for company until close ends the wait.
    writer = AuditWriter(store, linger_s=3600)
    writer.start()
    await record(writer, "tool.call", 0)
    await wait_until(lambda: writer.pending == 0, what="the writer to take row 0 and linger")
    for n in range(1, 5):
        await record(writer, "tool.call", n)
    assert writer.stats.batches == 0
    await writer.close()
    assert writer.stats.batches == 1
    assert writer.stats.rows_written == 5


async def test_a_waited_for_row_does_not_linger(store: Store) -> None:
    # Lingering for an hour, so only the waited-for row can end the wait before the test's
    # deadline.
    writer = AuditWriter(store, linger_s=3600)
    writer.start()
    await record(writer, "tool.call", 0)
    await asyncio.wait_for(record(writer, "key.create", 1), 30)
    rows = await store.audit_page(since_id=0)
    assert [r.event for r in rows] == ["tool.call", "key.create"]
    await writer.close()


async def test_a_row_with_odd_client_text_is_stored_escaped_beside_the_others(
    store: Store,
) -> None:
    """Regression: one lone surrogate in one row failed its whole batch ("476 row(s) could not
    be written and are lost")."""
    writer = AuditWriter(store)
    writer.start()
    await record(writer, "tool.call")
    await writer.record(
        "tool.call",
        tenant="notes",
        actor="key:\ud800",
        source_ip=None,
        outcome="ok",
        detail={"tool": "x\udcff", "n": float("nan"), "\ud83d": [float("inf")]},
    )
    await record(writer, "tool.call")
    await writer.close()
    assert writer.stats.rows_dropped == 0
    rows = sorted(await store.audit_page(), key=lambda row: row.id)
    assert len(rows) == 3
    odd = rows[1]
    assert odd.actor == "key:\\ud800"
    assert odd.detail == {"tool": "x\\udcff", "n": "nan", "\\ud83d": ["inf"], "_escaped": True}
    assert "_escaped" not in rows[0].detail
    assert (await store.verify_audit_chain()).ok
