"""``smcp-box blob ...`` run as real processes against a real box's admin socket."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smcp_box.box import Box
from tests.admin.support import RunningBox, box_settings, running_box, short_runtime_dir
from tests.admin.test_cli import smcp

MIB = 1024 * 1024


def write_pattern(path: Path, size: int) -> str:
    """A file of ``size`` pseudo-random bytes; returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        counter = 0
        left = size
        while left:
            block = hashlib.sha512(counter.to_bytes(8, "big")).digest() * 1024
            block = block[:left]
            out.write(block)
            digest.update(block)
            left -= len(block)
            counter += 1
    return digest.hexdigest()


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def quota_box(tmp_path: Path, module_cache: Path) -> AsyncIterator[RunningBox]:
    """A box whose utils tenant has small blob quotas in its tenant.toml."""

    def small_quotas(tenants: Path) -> None:
        manifest = tenants / "utils" / "tenant.toml"
        text = manifest.read_text()
        manifest.write_text(f"{text}\n[quotas]\nblob_max_bytes = 1000\nblob_max_count = 2\n")

    async with running_box(tmp_path, module_cache, small_quotas) as running:
        yield running


@pytest.mark.parametrize("size", [0, 1, 20 * MIB])
async def test_put_get_round_trip_keeps_the_hash(rb: RunningBox, tmp_path: Path, size: int) -> None:
    src, dest = tmp_path / "in.bin", tmp_path / "out.bin"
    expected = await asyncio.to_thread(write_pattern, src, size)
    put = await smcp(rb, "blob", "put", "notes", "reports/2026-12.bin", str(src))
    assert put.code == 0, put.err
    assert f"sha256 {expected}" in put.out
    assert "application/octet-stream" in put.out
    got = await smcp(rb, "blob", "get", "notes", "reports/2026-12.bin", "-o", str(dest))
    assert got.code == 0, got.err
    assert await asyncio.to_thread(sha_of, dest) == expected
    if size >= 4 * MIB:
        assert "put reports/2026-12.bin: 20.0 MiB of 20.0 MiB (100%)" in put.err
        assert re.search(r"get reports/2026-12.bin: 1\d\.\d MiB of 20.0 MiB \(5\d%\)", got.err)
        assert "get reports/2026-12.bin: 20.0 MiB of 20.0 MiB (100%)" in got.err
    else:
        assert "%" not in put.err


async def test_list_usage_stdout_get_and_delete(rb: RunningBox, tmp_path: Path) -> None:
    (tmp_path / "chart.svg").write_text("<svg/>")
    (tmp_path / "a.txt").write_text("hello")
    assert (
        await smcp(rb, "blob", "put", "notes", "charts/q1.svg", str(tmp_path / "chart.svg"))
    ).code == 0
    typed = await smcp(
        rb, "blob", "put", "notes", "notes/a", str(tmp_path / "a.txt"), "--type", "text/markdown"
    )
    assert "text/markdown" in typed.out
    listed = await smcp(rb, "blob", "list", "notes")
    assert "charts/q1.svg  6 B  image/svg+xml" in listed.out
    assert "2 blob(s), 11 B of 1024.0 MiB" in listed.out
    only = json.loads((await smcp(rb, "blob", "list", "notes", "charts/", "--json")).out)
    assert [b["name"] for b in only["blobs"]] == ["charts/q1.svg"]
    usage = await smcp(rb, "blob", "usage")
    assert "notes: 2 of 10000 blobs, 11 B of 1024.0 MiB" in usage.out
    assert "utils: 0 of 10000 blobs" in usage.out
    to_stdout = await smcp(rb, "blob", "get", "notes", "notes/a")
    assert to_stdout.out == "hello"
    assert (await smcp(rb, "blob", "delete", "notes", "notes/a")).code == 0
    again = await smcp(rb, "blob", "delete", "notes", "notes/a")
    assert again.code == 1
    assert "tenant 'notes' has no blob 'notes/a'" in again.err
    audit = await rb.box.store.audit_page(event="admin.blob.put")
    assert {row.detail["name"] for row in audit} == {"charts/q1.svg", "notes/a"}


async def test_another_tenants_blob_is_invisible_through_the_admin_api(
    rb: RunningBox, tmp_path: Path
) -> None:
    (tmp_path / "s").write_text("notes only")
    assert (await smcp(rb, "blob", "put", "notes", "private", str(tmp_path / "s"))).code == 0
    assert "0 blob(s)" in (await smcp(rb, "blob", "list", "utils")).out
    missing = await smcp(rb, "blob", "get", "utils", "private", "-o", str(tmp_path / "x"))
    assert missing.code == 1
    assert "Tenant 'utils' has no blob named 'private'" in missing.err
    assert not (tmp_path / "x").exists()


