"""Contract: the store counts its round trips to a database server (none on SQLite).

The count is what /metrics reports as ``smcp_box_store_round_trips_total`` and what
tests/e2e/test_pg_round_trips.py measures per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from .conftest import Backend


async def test_each_statement_and_transaction_is_counted(backend: Backend) -> None:
    store = await backend.open()
    if backend.name == "sqlite":
        assert store.round_trips() is None
        return

    async def spent_by(step: Awaitable[Any]) -> int:
        before = store.round_trips()
        assert before is not None
        await step
        after = store.round_trips()
        assert after is not None
        return after - before

    # A read is one statement; the first time a connection runs it, preparing it is another.
    assert await spent_by(store.kv_get("t", "k")) == 2
    assert await spent_by(store.kv_get("t", "other")) == 1
    # A single write statement is one; a write transaction adds BEGIN and COMMIT to its
    # statements (the health check's: an upsert and a read back).
    await store.set_secret("t", "name", "value")
    assert await spent_by(store.set_secret("t", "name", "again")) == 1
    await store.healthcheck()
    assert await spent_by(store.healthcheck()) == 4


async def test_boxes_count_their_own(backend: Backend) -> None:
    if backend.name == "sqlite":
        return
    one = await backend.open()
    two = await backend.open()
    before = two.round_trips()
    await asyncio.gather(*(one.kv_get("t", f"k{i}") for i in range(5)))
    assert two.round_trips() == before
    assert (one.round_trips() or 0) > 0
