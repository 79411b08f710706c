"""The seam between the store's area modules and a database: what every backend provides.

Area modules (sessions, kv, apikeys, ...) write SQL once, in the dialect both backends accept:
``?`` or ``?N`` parameters (SQLite's styles; the PostgreSQL backend rewrites them to ``$N``),
``INSERT ... ON CONFLICT ... DO UPDATE/NOTHING``, ``RETURNING``, ``excluded.``, ``coalesce``,
plain ``LIMIT``. Whatever the dialects do differently lives in the schema (each backend has its
own migration history) or behind a method here, never in an ``if backend == ...`` in an area.

The contract (docs/scale-out.md, "Store backends"):

* :meth:`Database.read` holds a connection for reads, or for one write statement, which is
  atomic on its own. :meth:`Database.write` is one transaction: all of it commits or none.
* :meth:`Tx.lock` serializes read-modify-write transactions on one name (a kv tenant, the key
  check) against every other transaction taking the same name, in this process and in any
  other process on the same database. On SQLite the one connection already runs transactions
  one at a time, so it costs nothing there; PostgreSQL takes a transaction advisory lock.
* Rows come back as tuples; BLOB/bytea columns as ``bytes``, REAL/double as ``float``,
  INTEGER/bigint as ``int``.
* Database errors leave as :class:`~smcp_box.errors.StoreError` (``StorageFull`` when the disk
  is full), after the transaction rolled back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

Row = tuple[Any, ...]
Params = Sequence[Any]


class Tx(Protocol):
    """Statements inside one ``read`` or ``write`` of a :class:`Database`."""

    async def all(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def one(self, sql: str, params: Params = ()) -> Row | None: ...

    async def run(self, sql: str, params: Params = ()) -> None: ...

    async def lock(self, *name: str) -> None:
        """Serialize this transaction against others locking the same name (see module doc)."""
        ...


class Database(Protocol):
    """One store's database, whichever backend holds it."""

    #: ``"sqlite"`` or ``"postgres"``.
    backend: str

    @property
    def location(self) -> str:
        """Where the data is, for messages: a file path, or a DSN without its password."""
        ...

    def check_open(self) -> None: ...

    async def close(self) -> None: ...

    def read(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...

    def write(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """Reads that all see one consistent, committed state (a long read such as audit
        verification: the head and every row from the same moment)."""
        ...

    async def write_one(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one write statement as its own transaction; returns its RETURNING rows."""
        ...

    def round_trips(self) -> int | None:
        """Round trips to a database server so far; None for an embedded database (SQLite)."""
        ...