async def test_bad_input_is_refused_clearly(rb: RunningBox, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    bad_name = await smcp(rb, "blob", "put", "notes", "../etc/passwd", str(tmp_path / "f"))
    assert bad_name.code == 1
    assert "is not a safe path" in bad_name.err
    no_tenant = await smcp(rb, "blob", "put", "nobody", "a", str(tmp_path / "f"))
    assert no_tenant.code == 1
    assert "no tenant named 'nobody'" in no_tenant.err
    no_file = await smcp(rb, "blob", "put", "notes", "a", str(tmp_path / "missing"))
    assert no_file.code == 2
    assert "cannot read" in no_file.err
    bad_type = await smcp(rb, "blob", "put", "notes", "a", str(tmp_path / "f"), "--type", "nope")
    assert "is not a MIME type" in bad_type.err
    assert await rb.box.store.blobs.listing("notes") == []
    assert await rb.box.store.blobs.orphan_versions() == []


async def test_quotas_from_tenant_toml_are_named(quota_box: RunningBox, tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"b" * 1001)
    (tmp_path / "ok").write_bytes(b"o" * 1000)
    too_big = await smcp(quota_box, "blob", "put", "utils", "big", str(tmp_path / "big"))
    assert too_big.code == 1
    assert "blob_max_bytes quota of 1000 bytes" in too_big.err
    for name in ("one", "two"):
        assert (await smcp(quota_box, "blob", "put", "utils", name, str(tmp_path / "ok"))).code == 0
    three = await smcp(quota_box, "blob", "put", "utils", "three", str(tmp_path / "ok"))
    assert "blob_max_count quota is 2" in three.err
    usage = await smcp(quota_box, "blob", "usage")
    assert "utils: 2 of 2 blobs" in usage.out
    assert await quota_box.box.store.blobs.orphan_versions() == []


async def test_the_box_memory_stays_bounded_while_20_mib_streams(
    rb: RunningBox, tmp_path: Path
) -> None:
    """The box runs in this process; the CLI in another. Peak traced memory of this process
    while the blob goes in and comes out must stay a few parts' worth, not the blob's size."""
    src, dest = tmp_path / "in.bin", tmp_path / "out.bin"
    expected = await asyncio.to_thread(write_pattern, src, 20 * MIB)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        put = await smcp(rb, "blob", "put", "notes", "big", str(src))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = await smcp(rb, "blob", "get", "notes", "big", "-o", str(dest))
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (put.code, got.code) == (0, 0), put.err + got.err
    assert await asyncio.to_thread(sha_of, dest) == expected
    print(f"box peak traced memory: put {put_peak / MIB:.2f} MiB, get {get_peak / MIB:.2f} MiB")
    assert max(put_peak, get_peak) < 8 * MIB


async def test_box_start_deletes_chunks_a_crashed_write_left(
    tmp_path: Path, module_cache: Path
) -> None:
    settings = box_settings(tmp_path, module_cache, short_runtime_dir())
    await (await Box.start(settings)).stop()
    orphans = "SELECT count(*) FROM blob_chunks WHERE version NOT IN (SELECT version FROM blobs)"
    with sqlite3.connect(settings.database_path()) as raw:
        raw.execute(
            "INSERT INTO blob_chunks (version, idx, tenant, data) VALUES (?, 0, 'notes', ?)",
            ("crashed", b"\x01" + b"\x00" * 40),
        )
        assert raw.execute(orphans).fetchone() == (1,)
    await (await Box.start(settings)).stop()
    with sqlite3.connect(settings.database_path()) as raw:
        assert raw.execute(orphans).fetchone() == (0,)


async def test_usage_shows_in_tenant_details_and_the_metrics_api(
    rb: RunningBox, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"z" * 1234)
    assert (await smcp(rb, "blob", "put", "notes", "a/f", str(tmp_path / "f"))).code == 0
    details = await rb.client.tenant("notes")
    assert (details["blobs"], details["blob_bytes"]) == (1, 1234)
    metrics = await rb.client.metrics()
    notes = next(row for row in metrics["tenants"] if row["name"] == "notes")
    assert (notes["blobs"], notes["blob_bytes"]) == (1, 1234)


async def test_a_damaged_blob_download_fails_clearly_and_writes_no_file(
    rb: RunningBox, tmp_path: Path
) -> None:
    src = tmp_path / "in.bin"
    await asyncio.to_thread(write_pattern, src, 3 * MIB)
    assert (await smcp(rb, "blob", "put", "notes", "one", str(src))).code == 0
    assert (await smcp(rb, "blob", "put", "notes", "two", str(src))).code == 0
    one = await rb.box.store.blobs.require("notes", "one")
    two = await rb.box.store.blobs.require("notes", "two")
    with sqlite3.connect(rb.settings.database_path()) as raw:
        (sealed,) = raw.execute(
            "SELECT data FROM blob_chunks WHERE version = ? AND idx = 5", (one.version,)
        ).fetchone()
        raw.execute(
            "UPDATE blob_chunks SET data = ? WHERE version = ? AND idx = 5", (sealed, two.version)
        )
    got = await smcp(rb, "blob", "get", "notes", "two", "-o", str(tmp_path / "out.bin"))
    assert got.code == 1
    assert "the download of blob 'two' broke off after 1310720 bytes" in got.err
    assert not (tmp_path / "out.bin").exists()
    assert not (tmp_path / ".out.bin.partial").exists()
