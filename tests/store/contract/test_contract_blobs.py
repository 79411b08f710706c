"""Contract: per-tenant blobs on both backends, from one box and from two sharing the database.

A second store opened with another ``box_id`` stands for a second box: its writes in flight
are never taken for a crash's leftovers by the first box's recovery, and the quotas hold
exactly when both write at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from smcp_box.errors import BlobNotFound, BlobQuotaExceeded
from smcp_box.store import Store
from smcp_box.store.blobs import CHUNK_BYTES, BlobQuotas

from .conftest import Backend

QUOTAS = BlobQuotas(max_bytes=4 * CHUNK_BYTES, max_total_bytes=40 * CHUNK_BYTES, max_count=50)
ORPHAN_CHUNKS = "SELECT count(*) FROM blob_chunks WHERE version NOT IN (SELECT version FROM blobs)"


async def _pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(store: Store, tenant: str, name: str) -> bytes:
    info = await store.blobs.require(tenant, name)
    return b"".join([piece async for piece in store.blobs.read(tenant, info)])


async def test_chunked_write_read_range_list_and_delete(store: Store) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 256) * 2 + b"tail"
    info = await store.blobs.put(
        "alpha", "reports/big.bin", _pieces(data[:1000], data[1000:]), quotas=QUOTAS
    )
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await _read(store, "alpha", "reports/big.bin") == data
    start = CHUNK_BYTES - 3
    ranged = [p async for p in store.blobs.read("alpha", info, start, 10)]
    assert b"".join(ranged) == data[start : start + 10]
    await store.blobs.put(
        "alpha", "a.txt", _pieces(b"hi"), content_type="text/plain", quotas=QUOTAS
    )
    listed = await store.blobs.listing("alpha")
    assert [(i.name, i.size) for i in listed] == [("a.txt", 2), ("reports/big.bin", len(data))]
    assert [i.name for i in await store.blobs.listing("alpha", "reports/")] == ["reports/big.bin"]
    assert await store.blobs.listing("beta") == []
    assert await store.blobs.usage("alpha") == (2, len(data) + 2)
    assert await store.blobs.tenants() == ["alpha"]

    await store.blobs.put("alpha", "a.txt", _pieces(b"longer"), quotas=QUOTAS)
    assert await _read(store, "alpha", "a.txt") == b"longer"
    assert await store.blobs.usage("alpha") == (2, len(data) + 6)
    assert await store.blobs.delete("alpha", "reports/big.bin") is True
    assert await store.blobs.delete("alpha", "reports/big.bin") is False
    with pytest.raises(BlobNotFound):
        await store.blobs.require("alpha", "reports/big.bin")
    assert await store.blobs.all_usage() == {"alpha": (1, 6)}
    assert await store.blobs.clear("alpha") == 1
    assert await store.blobs.usage("alpha") == (0, 0)


async def test_no_chunks_outlive_overwrites_deletes_and_clears(backend: Backend) -> None:
    store = await backend.open()
    await store.blobs.put("alpha", "x", _pieces(b"x" * (2 * CHUNK_BYTES)), quotas=QUOTAS)
    await store.blobs.put("alpha", "x", _pieces(b"y"), quotas=QUOTAS)
    await store.blobs.put("alpha", "z", _pieces(b"z" * (CHUNK_BYTES + 1)), quotas=QUOTAS)
    assert await backend.raw("SELECT count(*) FROM blob_chunks") == [(3,)]
    await store.blobs.delete("alpha", "x")
    assert await backend.raw("SELECT count(*) FROM blob_chunks") == [(2,)]
    await store.blobs.clear("alpha")
    assert await backend.raw("SELECT count(*) FROM blob_chunks") == [(0,)]


async def test_quotas_are_refused_by_name(store: Store) -> None:
    with pytest.raises(BlobQuotaExceeded, match="blob_max_bytes"):
        await store.blobs.put("alpha", "big", _pieces(b"x" * (4 * CHUNK_BYTES + 1)), quotas=QUOTAS)
    small = BlobQuotas(max_bytes=100, max_total_bytes=150, max_count=2)
    await store.blobs.put("alpha", "a", _pieces(b"a" * 100), quotas=small)
    with pytest.raises(BlobQuotaExceeded, match="blob_max_total_bytes"):
        await store.blobs.put("alpha", "b", _pieces(b"b" * 51), quotas=small)
    await store.blobs.put("alpha", "b", _pieces(b"b" * 50), quotas=small)
    with pytest.raises(BlobQuotaExceeded, match="blob_max_count"):
        await store.blobs.put("alpha", "c", _pieces(b"c"), quotas=small)
    assert await store.blobs.usage("alpha") == (2, 150)


async def test_quotas_and_usage_are_exact_under_two_boxes_writing(backend: Backend) -> None:
    one = await backend.open(box_id="one")
    two = await backend.open(box_id="two")
    quotas = BlobQuotas(max_bytes=1000, max_total_bytes=10_000, max_count=7)

    async def put(store: Store, index: int) -> bool:
        try:
            await store.blobs.put("alpha", f"n{index:02}", _pieces(b"v" * 1000), quotas=quotas)
        except BlobQuotaExceeded:
            return False
        return True

    stored = await asyncio.gather(*(put(one if i % 2 else two, i) for i in range(16)))
    assert stored.count(True) == 7
    assert await one.blobs.usage("alpha") == (7, 7000)
    assert len(await two.blobs.listing("alpha")) == 7

    # Overwrites and deletes from both boxes at once keep the counts exact too.
    names = [info.name for info in await one.blobs.listing("alpha")]
    await asyncio.gather(
        *(
            (one if i % 2 else two).blobs.put("alpha", name, _pieces(b"w" * i), quotas=quotas)
            for i, name in enumerate(names)
        ),
        one.blobs.delete("alpha", names[0]),
    )
    listed = await two.blobs.listing("alpha")
    assert await two.blobs.usage("alpha") == (len(listed), sum(i.size for i in listed))
    assert await backend.raw(ORPHAN_CHUNKS) == [(0,)]


async def test_recovery_deletes_only_the_own_boxes_orphans(backend: Backend) -> None:
    one = await backend.open(box_id="one")
    two = await backend.open(box_id="two")
    await one.blobs.put("alpha", "doc", _pieces(b"old"), quotas=QUOTAS)
    crashed = await one.blobs.writer("alpha", "doc", "text/plain", QUOTAS)
    await crashed.write(b"n" * (2 * CHUNK_BYTES))
    await one.close()  # neither committed nor aborted: what a crash leaves
    in_flight = await two.blobs.writer("alpha", "doc", "text/plain", QUOTAS)
    await in_flight.write(b"m" * (CHUNK_BYTES + 5))
    assert await backend.raw(ORPHAN_CHUNKS) == [(3,)]

    # Box one restarts: its own leftovers go, box two's write in flight stays.
    restarted = await backend.open(box_id="one")
    assert await restarted.blobs.orphan_versions() == [crashed.version]
    assert await restarted.blobs.recover_for("one") == 2
    assert await restarted.blobs.recover_for("one") == 0
    info = await in_flight.commit()
    assert info.size == CHUNK_BYTES + 5
    assert await _read(restarted, "alpha", "doc") == b"m" * (CHUNK_BYTES + 5)
    assert await backend.raw(ORPHAN_CHUNKS) == [(0,)]


async def test_a_dead_boxs_orphans_are_recovered_by_the_box_that_notices(
    backend: Backend,
) -> None:
    dead = await backend.open(box_id="dead")
    survivor = await backend.open(box_id="alive")
    crashed = await dead.blobs.writer("alpha", "doc", "text/plain", QUOTAS)
    await crashed.write(b"d" * CHUNK_BYTES)
    await dead.close()
    assert await survivor.blobs.orphan_versions() == []  # not the survivor's own
    assert await survivor.blobs.orphan_versions("dead") == [crashed.version]
    assert await survivor.blobs.recover_for("dead") == 1
    assert await backend.raw(ORPHAN_CHUNKS) == [(0,)]
