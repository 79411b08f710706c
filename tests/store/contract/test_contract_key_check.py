"""Contract: the data key check, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smcp_box.errors import DecryptionFailed, StoreError
from smcp_box.store import Store

from .conftest import Backend


async def test_same_key_reopens_and_every_box_agrees(backend: Backend) -> None:
    first = await backend.open()
    await first.kv_set("t", "k", "v")
    second = await backend.open()  # a second box, or a restart
    assert await second.kv_get("t", "k") == "v"


async def test_another_key_is_refused_naming_the_database(backend: Backend) -> None:
    await backend.open()
    with pytest.raises(DecryptionFailed, match="data key does not match") as caught:
        await backend.open(key=bytes(range(1, 33)))
    shown = str(caught.value)
    assert ("contract_" in shown) if backend.name == "postgres" else ("box.sqlite3" in shown)


async def test_the_key_check_is_written_once(backend: Backend) -> None:
    await backend.open()
    await backend.open()
    rows = await backend.raw("SELECT count(*) FROM meta WHERE name = 'key_check'")
    assert rows == [(1,)]


async def test_healthcheck_writes_and_reads(backend: Backend) -> None:
    store = await backend.open()
    await store.healthcheck()


async def test_boxes_starting_together_migrate_and_write_the_check_once(backend: Backend) -> None:
    # A SQLite file has one box (the state lock keeps others out before the file is opened),
    # so there only stores after the first start together; on PostgreSQL every box may.
    first = [await backend.open()] if backend.name == "sqlite" else []
    stores = first + list(await asyncio.gather(*(backend.open() for _ in range(3 - len(first)))))
    await stores[2].kv_set("t", "k", "v")
    assert await stores[0].kv_get("t", "k") == "v"
    assert await backend.raw("SELECT count(*) FROM meta WHERE name = 'key_check'") == [(1,)]


async def test_a_database_from_a_newer_release_is_refused(backend: Backend) -> None:
    await backend.open()
    if backend.name == "sqlite":
        await backend.raw("PRAGMA user_version = 999")
    else:
        await backend.raw("UPDATE smcp_schema SET version = 999")
    with pytest.raises(StoreError, match="schema version 999"):
        await backend.open()


async def test_an_unreachable_database_is_named_without_its_password(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name == "sqlite":
        with pytest.raises(StoreError, match="Cannot open the database file"):
            await Store.open(tmp_path / "missing" / "box.db", backend.data_key)
        return
    dsn = f"postgresql://smcp@/nowhere?host={tmp_path}&connect_timeout=5"
    with pytest.raises(StoreError, match="Cannot connect to PostgreSQL") as caught:
        await Store.open_postgres(dsn, backend.data_key, password="hunter2-password")
    assert "hunter2" not in str(caught.value)
    assert "store-password" in str(caught.value)
