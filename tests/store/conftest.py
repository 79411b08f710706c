"""Fixtures for the store tests: a real SQLite file in tmp_path, a fake clock, fixed tokens."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.store import Store


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def token_source() -> Callable[[int], bytes]:
    rng = random.Random(1234)
    return rng.randbytes


@pytest.fixture
def data_key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "box.sqlite3"


OpenStore = Callable[..., Awaitable[Store]]


@pytest.fixture
async def open_store(
    db_path: Path, data_key: bytes, clock: FakeClock, token_source: Callable[[int], bytes]
) -> AsyncIterator[OpenStore]:
    """Open a store on db_path (by default) with the test clock and tokens; closes them all."""
    opened: list[Store] = []

    async def _open(path: Path | None = None, key: bytes | None = None, **kwargs: Any) -> Store:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("token_source", token_source)
        store = await Store.open(path or db_path, data_key if key is None else key, **kwargs)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


@pytest.fixture
def raw_db(db_path: Path) -> Iterator[Callable[[], sqlite3.Connection]]:
    """Raw sqlite3 connections to the store's file, as an attacker with file access has."""
    conns: list[sqlite3.Connection] = []

    def _connect() -> sqlite3.Connection:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conns.append(conn)
        return conn

    yield _connect
    for conn in conns:
        conn.close()
