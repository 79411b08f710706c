"""The one SQLite connection of a store, its settings, transactions and error mapping.

Invariants:

* One aiosqlite connection does every read and write, and one ``asyncio.Lock`` is held for the
  whole of each transaction *and* each read. aiosqlite alone serializes statements, not
  transactions; without the lock a read could see another coroutine's uncommitted (and perhaps
  later rolled back) writes on the same connection.
* Write transactions are ``BEGIN IMMEDIATE``: the write lock is taken up front, so a transaction
  never fails half-way with SQLITE_BUSY after doing work.
* Any failure inside a transaction rolls it back before the error leaves; a ``sqlite3.Error``
  becomes :class:`StorageFull` (SQLITE_FULL) or :class:`StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, Literal

import aiosqlite

from smcp_box.errors import StorageFull, StoreError

from .backend import Database, Params, Row, Tx
from .migrations import migrate

#: The area modules import the backend-neutral protocols from here, as they always have; this
#: module's classes are the SQLite implementation of them.
__all__ = ["Database", "Params", "Row", "SqliteDatabase", "SqliteTx", "Tx"]

DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
#: How hard a commit waits for the disk. FULL: under WAL, every commit fsyncs the WAL before it
#: returns, so whatever the box acknowledged (a kv write, an admin change's audit row, a
#: persisted SSE event) survives kill -9 *and* power loss. NORMAL would survive kill -9 (the
#: WAL is in the page cache, which outlives the process) but not power loss: the commits since
#: the last checkpoint could vanish. bench/durability_bench.py measures what FULL costs.
Synchronous = Literal["FULL", "NORMAL"]
DEFAULT_SYNCHRONOUS: Final[Synchronous] = "FULL"


def translate(exc: sqlite3.Error) -> StoreError:
    """Map a sqlite3 error to the box's error tree, with a message that says what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    # Extended result codes keep the primary code in the low byte.
    if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
        return StorageFull(
            "The database is full (the disk, or the configured maximum database size). The "
            "change was rolled back and nothing was half-written. Free disk space, raise the "
            "limit, or delete data (expired sessions, kv data, old audit rows)."
        )
    return StoreError(f"Database error: {exc}. The change, if any, was rolled back.")


class SqliteTx:
    """Typed statement helpers over the connection, valid only inside ``read``/``write``."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def all(self, sql: str, params: Params = ()) -> list[Row]:
        return [tuple(row) for row in await self._conn.execute_fetchall(sql, params)]

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def run(self, sql: str, params: Params = ()) -> None:
        await self._conn.execute_fetchall(sql, params)

    async def lock(self, *name: str) -> None:
        """Nothing to do: the one connection already runs transactions one at a time."""


class SqliteDatabase:
    backend = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._tx = SqliteTx(conn)
        self._lock = asyncio.Lock()
        self._closed = False
        self.path = path

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        max_db_bytes: int | None = None,
        synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
    ) -> SqliteDatabase:
        await asyncio.to_thread(_prepare_file, path, busy_timeout_ms)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        db = cls(conn, path)
        try:
            await db._configure(busy_timeout_ms, max_db_bytes, synchronous)
        except BaseException:
            await conn.close()
            raise
        return db

    async def _configure(
        self, busy_timeout_ms: int, max_db_bytes: int | None, synchronous: Synchronous
    ) -> None:
        try:
            for pragma in _connection_pragmas(busy_timeout_ms, synchronous):
                await self._tx.run(pragma)
            if max_db_bytes is not None:
                row = await self._tx.one("PRAGMA page_size")
                assert row is not None
                # SQLite's own cap, so a full "disk" is the same SQLITE_FULL path as a real one.
                pages = max(1, max_db_bytes // int(row[0]))
                await self._tx.run(f"PRAGMA max_page_count = {pages}")
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                await self._tx.run("PRAGMA optimize")
            await self._conn.close()

    @property
    def location(self) -> str:
        return str(self.path)

    def check_open(self) -> None:
        if self._closed:
            raise StoreError("The store is closed.")

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        """Hold the connection for reads, or for one write statement (atomic on its own)."""
        async with self._lock:
            self.check_open()
            try:
                yield self._tx
            except sqlite3.Error as exc:
                raise translate(exc) from exc

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[SqliteTx]:
        """Hold the connection for one multi-statement write transaction."""
        async with self._lock:
            self.check_open()
            try:
                await self._tx.run("BEGIN IMMEDIATE")
            except BaseException as exc:
                # A cancellation can land after BEGIN already ran on the connection's thread:
                # without this rollback the connection would stay inside that transaction, and
                # every later BEGIN would fail ("cannot start a transaction within a
                # transaction") until the box restarts.
                await asyncio.shield(self._rollback())
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc) from exc
                raise
            try:
                yield self._tx
                await self._tx.run("COMMIT")
            except BaseException as exc:
                # Shielded so a second cancellation cannot skip the rollback; statements run in
                # queue order on the connection thread, so it follows whatever was in flight.
                await asyncio.shield(self._rollback())
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc) from exc
                raise

    async def write_one(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one write statement as its own transaction; returns its RETURNING rows."""
        async with self.read() as tx:
            return await tx.all(sql, params)

    def round_trips(self) -> None:
        """None: SQLite runs in this process, with no server to go to and back from."""
        return None

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[SqliteTx]:
        """Reads under the connection's lock see one state: nothing else runs meanwhile."""
        return self.read()

    async def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (it does on SQLITE_FULL, for one), and
        # then ROLLBACK reports "no transaction is active", which is fine.
        with contextlib.suppress(sqlite3.Error):
            await self._tx.run("ROLLBACK")


