"""The PostgreSQL backend of the store: a pool of asyncpg connections shared by several boxes.

Invariants:

* Area modules' SQL is written once, with SQLite's ``?``/``?N`` parameters; :func:`to_pg`
  rewrites them to ``$N`` (once per statement text, cached).
* :meth:`PgDatabase.read` runs statements on a pooled connection outside a transaction, each
  atomic on its own; :meth:`PgDatabase.write` is one READ COMMITTED transaction, rolled back by
  any exception (cancellation included) before the connection returns to the pool.
* Other boxes write the same tables concurrently, so a read-modify-write transaction takes
  :meth:`PgTx.lock` first (a transaction advisory lock keyed on the name), which is what the one
  SQLite connection gives for free. Single statements (``UPDATE ... RETURNING``) rely on row
  locks, as they would anyway.
* Errors leave as :class:`~smcp_box.errors.StoreError` (``StorageFull`` for a full disk).
* Pooled connections carry no session state: locks are transaction advisory locks, nothing
  runs SET, LISTEN (the change feed has its own connection) or leaves a cursor open. So a
  connection goes back to the pool without asyncpg's reset query, which would cost a round
  trip per use.
* :meth:`PgDatabase.round_trips` counts the round trips to the server (see :class:`PgTx`).

asyncpg is imported only here, and only when a postgres store is opened: the ``postgres``
extra is optional for single-box installs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from smcp_box.errors import StorageFull, StoreError

from .backend import Params, Row
from .crypto import frame
from .pg_schema import PG_MIGRATIONS

if TYPE_CHECKING:
    import asyncpg

DEFAULT_POOL_SIZE: Final = 10
#: Prepared statements kept per connection: more than the store's distinct statements, so each
#: is prepared once per connection (asyncpg's default of 100 would evict and prepare again).
STATEMENT_CACHE_SIZE: Final = 1024
CONNECT_TIMEOUT_S: Final = 10.0
#: The advisory lock every migration takes (an arbitrary constant, fixed forever).
_MIGRATION_LOCK: Final = 0x736D6370626F78  # "smcpbox"

_PLACEHOLDER: Final = re.compile(r"'(?:[^']|'')*'|\?([0-9]+)?")


@functools.lru_cache(maxsize=1024)
def to_pg(sql: str) -> str:
    """``sql`` with SQLite's ``?`` and ``?N`` parameters as PostgreSQL's ``$N``.

    SQLite's own numbering: ``?N`` is parameter N, and a bare ``?`` is one more than the
    largest number assigned so far (so ``? ... ? ... ?3 ... ?1`` is 1, 2, 3, 1). Quoted
    literals are left alone.
    """
    largest = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal largest
        text = match[0]
        if text.startswith("'"):
            return text
        number = int(match[1]) if match[1] is not None else largest + 1
        largest = max(largest, number)
        return f"${number}"

    return _PLACEHOLDER.sub(replace, sql)


def lock_key(*name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (framed, so parts cannot collide)."""
    digest = hashlib.sha256(frame("smcp-box lock", *name)).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def redact_dsn(dsn: str) -> str:
    """``dsn`` without any password, for messages and logs."""
    parts = urllib.parse.urlsplit(dsn)
    netloc = parts.netloc.rpartition("@")
    host = netloc[2]
    user = netloc[0].partition(":")[0]
    query = "&".join(
        item for item in parts.query.split("&") if item and not item.lower().startswith("password=")
    )
    shown = f"{user}@{host}" if user else host
    return urllib.parse.urlunsplit((parts.scheme, shown, parts.path, query, ""))


def translate(exc: BaseException) -> StoreError:
    """Map an asyncpg or connection error to the box's error tree."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "53100":  # disk_full
        return StorageFull(
            "The PostgreSQL server's disk is full. The change was rolled back and nothing was "
            "half-written. Free disk space on the database server, or delete data."
        )
    return StoreError(f"Database error: {exc}. The change, if any, was rolled back.")


def _store_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class RoundTrips:
    """A count of round trips to the server (one store's, all its connections')."""

    def __init__(self) -> None:
        self.count = 0


@functools.cache
def _connection_class() -> type[Any]:
    import asyncpg

    class CountedConnection(asyncpg.Connection):  # type: ignore[misc]
        """A pooled connection that knows which statements it has prepared (asyncpg keeps
        them per connection), so that a first use counts its extra round trip."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.prepared_texts: set[str] = set()

    return CountedConnection


