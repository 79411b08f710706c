"""The official MCP SDK client against the box, in all three of its connection modes."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.web.conftest import ALPHA_TOKEN, BoxUnderTest, sdk_http_client

MODES = ["auto", "legacy", "2026-07-28"]


@asynccontextmanager
async def connect(box: BoxUnderTest, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    async with sdk_http_client(kwargs.pop("token", ALPHA_TOKEN)) as http:
        transport = streamable_http_client(box.url(kwargs.pop("tenant", "alpha")), http_client=http)
        async with Client(transport, mode=mode, **kwargs) as client:
            yield client


@pytest.mark.parametrize("mode", MODES)
async def test_connect_list_and_call(box: BoxUnderTest, mode: str) -> None:
    async with connect(box, mode) as client:
        expected_version = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected_version
        if mode == "2026-07-28":
            # A pinned client skips the probe and synthesizes its discover result; ask the box.
            raw = await client.session.send_discover("2026-07-28")
            assert raw["supportedVersions"] == ["2026-07-28"]
            assert raw["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "alpha-echo"
            assert raw["instructions"] == "Tenant alpha: an echo server for tests."
            assert raw["capabilities"]["logging"] == {}
        else:
            assert client.server_info is not None
            assert client.server_info.name == "alpha-echo"
            assert client.instructions == "Tenant alpha: an echo server for tests."
            assert client.server_capabilities.tools is not None
            assert client.server_capabilities.logging is not None  # the box provides logging

        tools = await client.list_tools()
        assert [t.name for t in tools.tools][:2] == ["echo", "progress"]
        result = await client.call_tool("echo", {"text": "hello"})
        assert result.content[0].text == "hello"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_progress_notifications_reach_the_callback(box: BoxUnderTest, mode: str) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with connect(box, mode) as client:
        result = await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
    assert result.content[0].text == "3 steps"  # type: ignore[union-attr]
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_legacy_logging_follows_set_level(box: BoxUnderTest) -> None:
    levels: list[str] = []

    async def on_log(params: Any) -> None:
        levels.append(params.level)

    async with connect(box, "legacy", logging_callback=on_log) as client:
        await client.call_tool("log", {})
        assert levels == ["debug", "info", "notice", "warning", "error"]
        levels.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.set_logging_level("warning")
        await client.call_tool("log", {})
        assert levels == ["warning", "error"]


@pytest.mark.parametrize(
    ("log_level", "expected"), [(None, []), ("notice", ["notice", "warning", "error"])]
)
async def test_modern_logging_is_per_request_opt_in(
    box: BoxUnderTest, log_level: str | None, expected: list[str]
) -> None:
    levels: list[str] = []

    async def on_log(params: Any) -> None:
        levels.append(params.level)

    async with connect(box, "2026-07-28", logging_callback=on_log, log_level=log_level) as client:
        await client.call_tool("log", {})
    assert levels == expected


def holding(box: BoxUnderTest) -> bool:
    """Whether the module has started the ``hold`` call (other requests may precede it)."""
    return any((m.get("params") or {}).get("name") == "hold" for m, _ in box.alpha.calls)


@pytest.mark.parametrize("mode", MODES)
async def test_sandbox_error_becomes_jsonrpc_error(box: BoxUnderTest, mode: str) -> None:
    async with connect(box, mode) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("fuel", {})
        assert caught.value.code == -32051
        assert "Fuel exhausted" in caught.value.error.message
        # The session (legacy) or the endpoint (modern) still works afterwards.
        result = await client.call_tool("echo", {"text": "still here"})
        assert result.content[0].text == "still here"  # type: ignore[union-attr]


async def test_legacy_ping_and_session_end_on_exit(box: BoxUnderTest) -> None:
    async with connect(box, "legacy") as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.send_ping()
        session_id = box.session_ids[-1]
        assert not (await box.session(session_id)).ended
    # Leaving the client sends DELETE, which ends the session.
    assert (await box.session(session_id)).ended


async def test_legacy_cancellation_stops_the_call(box: BoxUnderTest) -> None:
    async with connect(box, "legacy") as client:
        call = asyncio.create_task(client.call_tool("hold", {}))
        await box.alpha.changes.until(lambda: holding(box))
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await box.alpha.changes.until(lambda: bool(box.alpha.cancelled))
        assert len(box.alpha.cancelled) == 1
        result = await client.call_tool("echo", {"text": "after"})
        assert result.content[0].text == "after"  # type: ignore[union-attr]


async def test_modern_cancellation_closes_the_stream(box: BoxUnderTest) -> None:
    async with connect(box, "2026-07-28") as client:
        call = asyncio.create_task(client.call_tool("hold", {}))
        await box.alpha.changes.until(lambda: holding(box))
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await box.alpha.changes.until(lambda: bool(box.alpha.cancelled))
        assert len(box.alpha.cancelled) == 1