def sqlite_only(db: Database, what: str) -> SqliteDatabase:
    """``db`` as the SQLite database it must be for ``what`` (a file-level operation such as
    an online backup); a clear refusal on any other backend."""
    if isinstance(db, SqliteDatabase):
        return db
    raise StoreError(
        f"{what} works on the SQLite backend only; this store is on {db.backend} "
        f"({db.location}). See docs/scale-out.md for its equivalent there."
    )


def _connection_pragmas(busy_timeout_ms: int, synchronous: Synchronous) -> list[str]:
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    return [
        f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
        "PRAGMA foreign_keys = ON",
        # See DEFAULT_SYNCHRONOUS: an acknowledged commit must survive a power loss.
        f"PRAGMA synchronous = {synchronous}",
        "PRAGMA trusted_schema = OFF",
    ]


def _prepare_file(path: Path, busy_timeout_ms: int) -> None:
    """Create the file owner-only, switch it to WAL and migrate it, before serving starts."""
    # SQLite gives the -wal and -shm files the database file's permissions, so creating it 0600
    # keeps all three private even under a permissive umask.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(
            f"Cannot open the database file {path}: {exc.strerror}. Check that its directory "
            "exists and is writable by the service user."
        ) from exc
    os.close(fd)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StoreError(
                f"Could not switch {path} to WAL mode (got {mode!r}). Put the database on a "
                "local filesystem that supports shared memory (not NFS)."
            )
        migrate(conn)
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    finally:
        conn.close()


async def backup_to(source: Path, dest: Path) -> None:
    """Copy a consistent snapshot of ``source`` to ``dest`` with SQLite's online backup API.

    Uses its own read connection: under WAL that is a snapshot of committed data that does not
    block the store's writer. The copy is written beside ``dest`` and renamed into place, so
    ``dest`` is either the old file or a complete backup.
    """
    await asyncio.to_thread(_backup_sync, source, dest)


def _backup_sync(source: Path, dest: Path) -> None:
    # A random name, so concurrent backups to one destination never share a temporary file.
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                src.backup(dst)
                # A backup should be one self-contained file, not a WAL pair.
                dst.execute("PRAGMA journal_mode = DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    except OSError as exc:
        raise StoreError(f"Cannot write the backup {dest}: {exc.strerror}.") from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection for long reads (audit verification) off the writer's lock."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