class PgTx:
    """Statements on one pooled connection, valid only inside ``read``/``write``.

    Round trips: one per statement, plus one the first time a connection prepares a statement
    text (asyncpg prepares every statement with parameters, and every fetch, then keeps it);
    ``run`` without parameters is a simple query and needs no preparing.
    """

    def __init__(self, conn: asyncpg.Connection[Any], trips: RoundTrips) -> None:
        self._conn = conn
        self._trips = trips

    def _sent(self, text: str, *, prepared: bool = True) -> str:
        self._trips.count += 1
        known: set[str] = self._conn.prepared_texts
        if prepared and text not in known:
            known.add(text)
            self._trips.count += 1
        return text

    async def all(self, sql: str, params: Params = ()) -> list[Row]:
        return [tuple(row) for row in await self._conn.fetch(self._sent(to_pg(sql)), *params)]

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        row = await self._conn.fetchrow(self._sent(to_pg(sql)), *params)
        return None if row is None else tuple(row)

    async def run(self, sql: str, params: Params = ()) -> None:
        await self._conn.execute(self._sent(to_pg(sql), prepared=bool(params)), *params)

    async def lock(self, *name: str) -> None:
        await self._conn.execute(self._sent("SELECT pg_advisory_xact_lock($1)"), lock_key(*name))


async def _keep_session(_conn: Any) -> None:
    """The pool's reset: nothing to undo (see the module doc), so no round trip."""


class PgDatabase:
    backend = "postgres"

    def __init__(self, pool: asyncpg.Pool[Any], dsn: str) -> None:
        self._pool = pool
        self._location = redact_dsn(dsn)
        self._errors = _store_errors()
        self._closed = False
        self._trips = RoundTrips()

    @classmethod
    async def open(
        cls, dsn: str, *, password: str | None = None, pool_size: int = DEFAULT_POOL_SIZE
    ) -> PgDatabase:
        """Connect, and migrate the schema before anything is served."""
        try:
            import asyncpg
        except ImportError:
            raise StoreError(
                '[store] backend = "postgres" needs asyncpg: install smcp-box[postgres].'
            ) from None
        try:
            pool = await asyncpg.create_pool(
                dsn,
                password=password,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_S,
                statement_cache_size=STATEMENT_CACHE_SIZE,
                connection_class=_connection_class(),
                reset=_keep_session,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StoreError(
                f"Cannot connect to PostgreSQL at {redact_dsn(dsn)}: {exc}. Check [store] dsn, "
                "that the server is up, and the credentials folder's store-password."
            ) from None
        db = cls(pool, dsn)
        try:
            await db._migrate()
        except BaseException:
            await pool.close()
            raise
        return db

    @property
    def location(self) -> str:
        return self._location

    def round_trips(self) -> int:
        """Round trips to the server since the store opened: statements, their first
        preparing on a connection, and each transaction's BEGIN and COMMIT (or ROLLBACK)."""
        return self._trips.count

    async def _migrate(self, migrations: tuple[str, ...] = PG_MIGRATIONS) -> None:
        async with self.write() as tx:
            await tx.run("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            await tx.run(
                "CREATE TABLE IF NOT EXISTS smcp_schema ("
                " one smallint PRIMARY KEY DEFAULT 1 CHECK (one = 1),"
                " version integer NOT NULL)"
            )
            row = await tx.one("SELECT version FROM smcp_schema")
            found = 0 if row is None else int(row[0])
            if found > len(migrations):
                raise StoreError(
                    f"The database {self._location} has schema version {found}, newer than "
                    f"the {len(migrations)} this smcp-box supports: a newer release wrote it. "
                    "Upgrade every box before starting this one."
                )
            for version in range(found, len(migrations)):
                # A script without parameters runs as one multi-statement simple query.
                await tx.run(migrations[version])
            if found < len(migrations):
                await tx.run(
                    "INSERT INTO smcp_schema (one, version) VALUES (1, ?)"
                    " ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                    (len(migrations),),
                )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    def check_open(self) -> None:
        if self._closed:
            raise StoreError("The store is closed.")

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[PgTx]:
        self.check_open()
        try:
            async with self._pool.acquire() as conn:
                yield PgTx(conn, self._trips)
        except self._errors as exc:
            raise translate(exc) from exc

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[PgTx]:
        self.check_open()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                self._trips.count += 2  # BEGIN, and COMMIT or ROLLBACK
                yield PgTx(conn, self._trips)
        except self._errors as exc:
            raise translate(exc) from exc

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PgTx]:
        self.check_open()
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                self._trips.count += 2
                yield PgTx(conn, self._trips)
        except self._errors as exc:
            raise translate(exc) from exc

    async def write_one(self, sql: str, params: Params = ()) -> list[Row]:
        async with self.read() as tx:
            return await tx.all(sql, params)
