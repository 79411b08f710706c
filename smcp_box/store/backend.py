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
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from smcp_box.errors import StoreError

Row = tuple[Any, ...]
Params = Sequence[Any]

#: The store's areas, by the names errors and docs use: a backend implements some or all of
#: them (``Database.areas``); the others are wired to :class:`UnportedArea`.
AREAS: tuple[str, ...] = (
    "key_check",
    "sessions",
    "kv",
    "apikeys",
    "audit",
    "tenant_state",
    "signing_keys",
    "oauth",
    "users",
    "secrets",
    "approvals",
    "baselines",
    "tasks",
    "blobs",
    "fleet",
)


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
    #: The :data:`AREAS` this backend implements.
    areas: frozenset[str]

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


class UnportedArea:
    """A :class:`Database` stand-in for a store area that a backend does not implement yet.

    Every use refuses with an error naming the area and the backend, so an unported area can
    never half-work on SQL written for another dialect. The box refuses to start on such a
    backend before anything reaches here (see ``store.unported_areas``); this guards direct
    users of :class:`~smcp_box.store.store.Store` such as tests and tools.
    """

    def __init__(self, area: str, db: Database) -> None:
        self.area = area
        self.backend = db.backend
        self.areas: frozenset[str] = frozenset()
        self._location = db.location

    @property
    def location(self) -> str:
        return self._location

    def _refuse(self) -> StoreError:
        return StoreError(
            f"The store area {self.area!r} is not available on the {self.backend} backend yet. "
            'Use [store] backend = "sqlite" for now.'
        )

    def check_open(self) -> None:
        raise self._refuse()

    async def close(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        raise self._refuse()
        yield  # pragma: no cover  (makes this an async generator)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        raise self._refuse()
        yield  # pragma: no cover

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        return self.read()

    async def write_one(self, sql: str, params: Params = ()) -> list[Row]:
        raise self._refuse()
