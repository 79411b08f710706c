"""A real wasm tenant (built from source with the C SDK) keeps blobs through the host imports,
served by a real box over loopback to the official MCP SDK client."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from tests.blobs.conftest import BlobBox
from tests.e2e.clients import connect

MIB = 1024 * 1024
KIB_TEXT = "0123456789abcdef" * 64  # 1 KiB


async def call(bb: BlobBox, tenant: str, tool: str, args: dict[str, Any]) -> Any:
    async with connect(bb.url(tenant), bb.keys[tenant], "auto") as client:
        return await client.call_tool(tool, args)


def expected(text: str, repeat: int) -> tuple[int, str]:
    data = (text * repeat).encode()
    return len(data), hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("text", "repeat"), [("", 1), ("x", 1), (KIB_TEXT, 20 * 1024)])
async def test_module_round_trip_keeps_the_hash(blob_box: BlobBox, text: str, repeat: int) -> None:
    size, digest = expected(text, repeat)
    wrote = await call(
        blob_box, "alpha", "write", {"name": "out/r.txt", "text": text, "repeat": repeat}
    )
    assert not wrote.is_error, wrote
    assert wrote.structured_content == {"size": size, "sha256": digest}
    read = await call(blob_box, "alpha", "read", {"name": "out/r.txt"})
    assert (read.structured_content["size"], read.structured_content["sha256"]) == (size, digest)
    # The store (and so the admin API and resources) sees what the module wrote.
    info = await blob_box.box.store.blobs.require("alpha", "out/r.txt")
    assert (info.size, info.sha256, info.content_type) == (size, digest, "text/plain")


async def test_stat_list_delete_through_the_module(blob_box: BlobBox) -> None:
    for name in ("b/one", "b/two", "c"):
        await call(blob_box, "alpha", "write", {"name": name, "text": name, "type": "text/csv"})
    stat = await call(blob_box, "alpha", "stat", {"name": "b/one"})
    info = json.loads(stat.content[0].text)
    assert info["size"] == 5
    assert info["contentType"] == "text/csv"
    listed = json.loads((await call(blob_box, "alpha", "list", {"prefix": "b/"})).content[0].text)
    assert [b["name"] for b in listed] == ["b/one", "b/two"]
    assert (await call(blob_box, "alpha", "delete", {"name": "c"})).content[0].text == "deleted"
    assert (await call(blob_box, "alpha", "delete", {"name": "c"})).content[0].text == "absent"
    assert (await call(blob_box, "alpha", "stat", {"name": "c"})).content[0].text == "absent"
    bad = await call(blob_box, "alpha", "write", {"name": "../x", "text": "t"})
    assert bad.is_error
    assert "the blob name or content type is not allowed (-4)" in bad.content[0].text


async def test_another_tenants_blob_is_invisible_to_a_module(blob_box: BlobBox) -> None:
    await call(blob_box, "alpha", "write", {"name": "private", "text": "alpha only"})
    assert (await call(blob_box, "beta", "stat", {"name": "private"})).content[0].text == "absent"
    read = await call(blob_box, "beta", "read", {"name": "private"})
    assert read.is_error
    assert "no blob by that name (-3)" in read.content[0].text
    assert (await call(blob_box, "beta", "list", {})).content[0].text == "[]"
    assert (await call(blob_box, "beta", "delete", {"name": "private"})).content[0].text == "absent"
    assert (await blob_box.box.store.blobs.require("alpha", "private")).size == 10


async def test_a_write_never_closed_is_abandoned(blob_box: BlobBox) -> None:
    await call(blob_box, "alpha", "write", {"name": "doc", "text": "old"})
    left = await call(
        blob_box,
        "alpha",
        "write",
        {"name": "doc", "text": KIB_TEXT, "repeat": 1024, "close": False},
    )
    assert not left.is_error
    read = await call(blob_box, "alpha", "read", {"name": "doc"})
    assert read.structured_content["text"] == "old"
    assert await blob_box.box.store.blobs.orphan_versions() == []


async def test_module_quotas_are_status_codes(blob_box: BlobBox) -> None:
    over = await call(blob_box, "beta", "write", {"name": "big", "text": "x" * 1001})
    assert over.is_error
    assert "a blob quota would be exceeded; delete blobs or ask the admin for more (-1)" in (
        over.content[0].text
    )
    assert not (
        await call(blob_box, "beta", "write", {"name": "fits", "text": "x" * 1000})
    ).is_error
    for name in ("two", "three"):
        assert not (await call(blob_box, "beta", "write", {"name": name, "text": "y"})).is_error
    fourth = await call(blob_box, "beta", "write", {"name": "four", "text": "z"})
    assert "(-1)" in fourth.content[0].text
    assert await blob_box.box.store.blobs.usage("beta") == (3, 1002)


async def test_the_wall_clock_still_bounds_a_streaming_module(blob_box: BlobBox) -> None:
    """gamma has 300 ms per call: writing 60 MiB takes longer, so the call is stopped and the
    half-written blob is abandoned."""
    async with connect(blob_box.url("gamma"), blob_box.keys["gamma"], "auto") as client:
        with pytest.raises(MCPError, match="wall-clock limit of 300 ms"):
            await client.call_tool("write", {"name": "huge", "text": KIB_TEXT, "repeat": 60 * 1024})
    assert await blob_box.box.store.blobs.stat("gamma", "huge") is None
    assert await blob_box.box.store.blobs.orphan_versions() == []


async def test_box_memory_stays_bounded_while_a_module_streams_20_mib(blob_box: BlobBox) -> None:
    size, digest = expected(KIB_TEXT, 20 * 1024)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        wrote = await call(
            blob_box, "alpha", "write", {"name": "big", "text": KIB_TEXT, "repeat": 20 * 1024}
        )
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read = await call(blob_box, "alpha", "read", {"name": "big"})
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wrote.structured_content == {"size": size, "sha256": digest}
    assert read.structured_content["sha256"] == digest
    print(
        f"box peak traced memory: module write {write_peak / MIB:.2f} MiB, "
        f"read {read_peak / MIB:.2f} MiB"
    )
    assert max(write_peak, read_peak) < 8 * MIB
