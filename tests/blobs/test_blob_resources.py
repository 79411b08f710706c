"""Blobs as MCP resources (``[blobs] resources = true``), read with the official SDK client in
all three modes, answered by the box without calling the module; updates to subscribers."""

from __future__ import annotations

import asyncio
import base64
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.client.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from smcp_box.store.blobs import BlobQuotas
from smcp_box.tenancy import blob_resources
from smcp_box.tenancy.blob_resources import MAX_READ_BYTES
from tests.blobs.conftest import BlobBox
from tests.e2e.clients import MODES, connect
from tests.support.waiting import wait_until

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(bb: BlobBox, tenant: str, name: str, data: bytes, content_type: str) -> None:
    await bb.box.store.blobs.put(
        tenant, name, one(data), content_type=content_type, quotas=BlobQuotas()
    )


def module_calls(bb: BlobBox, tenant: str) -> int:
    return bb.box.tenants.require(tenant).stats.calls


@pytest.mark.parametrize("mode", MODES)
async def test_list_and_read_blob_resources(blob_box: BlobBox, mode: str) -> None:
    await put(blob_box, "alpha", "reports/2026-12.md", "# Report ünïcode".encode(), "text/markdown")
    await put(blob_box, "alpha", "charts/q1.png", PNG, "image/png")
    await put(blob_box, "alpha", "data/x.json", b'{"a": 1}', "application/json")
    await put(blob_box, "beta", "beta-only", b"beta", "text/plain")
    async with connect(blob_box.url("alpha"), blob_box.keys["alpha"], mode) as client:
        calls_before = module_calls(blob_box, "alpha")
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert set(listed) == {"blob:charts/q1.png", "blob:data/x.json", "blob:reports/2026-12.md"}
        assert listed["blob:charts/q1.png"].mime_type == "image/png"
        assert listed["blob:charts/q1.png"].size == len(PNG)
        text = await client.read_resource("blob:reports/2026-12.md")
        assert text.contents[0].text == "# Report ünïcode"  # type: ignore[union-attr]
        assert text.contents[0].mime_type == "text/markdown"
        json_text = await client.read_resource("blob:data/x.json")
        assert json_text.contents[0].text == '{"a": 1}'  # type: ignore[union-attr]
        binary = await client.read_resource("blob:charts/q1.png")
        assert base64.b64decode(binary.contents[0].blob) == PNG  # type: ignore[union-attr]
        # Reads never reached the module; the list asked it for its own resources once.
        assert module_calls(blob_box, "alpha") - calls_before <= 1
        with pytest.raises(MCPError, match="Resource not found: blob:beta-only"):
            await client.read_resource("blob:beta-only")
        with pytest.raises(MCPError, match="Resource not found"):
            await client.read_resource("blob:../etc")


@pytest.mark.parametrize("mode", MODES)
async def test_a_tenant_without_blob_resources_lists_none(blob_box: BlobBox, mode: str) -> None:
    await put(blob_box, "beta", "hidden.txt", b"not a resource", "text/plain")
    async with connect(blob_box.url("beta"), blob_box.keys["beta"], mode) as client:
        try:
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
        except MCPError:  # the module serves no resources at all
            uris = []
        assert uris == []
        with pytest.raises(MCPError):
            await client.read_resource("blob:hidden.txt")


async def test_a_blob_too_large_to_read_whole_is_refused_by_name(blob_box: BlobBox) -> None:
    size = MAX_READ_BYTES + 1

    async def big() -> AsyncIterator[bytes]:
        for _ in range(size // 65536):
            yield b"x" * 65536
        yield b"x" * (size % 65536)

    await blob_box.box.store.blobs.put("alpha", "big.bin", big(), quotas=BlobQuotas())
    async with connect(blob_box.url("alpha"), blob_box.keys["alpha"], "auto") as client:
        with pytest.raises(MCPError, match=f"is {size} bytes; resources/read returns at most"):
            await client.read_resource("blob:big.bin")


async def test_the_largest_blob_read_is_the_tenants_quota(blob_box: BlobBox) -> None:
    await put(blob_box, "delta", "edge.txt", b"e" * 2048, "text/plain")
    await put(blob_box, "delta", "over.txt", b"o" * 2049, "text/plain")
    async with connect(blob_box.url("delta"), blob_box.keys["delta"], "auto") as client:
        read = await client.read_resource("blob:edge.txt")
        assert [getattr(c, "text", None) for c in read.contents] == ["e" * 2048]
        with pytest.raises(
            MCPError,
            match=r"is 2049 bytes; resources/read returns at most 2048 \(quota "
            "blob_resource_max_bytes",
        ):
            await client.read_resource("blob:over.txt")


async def test_a_legacy_subscriber_gets_resources_updated(blob_box: BlobBox) -> None:
    await put(blob_box, "alpha", "live.txt", b"v1", "text/plain")
    seen: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        params = getattr(root, "params", None)
        if getattr(root, "method", None) == "notifications/resources/updated" and params:
            seen.append(str(params.uri))

    async with connect(
        blob_box.url("alpha"), blob_box.keys["alpha"], "legacy", message_handler=on_message
    ) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource("blob:live.txt")
        await put(blob_box, "alpha", "other.txt", b"x", "text/plain")  # not subscribed
        await put(blob_box, "alpha", "live.txt", b"v2", "text/plain")
        await wait_until(lambda: "blob:live.txt" in seen, what="resources/updated for live.txt")
        assert "blob:other.txt" not in seen
        read = await client.read_resource("blob:live.txt")
        assert read.contents[0].text == "v2"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["auto", "2026-07-28"])
async def test_a_listen_stream_gets_resources_updated(blob_box: BlobBox, mode: str) -> None:
    await put(blob_box, "alpha", "live.txt", b"v1", "text/plain")
    async with (
        connect(blob_box.url("alpha"), blob_box.keys["alpha"], mode) as client,
        client.listen(resource_subscriptions=["blob:live.txt"]) as sub,
    ):
        assert sub.honored is not None
        assert list(sub.honored.resource_subscriptions or []) == ["blob:live.txt"]
        events = aiter(sub)
        # A change through the module (a tool) is published like one through the store.
        wrote = await client.call_tool("write", {"name": "live.txt", "text": "v2"})
        assert not wrote.is_error
        event = await asyncio.wait_for(anext(events), 10)
        assert isinstance(event, ResourceUpdated)
        assert event.uri == "blob:live.txt"


@pytest.mark.parametrize("mode", MODES)
async def test_many_blobs_are_listed_in_pages(
    blob_box: BlobBox, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blob_resources, "PAGE_SIZE", 2)
    for index in range(5):
        await put(blob_box, "alpha", f"page/{index}", b"x", "text/plain")
    async with connect(blob_box.url("alpha"), blob_box.keys["alpha"], mode) as client:
        first = await client.list_resources()
        assert [str(r.uri) for r in first.resources] == ["blob:page/0", "blob:page/1"]
        assert first.next_cursor is not None
        uris: list[str] = []
        cursor: str | None = first.next_cursor
        while cursor is not None:
            page = await client.list_resources(cursor=cursor)
            uris += [str(r.uri) for r in page.resources]
            cursor = page.next_cursor
        assert uris == ["blob:page/2", "blob:page/3", "blob:page/4"]
        with pytest.raises(MCPError, match="Invalid cursor"):
            await client.list_resources(cursor="smcp-box/blobs:x")
