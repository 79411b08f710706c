"""Helpers for talking to the MCP endpoint with raw httpx: headers, envelopes, SSE parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.web.conftest import ACCEPT_BOTH, ALPHA_TOKEN, BoxUnderTest

MODERN = "2026-07-28"
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPS = "io.modelcontextprotocol/clientCapabilities"
META_INFO = "io.modelcontextprotocol/clientInfo"
META_LOG = "io.modelcontextprotocol/logLevel"


def base_headers(token: str | None = ALPHA_TOKEN, **extra: str) -> dict[str, str]:
    headers = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(extra)
    return headers


def session_headers(
    session_id: str, version: str | None = "2025-11-25", **extra: str
) -> dict[str, str]:
    headers = base_headers(**{"Mcp-Session-Id": session_id})
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    headers.update(extra)
    return headers


def rpc(method: str, params: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def note(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def modern_meta(**overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        META_VERSION: MODERN,
        META_CAPS: {},
        META_INFO: {"name": "raw-test", "version": "0"},
    }
    meta.update(overrides)
    return meta


def modern(
    method: str,
    params: dict[str, Any] | None = None,
    request_id: Any = 1,
    *,
    name: str | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """A well-formed 2026-07-28 request: (headers, body)."""
    body_params = dict(params or {})
    body_params["_meta"] = meta if meta is not None else modern_meta()
    headers = base_headers(**{"MCP-Protocol-Version": MODERN, "Mcp-Method": method})
    if name is not None:
        headers["Mcp-Name"] = name
    return headers, rpc(method, body_params, request_id)


async def initialize(
    http: httpx.AsyncClient,
    box: BoxUnderTest,
    version: str = "2025-11-25",
    token: str = ALPHA_TOKEN,
) -> str:
    response = await http.post(
        box.url(),
        headers=base_headers(token),
        json=rpc(
            "initialize",
            {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        ),
    )
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    ack = await http.post(
        box.url(),
        headers=session_headers(session_id, version, Authorization=f"Bearer {token}"),
        json=note("notifications/initialized"),
    )
    assert ack.status_code == 202
    return session_id


@dataclass
class Event:
    id: str | None
    event: str | None
    data: str
    retry: int | None

    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: httpx.Response) -> AsyncIterator[Event]:
    """Parse an SSE body incrementally (comments are skipped, as clients must)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if fields or data:
                retry = fields.get("retry")
                yield Event(
                    id=fields.get("id"),
                    event=fields.get("event"),
                    data="\n".join(data),
                    retry=int(retry) if retry is not None else None,
                )
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


async def read_all_events(response: httpx.Response) -> list[Event]:
    return [event async for event in sse_events(response)]
