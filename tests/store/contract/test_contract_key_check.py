"""Contract: the data key check, on both backends."""

from __future__ import annotations

import pytest

from smcp_box.errors import DecryptionFailed

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
