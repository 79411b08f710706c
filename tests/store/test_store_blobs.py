"""Per-tenant blobs in the store: streaming round trips, sealing, quotas, atomicity, memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smcp_box.errors import BlobNotFound, BlobQuotaExceeded, DecryptionFailed, InvalidBlobName
from smcp_box.store import Store
from smcp_box.store.blobs import CHUNK_BYTES, BlobInfo, BlobQuotas

from .conftest import OpenStore

MIB = 1024 * 1024
QUOTAS = BlobQuotas(max_bytes=64 * MIB, max_total_bytes=256 * MIB, max_count=100)


def pattern(size: int, seed: int = 7) -> AsyncIterator[bytes]:
    """``size`` bytes of a repeatable pattern, in pieces that do not align with chunks."""

    async def gen() -> AsyncIterator[bytes]:
        block = hashlib.sha256(str(seed).encode()).digest() * 3119  # 99,808 bytes
        left = size
        while left:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            yield piece

    return gen()


def pattern_sha(size: int, seed: int = 7) -> str:
    block = hashlib.sha256(str(seed).encode()).digest() * 3119
    digest = hashlib.sha256()
    left = size
    while left:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        digest.update(piece)
    return digest.hexdigest()


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_all(store: Store, tenant: str, name: str) -> bytes:
    info = await store.blobs.require(tenant, name)
    return b"".join([piece async for piece in store.blobs.read(tenant, info)])


async def read_sha(store: Store, tenant: str, info: BlobInfo) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    async for piece in store.blobs.read(tenant, info):
        digest.update(piece)
        size += len(piece)
    return digest.hexdigest(), size


@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 20 * MIB])
async def test_round_trip_keeps_every_byte(store: Store, size: int) -> None:
    info = await store.blobs.put(
        "alpha", "reports/2026-12.bin", pattern(size), content_type="image/png", quotas=QUOTAS
    )
    assert (info.size, info.sha256) == (size, pattern_sha(size))
    stat = await store.blobs.require("alpha", "reports/2026-12.bin")
    assert (stat.size, stat.content_type, stat.sha256) == (size, "image/png", info.sha256)
    assert await read_sha(store, "alpha", stat) == (pattern_sha(size), size)


async def test_range_reads_cross_chunk_boundaries(store: Store) -> None:
    data = bytes(range(256)) * (3 * CHUNK_BYTES // 256)
    info = await store.blobs.put("alpha", "r", one(data), quotas=QUOTAS)
    for offset, length in [(0, 10), (CHUNK_BYTES - 5, 10), (2 * CHUNK_BYTES, 10**9), (5, 0)]:
        got = b"".join([p async for p in store.blobs.read("alpha", info, offset, length)])
        assert got == data[offset : offset + length]


async def test_overwrite_replaces_and_frees_the_old_chunks(store: Store, db_path: Path) -> None:
    await store.blobs.put("alpha", "a", pattern(3 * CHUNK_BYTES), quotas=QUOTAS)
    await store.blobs.put("alpha", "a", one(b"short"), content_type="text/plain", quotas=QUOTAS)
    assert await read_all(store, "alpha", "a") == b"short"
    assert await store.blobs.usage("alpha") == (1, 5)
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM blob_chunks").fetchone() == (1,)


async def test_list_delete_usage_and_clear(store: Store) -> None:
    for name in ["b/2", "a/1", "b/1", "c"]:
        await store.blobs.put("alpha", name, one(name.encode()), quotas=QUOTAS)
    assert [i.name for i in await store.blobs.listing("alpha")] == ["a/1", "b/1", "b/2", "c"]
    assert [i.name for i in await store.blobs.listing("alpha", "b/")] == ["b/1", "b/2"]
    assert await store.blobs.delete("alpha", "b/1") is True
    assert await store.blobs.delete("alpha", "b/1") is False
    assert await store.blobs.stat("alpha", "b/1") is None
    assert await store.blobs.usage("alpha") == (3, 7)
    assert await store.blobs.all_usage() == {"alpha": (3, 7)}
    assert await store.blobs.clear("alpha") == 3
    assert await store.blobs.listing("alpha") == []
    with pytest.raises(BlobNotFound, match="no blob named 'c'"):
        await store.blobs.require("alpha", "c")


async def test_one_tenant_cannot_see_anothers_blobs(store: Store) -> None:
    await store.blobs.put("alpha", "secret.txt", one(b"alpha only"), quotas=QUOTAS)
    assert await store.blobs.stat("beta", "secret.txt") is None
    assert await store.blobs.listing("beta") == []
    assert await store.blobs.delete("beta", "secret.txt") is False
    assert await read_all(store, "alpha", "secret.txt") == b"alpha only"


@pytest.mark.parametrize(
    "name",
    ["", "/a", "a/", "a//b", "../x", "a/./b", "a b", "a\\b", "é", "x" * 513, "a/..", "a?b"],
)
async def test_unsafe_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(InvalidBlobName):
        await store.blobs.put("alpha", name, one(b"x"), quotas=QUOTAS)
    assert await store.blobs.usage("alpha") == (0, 0)


@pytest.mark.parametrize("content_type", ["", "text", "text/", "a/b c", "x/y;", "t/p\n"])
async def test_bad_content_types_are_refused(store: Store, content_type: str) -> None:
    with pytest.raises(InvalidBlobName, match="MIME type"):
        await store.blobs.put("alpha", "n", one(b"x"), content_type=content_type, quotas=QUOTAS)


async def test_content_type_with_parameters_is_kept(store: Store) -> None:
    info = await store.blobs.put(
        "alpha", "n.txt", one(b"x"), content_type="text/plain; charset=utf-8", quotas=QUOTAS
    )
    assert info.content_type == "text/plain; charset=utf-8"


async def _swap_chunk(db_path: Path, src_version: str, dst_version: str) -> None:
    with sqlite3.connect(db_path) as raw:
        (data,) = raw.execute(
            "SELECT data FROM blob_chunks WHERE version = ? AND idx = 0", (src_version,)
        ).fetchone()
        raw.execute(
            "UPDATE blob_chunks SET data = ? WHERE version = ? AND idx = 0", (data, dst_version)
        )


async def test_a_chunk_moved_to_another_blob_fails_to_decrypt(store: Store, db_path: Path) -> None:
    one_info = await store.blobs.put("alpha", "one", one(b"1" * 100), quotas=QUOTAS)
    two_info = await store.blobs.put("alpha", "two", one(b"2" * 100), quotas=QUOTAS)
    await _swap_chunk(db_path, one_info.version, two_info.version)
    with pytest.raises(DecryptionFailed, match="Chunk 0 of blob 'two' of tenant 'alpha'"):
        await read_all(store, "alpha", "two")
    assert await read_all(store, "alpha", "one") == b"1" * 100


async def test_a_chunk_moved_to_another_tenant_fails_to_decrypt(
    store: Store, db_path: Path
) -> None:
    a = await store.blobs.put("alpha", "same", one(b"a" * 100), quotas=QUOTAS)
    b = await store.blobs.put("beta", "same", one(b"b" * 100), quotas=QUOTAS)
    await _swap_chunk(db_path, a.version, b.version)
    with pytest.raises(DecryptionFailed, match="belongs to another blob, tenant or position"):
        await read_all(store, "beta", "same")


async def test_reordered_chunks_fail_to_decrypt(store: Store, db_path: Path) -> None:
    info = await store.blobs.put("alpha", "big", pattern(2 * CHUNK_BYTES), quotas=QUOTAS)
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE blob_chunks SET idx = 1 - idx + 10 WHERE version = ?", (info.version,))
        raw.execute("UPDATE blob_chunks SET idx = idx - 10 WHERE version = ?", (info.version,))
    with pytest.raises(DecryptionFailed, match="Chunk 0 of blob 'big'"):
        await read_all(store, "alpha", "big")


async def test_a_dropped_last_chunk_is_reported(store: Store, db_path: Path) -> None:
    info = await store.blobs.put("alpha", "big", pattern(2 * CHUNK_BYTES), quotas=QUOTAS)
    with sqlite3.connect(db_path) as raw:
        raw.execute("DELETE FROM blob_chunks WHERE version = ? AND idx = 1", (info.version,))
    with pytest.raises(DecryptionFailed, match="Chunk 1 of blob 'big' of tenant 'alpha' is miss"):
        await read_all(store, "alpha", "big")


async def test_plaintext_appears_nowhere_in_the_state_folder(
    open_store: OpenStore, tmp_path: Path
) -> None:
    marker = b"PLAINTEXT-MARKER-7f3a9c"
    store = await open_store()
    await store.blobs.put(
        "alpha", "notes/PLAINTEXT-MARKER-7f3a9c.txt", one(marker * 5000), quotas=QUOTAS
    )
    await store.blobs.put("alpha", "small", one(marker), quotas=QUOTAS)
    assert await read_all(store, "alpha", "small") == marker
    assert await asyncio.to_thread(files_holding, tmp_path, marker) == []
    await store.close()
    assert await asyncio.to_thread(files_holding, tmp_path, marker) == []


def files_holding(folder: Path, marker: bytes) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, "the store wrote no database file"
    return [path for path in files if marker in path.read_bytes()]


@pytest.mark.parametrize("quota", ["blob_max_bytes", "blob_max_total_bytes", "blob_max_count"])
async def test_each_quota_at_its_boundary(store: Store, quota: str) -> None:
    quotas = {
        "blob_max_bytes": BlobQuotas(max_bytes=CHUNK_BYTES + 10),
        "blob_max_total_bytes": BlobQuotas(max_total_bytes=CHUNK_BYTES + 10),
        "blob_max_count": BlobQuotas(max_count=2),
    }[quota]
    if quota == "blob_max_count":
        await store.blobs.put("alpha", "one", one(b"1"), quotas=quotas)
        await store.blobs.put("alpha", "two", one(b"2"), quotas=quotas)  # exactly at the quota
        await store.blobs.put("alpha", "two", one(b"22"), quotas=quotas)  # overwrite: same count
        with pytest.raises(BlobQuotaExceeded, match="blob_max_count quota is 2") as caught:
            await store.blobs.put("alpha", "three", one(b"3"), quotas=quotas)
    else:
        limit = CHUNK_BYTES + 10
        if quota == "blob_max_total_bytes":
            await store.blobs.put("alpha", "first", one(b"x" * 10), quotas=quotas)
            limit -= 10
        await store.blobs.put("alpha", "fits", pattern(limit), quotas=quotas)
        with pytest.raises(BlobQuotaExceeded, match=quota) as caught:
            await store.blobs.put("alpha", "over", pattern(limit + 1), quotas=quotas)
        # Shrinking an existing blob is always allowed.
        await store.blobs.put("alpha", "fits", one(b"small"), quotas=quotas)
    assert caught.value.quota == quota
    assert caught.value.to_jsonrpc_error()["data"] == {"quota": quota}
    assert await store.blobs.orphan_versions() == []
    assert await store.blobs.stat("alpha", "over") is None


async def test_an_aborted_write_keeps_the_old_version(store: Store) -> None:
    await store.blobs.put("alpha", "doc", one(b"old"), quotas=QUOTAS)
    writer = await store.blobs.writer("alpha", "doc", "text/plain", QUOTAS)
    await writer.write(b"n" * (2 * CHUNK_BYTES + 3))
    assert await store.blobs.orphan_versions() == []  # its own version is not an orphan
    await writer.abort()
    assert await read_all(store, "alpha", "doc") == b"old"
    assert await store.blobs.orphan_versions() == []


async def test_listeners_hear_commits_and_deletes(store: Store) -> None:
    heard: list[tuple[str, str]] = []
    remove = store.blobs.add_listener(lambda tenant, name: heard.append((tenant, name)))
    await store.blobs.put("alpha", "a", one(b"1"), quotas=QUOTAS)
    await store.blobs.delete("alpha", "a")
    await store.blobs.delete("alpha", "a")  # nothing changed: not heard
    remove()
    await store.blobs.put("alpha", "b", one(b"1"), quotas=QUOTAS)
    assert heard == [("alpha", "a"), ("alpha", "a")]


async def test_memory_stays_bounded_while_20_mib_streams(store: Store) -> None:
    size = 20 * MIB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        info = await store.blobs.put("alpha", "big", pattern(size), quotas=QUOTAS)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert await read_sha(store, "alpha", info) == (pattern_sha(size), size)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A few chunks' worth, nowhere near the blob's 20 MiB.
    print(f"peak traced memory: write {write_peak / MIB:.2f} MiB, read {read_peak / MIB:.2f} MiB")
    assert max(write_peak, read_peak) < 3 * MIB


async def test_orphans_of_a_crashed_write_are_cleaned_up(db_path: Path, data_key: bytes) -> None:
    store = await Store.open(db_path, data_key)
    await store.blobs.put("alpha", "doc", one(b"old"), quotas=QUOTAS)
    writer = await store.blobs.writer("alpha", "doc", "text/plain", QUOTAS)
    await writer.write(b"n" * (2 * CHUNK_BYTES))
    await store.close()  # the write neither committed nor aborted, as in a crash
    orphans = "SELECT count(*) FROM blob_chunks WHERE version NOT IN (SELECT version FROM blobs)"
    with sqlite3.connect(db_path) as raw:
        assert raw.execute(orphans).fetchone() == (2,)
    async with await Store.open(db_path, data_key) as reopened:
        assert await read_all(reopened, "alpha", "doc") == b"old"
        assert await reopened.blobs.recover_for(reopened.box_id) == 2  # what the box does at start
    with sqlite3.connect(db_path) as raw:
        assert raw.execute(orphans).fetchone() == (0,)


@pytest.mark.parametrize("kill_at", ["chunk 2 6", "chunk 3 12", "committed 2"])
def test_kill_9_during_a_put_leaves_the_old_or_the_new_version(
    db_path: Path, data_key: bytes, kill_at: str
) -> None:
    from . import blob_crash_writer as child

    with subprocess.Popen(
        [sys.executable, child.__file__, str(db_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as proc:
        assert proc.stdout is not None
        seen: list[str] = []
        try:
            for line in proc.stdout:
                seen.append(line.strip())
                if line.strip() == kill_at:
                    proc.send_signal(signal.SIGKILL)
                    break
            else:
                pytest.fail(f"the writer stopped before {kill_at!r}: {seen[-3:]}")
        finally:
            proc.kill()
            proc.wait()
    committed = [int(s.split()[1]) for s in seen if s.startswith("committed")]
    in_flight = int(kill_at.split()[1])
    possible = {child.content(v) for v in (committed[-1], in_flight)}
    with sqlite3.connect(db_path) as raw:
        orphans = raw.execute(
            "SELECT count(*) FROM blob_chunks WHERE version NOT IN (SELECT version FROM blobs)"
        ).fetchone()[0]
    if kill_at.startswith("chunk"):
        assert orphans > 0, "the kill came too late to leave a half-written version"

    async def reopen() -> tuple[bytes, list[str]]:
        async with await Store.open(db_path, data_key) as store:
            await store.blobs.recover_for(store.box_id)  # what the box does at start
            return await read_all(store, "alpha", "doc"), await store.integrity_check()

    data, problems = asyncio.run(reopen())
    assert data in possible
    assert problems == []
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute(
            "SELECT count(*) FROM blob_chunks WHERE version NOT IN (SELECT version FROM blobs)"
        ).fetchone() == (0,)


async def test_a_failing_listener_does_not_undo_a_commit(store: Store) -> None:
    def broken(tenant: str, name: str) -> None:
        raise RuntimeError("listener bug")

    store.blobs.add_listener(broken)
    info = await store.blobs.put("alpha", "kept", one(b"data"), quotas=QUOTAS)
    assert await read_all(store, "alpha", "kept") == b"data"
    assert info.size == 4


async def test_discarding_a_committed_version_keeps_its_chunks(store: Store) -> None:
    """As when a cancellation lands while COMMIT runs: the writer's abort must not delete the
    version SQLite committed."""
    info = await store.blobs.put("alpha", "doc", one(b"x" * 10), quotas=QUOTAS)
    await store.blobs._discard(info.version)
    assert await read_all(store, "alpha", "doc") == b"x" * 10
