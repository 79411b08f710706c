"""The database file: migrations, settings, backup, full disks, health."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from smcp_box.errors import DecryptionFailed, KeyFileError, StorageFull, StoreError
from smcp_box.store import Store
from smcp_box.store.migrations import MIGRATIONS, SCHEMA_VERSION, migrate

Raw = Callable[[], sqlite3.Connection]


def exists(path: Path) -> bool:
    return path.exists()


async def fill_until_full(write: Callable[[int], Awaitable[object]]) -> tuple[int, StorageFull]:
    """Call write(0), write(1), ... until StorageFull; returns how many succeeded and the error."""
    for count in range(100_000):
        try:
            await write(count)
        except StorageFull as exc:
            return count, exc
    raise AssertionError("the store never filled up")


async def test_new_database_is_migrated_and_in_wal_mode(store: Store, raw_db: Raw) -> None:
    raw = raw_db()
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    assert {
        "meta",
        "sessions",
        "streams",
        "events",
        "kv",
        "kv_usage",
        "api_keys",
        "audit",
    } <= tables


async def test_connection_settings(store: Store) -> None:
    async with store._db.read() as tx:
        assert await tx.one("PRAGMA foreign_keys") == (1,)
        assert await tx.one("PRAGMA synchronous") == (2,)  # FULL: commits survive power loss
        assert await tx.one("PRAGMA busy_timeout") == (5000,)
        assert await tx.one("PRAGMA journal_mode") == ("wal",)


def test_migrate_from_empty_and_again(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrate(conn) == 0
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert migrate(conn) == SCHEMA_VERSION  # nothing left to do
    finally:
        conn.close()


def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        broken = (*MIGRATIONS, "CREATE TABLE half_done (a); INSERT INTO no_such_table VALUES (1);")
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, broken)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert not conn.in_transaction
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
        assert "half_done" not in names
        assert "kv" in names
    finally:
        conn.close()


async def test_newer_database_is_refused(open_store: Any, db_path: Path) -> None:
    store = await open_store()
    await store.close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=r"newer than the .* this smcp-box supports"):
        await open_store()


async def test_data_key_must_be_32_bytes(open_store: Any, db_path: Path) -> None:
    with pytest.raises(KeyFileError, match="32 bytes"):
        await open_store(key=b"short")
    assert not exists(db_path)  # refused before touching the file


async def test_backup_opens_with_the_same_key(
    store: Store, open_store: Any, tmp_path: Path
) -> None:
    await store.create_session("acme", "s1", "2025-06-18", {"c": 1})
    first = await store.append_event("acme", "s1", "get", "one")
    await store.kv_set("acme", "k", "v")
    _, secret = await store.create_api_key("acme", "k")
    await store.append_audit("a", tenant=None, actor="x", source_ip=None, outcome="ok", detail={})

    dest = tmp_path / "backups" / "box-backup.sqlite3"
    dest.parent.mkdir()
    # Writes keep flowing while the backup runs; the copy is a consistent snapshot.
    await asyncio.gather(
        store.backup(dest),
        *(store.append_event("acme", "s1", "get", f"during {i}") for i in range(20)),
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == ["box-backup.sqlite3"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600

    copy = await open_store(path=dest)
    assert await copy.kv_get("acme", "k") == "v"
    assert await copy.verify_api_key(secret) is not None
    replay = await copy.replay_events("acme", "s1", first)
    assert replay is not None
    payloads = [payload for _, payload in replay[1]]
    assert payloads == [f"during {i}" for i in range(len(payloads))]  # a prefix, no holes
    assert (await copy.verify_audit_chain()).ok
    assert await copy.integrity_check() == []
    await copy.close()
    with pytest.raises(DecryptionFailed):
        await open_store(path=dest, key=b"\x01" * 32)


async def test_storage_full_rolls_back_and_recovers(open_store: Any) -> None:
    store = await open_store(max_db_bytes=400 * 1024)
    written, error = await fill_until_full(
        lambda i: store.kv_set("acme", f"key-{i:05d}", "x" * 3000)
    )
    assert "database is full" in error.message
    assert written > 10
    # Earlier data is intact, the failed write left nothing behind, usage is exact.
    assert await store.kv_get("acme", "key-00000") == "x" * 3000
    assert await store.kv_get("acme", f"key-{written - 1:05d}") == "x" * 3000
    assert await store.kv_get("acme", f"key-{written:05d}") is None
    assert await store.kv_usage("acme") == (written, written * (9 + 3000))
    assert len(await store.kv_list("acme")) == written
    # The store keeps working: delete some data and write again.
    for i in range(5):
        assert await store.kv_delete("acme", f"key-{i:05d}")
    await store.kv_set("acme", "after", "y" * 3000)
    assert await store.kv_get("acme", "after") == "y" * 3000
    assert await store.integrity_check() == []
    await store.healthcheck()


async def test_storage_full_on_events_keeps_the_session_consistent(open_store: Any) -> None:
    store = await open_store(max_db_bytes=300 * 1024)
    await store.create_session("acme", "s1", "2025-06-18", {})
    first = await store.append_event("acme", "s1", "get", "first")
    count, _ = await fill_until_full(lambda _: store.append_event("acme", "s1", "get", "z" * 2000))
    replay = await store.replay_events("acme", "s1", first)
    assert replay is not None
    assert len(replay[1]) == count
    await store.expire_sessions(idle_before=float("inf"))
    await store.create_session("acme", "s2", "2025-06-18", {})
    assert await store.append_event("acme", "s2", "get", "works") == "1-1"


async def test_integrity_check_and_healthcheck(store: Store) -> None:
    assert await store.integrity_check() == []
    await store.healthcheck()


async def test_healthcheck_fails_when_not_writable(store: Store) -> None:
    async with store._db.read() as tx:
        await tx.run("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="readonly"):
        await store.healthcheck()


async def test_closed_store_raises_store_error(open_store: Any) -> None:
    store = await open_store()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.kv_get("acme", "k")


async def test_store_is_an_async_context_manager(db_path: Path, data_key: bytes) -> None:
    async with await Store.open(db_path, data_key) as store:
        await store.kv_set("acme", "k", "v")
    with pytest.raises(StoreError, match="closed"):
        await store.kv_get("acme", "k")
    with pytest.raises(StoreError, match="closed"):
        await store.verify_audit_chain()


async def test_missing_directory_is_a_clear_error(tmp_path: Path, data_key: bytes) -> None:
    with pytest.raises(StoreError, match="directory exists and is writable"):
        await Store.open(tmp_path / "no" / "such" / "box.sqlite3", data_key)


async def test_a_cancellation_landing_after_begin_leaves_no_transaction_open(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a write cancelled while ``BEGIN IMMEDIATE`` was in flight (a client closing
    its stream mid-append) left the one connection inside that transaction, and every later
    write failed with "cannot start a transaction within a transaction"."""
    db = store._db
    real_run = db._tx.run

    async def begin_then_cancelled(sql: str, params: Any = ()) -> Any:
        result = await real_run(sql, params)
        if sql == "BEGIN IMMEDIATE":
            raise asyncio.CancelledError  # arrives after BEGIN ran on the connection's thread
        return result

    monkeypatch.setattr(db._tx, "run", begin_then_cancelled)
    with pytest.raises(asyncio.CancelledError):
        await store.kv_set("t", "a", "1")
    monkeypatch.undo()
    await store.kv_set("t", "b", "2")  # would fail if the first BEGIN were still open
    assert await store.kv_get("t", "b") == "2"
