"""Client helpers for end-to-end tests: the official SDK client, and raw MCP over httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

MODES = ["auto", "legacy", "2026-07-28"]
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
ACCEPT_BOTH = "application/json, text/event-stream"


@asynccontextmanager
async def connect(url: str, key: str, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    """The official SDK client on the box's endpoint, with a bearer key."""
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(15.0, read=30.0)
    )
    transport = streamable_http_client(url, http_client=http)
    async with http, Client(transport, mode=mode, **kwargs) as client:
        yield client


def modern_headers(key: str, method: str, name: str | None = None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": ACCEPT_BOTH,
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def modern_request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    meta = params.setdefault("_meta", {})
    meta.setdefault("io.modelcontextprotocol/protocolVersion", MODERN)
    meta.setdefault("io.modelcontextprotocol/clientInfo", {"name": "e2e", "version": "1"})
    meta.setdefault("io.modelcontextprotocol/clientCapabilities", {})
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


async def modern_call_tool(
    http: httpx.AsyncClient,
    url: str,
    key: str,
    tool: str,
    arguments: dict[str, Any],
    request_id: int = 1,
) -> dict[str, Any]:
    """One stateless 2026-07-28 tools/call; returns the JSON-RPC response object."""
    body = modern_request(request_id, "tools/call", {"name": tool, "arguments": arguments})
    response = await http.post(url, json=body, headers=modern_headers(key, "tools/call", tool))
    return parse_single_response(response)


def parse_single_response(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC response in a JSON body, or the last message of an SSE body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        messages = [json.loads(data) for _, data in sse_events_of(response.text)]
        responses = [m for m in messages if "result" in m or "error" in m]
        assert len(responses) == 1, messages
        return dict(responses[0])
    return dict(response.json())


def sse_events_of(text: str) -> list[tuple[str | None, str]]:
    """(id, data) of each event with data in a complete SSE body."""
    events: list[tuple[str | None, str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event_id: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data and any(data):
            events.append((event_id, "\n".join(data)))
    return events


def legacy_headers(key: str, session: str | None = None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": ACCEPT_BOTH,
        "MCP-Protocol-Version": LEGACY,
    }
    if session is not None:
        headers["Mcp-Session-Id"] = session
    return headers


async def legacy_session(http: httpx.AsyncClient, url: str, key: str) -> str:
    """Initialize a handshake-era session; returns its id."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "e2e", "version": "1"},
        },
    }
    response = await http.post(url, json=init, headers=legacy_headers(key))
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    done = await http.post(
        url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=legacy_headers(key, session),
    )
    assert done.status_code == 202
    return session
