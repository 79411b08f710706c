"""The store contract suite's fixtures: every test runs once per backend.

``backend`` is "sqlite" (a file in tmp_path) or "postgres" (a fresh database per test on one
throwaway server per test session, tests/support/postgres.py). ``Backend.open`` opens a
Store on the test's database as one box would; opening it twice is two boxes sharing it.
Only a missing initdb skips the postgres half; any other failure to start it fails the tests.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smcp_box.store import Store
from tests.support.postgres import (
    create_database,
    throwaway_postgres_or_skip,
)

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The DSN of the session's throwaway PostgreSQL server's maintenance database."""
    yield from throwaway_postgres_or_skip()


@dataclass
class Backend:
    name: str
    where: str  # a file path, or a DSN
    data_key: bytes
    defaults: dict[str, Any]
    opened: list[Store] = field(default_factory=list)

    async def open(self, key: bytes | None = None, **kwargs: Any) -> Store:
        """Open a store (one more box) on this test's database."""
        options = {**self.defaults, **kwargs}
        key = self.data_key if key is None else key
        if self.name == "sqlite":
            store = await Store.open(Path(self.where), key, **options)
        else:
            store = await Store.open_postgres(self.where, key, **options)
        self.opened.append(store)
        return store

    async def raw(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` straight on the database, as someone with access to it; its rows."""
        if self.name == "sqlite":
            conn = sqlite3.connect(self.where, isolation_level=None)  # autocommit
            try:
                return [tuple(row) for row in conn.execute(sql)]
            finally:
                conn.close()
        import asyncpg

        conn_pg = await asyncpg.connect(self.where)
        try:
            return [tuple(row) for row in await conn_pg.fetch(sql)]
        finally:
            await conn_pg.close()


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    data_key: bytes,
    clock: Callable[[], float],
    token_source: Callable[[int], bytes],
) -> AsyncIterator[Backend]:
    defaults: dict[str, Any] = {"clock": clock, "token_source": token_source}
    if request.param == "sqlite":
        where = str(tmp_path / "box.sqlite3")
    else:
        where = await create_database(request.getfixturevalue("postgres_server"), "contract")
    chosen = Backend(request.param, where, data_key, defaults)
    yield chosen
    for store in chosen.opened:
        await store.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
