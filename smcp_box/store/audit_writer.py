"""The box's Auditor: audit rows queued and appended in batches by one background task.

Why: the hot path audits every authenticated request and every tool call. One transaction per
row costs a write-lock round trip and a WAL commit each; one transaction per batch shares them,
and the rows that pile up while a batch commits form the next batch, so batches grow with load
without any timer.

Invariants:

- Rows are appended in the order ``record`` was called, each with the time it was recorded
  (not the time its batch was written).
- Per-request rows (:data:`BACKGROUND_EVENTS`) return as soon as they are queued. Every other
  row (admin actions, key and tenant events) waits until its batch has committed, so an admin
  who sees "done" also sees the row, and a failed write is raised to the caller.
- The queue is bounded: when the store cannot keep up, ``record`` waits for room instead of
  growing memory without limit (back pressure on the requests that produce the rows).
- ``close`` writes everything queued before it returns; after it, ``record`` writes through.
- A batch that still fails after the retries is dropped and logged at ERROR with its size and
  events (never its details): auditing must not take the box down with the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import orjson

from smcp_box.seams import JsonObject
from smcp_box.store import AuditEntry
from smcp_box.store.crypto import canonical_json

logger = logging.getLogger("smcp_box.audit")

#: Rows written per request; the caller does not wait for them to be committed.
BACKGROUND_EVENTS: Final = frozenset({"auth.success", "auth.failure", "tool.call", "limit.hit"})
DEFAULT_MAX_BATCH: Final = 1000
DEFAULT_MAX_PENDING: Final = 50_000
DEFAULT_RETRY_DELAYS: Final = (0.05, 0.5, 2.0)
#: How long a batch of background rows waits for company before it is written. At low request
#: rates every row would otherwise be a transaction of its own (~600 µs of CPU each); a short
#: wait lets a trickle share one. Rows someone waits for are never held back.
DEFAULT_LINGER_S: Final = 0.02


class AuditSink(Protocol):
    async def append_audit_many(self, entries: Sequence[AuditEntry]) -> list[int]: ...


@dataclass
class _Item:
    entry: AuditEntry
    #: Set when the row is committed (or failed); None for background rows.
    done: asyncio.Future[None] | None


@dataclass
class WriterStats:
    rows_written: int = 0
    rows_dropped: int = 0
    batches: int = 0
    largest_batch: int = 0


class AuditWriter:
    """Implements the transport's Auditor protocol. Create and ``start`` it on the event loop
    that will call it; ``close`` it before closing the store."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        clock: Callable[[], float] = time.time,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_pending: int = DEFAULT_MAX_PENDING,
        linger_s: float = DEFAULT_LINGER_S,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._max_batch = max_batch
        self._linger_s = linger_s
        #: Set when a batch should not linger any longer (see ``_linger``).
        self._hurry = asyncio.Event()
        self._retry_delays = tuple(retry_delays)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = WriterStats()

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._drain_forever(), name="audit-writer")

    @property
    def pending(self) -> int:
        """Rows queued and not yet committed."""
        return self._queue.qsize()

    async def record(
        self,
        event: str,
        *,
        tenant: str | None,
        actor: str,
        source_ip: str | None,
        outcome: str,
        detail: JsonObject,
    ) -> None:
        # A detail that is not JSON at all is the caller's bug: fail it here, not later. Text and
        # numbers a client sent (a lone surrogate, NaN) are not: the store escapes them. orjson
        # checks the usual detail for a fraction of canonical_json's cost; what it declines
        # (a lone surrogate, an integer beyond 64 bits, a non-string key) gets the full check.
        try:
            orjson.dumps(detail)
        except TypeError:
            with contextlib.suppress(ValueError):
                canonical_json(detail)
        entry = AuditEntry(event, tenant, actor, source_ip, outcome, dict(detail), self._clock())
        if self._task is None or self._closed:
            await self._sink.append_audit_many([entry])
            return
        done = None if event in BACKGROUND_EVENTS else asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(entry, done))
        if done is not None or self._queue.qsize() >= self._max_batch:
            self._hurry.set()
        if done is not None:
            await done

    async def flush(self) -> None:
        """Wait until every row queued so far is committed (or dropped)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the background task (idempotent)."""
        self._closed = True
        self._hurry.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            logger.error(
                "audit: gave up flushing after %.0f s; %d row(s) not written",
                timeout_s,
                self.pending,
            )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _drain_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if batch[0].done is None and self._linger_s > 0 and not self._closed:
                await self._linger()
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _linger(self) -> None:
        """Wait up to the linger time for more rows; a row someone waits for, a full batch or
        closing ends the wait at once (an admin action must not wait on the trickle)."""
        self._hurry.clear()
        if self._queue.qsize() + 1 >= self._max_batch:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self._linger_s)

    async def _write(self, batch: list[_Item]) -> None:
        entries = [item.entry for item in batch]
        error: Exception | None = None
        for attempt, delay in enumerate((*self._retry_delays, None)):
            try:
                await self._sink.append_audit_many(entries)
            except Exception as exc:  # the store's errors, and anything unexpected alike
                error = exc
                if delay is None:
                    break
                logger.warning(
                    "audit: writing %d row(s) failed (attempt %d): %s; retrying",
                    len(batch),
                    attempt + 1,
                    exc,
                )
                await asyncio.sleep(delay)
            else:
                self.stats.rows_written += len(batch)
                self.stats.batches += 1
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
                _settle(batch, None)
                return
        assert error is not None
        self.stats.rows_dropped += len(batch)
        events = sorted({item.entry.event for item in batch})
        logger.error(
            "audit: %d row(s) could not be written and are lost (events: %s): %s",
            len(batch),
            ", ".join(events),
            error,
        )
        _settle(batch, error)


def _settle(batch: list[_Item], error: Exception | None) -> None:
    for item in batch:
        # A waiter whose caller was cancelled has a cancelled future: leave it alone.
        if item.done is not None and not item.done.done():
            if error is None:
                item.done.set_result(None)
            else:
                item.done.set_exception(error)
