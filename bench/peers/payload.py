"""The one echo exchange every peer serves, so that all peers move the same bytes.

The tool is ``echo``: ``{"text": s}`` in, one text content item holding ``s`` out. ``TEXT`` is
sized so that a whole tools/call request body is about 300 bytes and the reply a little less:
a small, realistic tool call, not an empty one.
"""

from __future__ import annotations

import json
from typing import Any

TOOL = "echo"
TEXT = "the quick brown fox jumps over the lazy dog; " * 3
MODERN_VERSION = "2026-07-28"
LEGACY_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"

_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "smcp-bench", "version": "1"},
}

ECHO_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


def call_body(era: str, request_id: int = 1, text: str = TEXT) -> bytes:
    """The JSON-RPC tools/call request for ``era`` ("modern" or "legacy")."""
    params: dict[str, Any] = {"name": TOOL, "arguments": {"text": text}}
    if era == "modern":
        params["_meta"] = _META
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params},
        separators=(",", ":"),
    ).encode()


def call_headers(era: str, session_id: str | None = None, key: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": ACCEPT}
    if era == "modern":
        headers.update(
            {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": "tools/call", "Mcp-Name": TOOL}
        )
    else:
        headers["MCP-Protocol-Version"] = LEGACY_VERSION
        if session_id:
            headers["Mcp-Session-Id"] = session_id
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def initialize_body(request_id: int = 0) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": {
                "protocolVersion": LEGACY_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "smcp-bench", "version": "1"},
            },
        },
        separators=(",", ":"),
    ).encode()


INITIALIZED_BODY = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def echo_result(request_id: Any, text: str) -> dict[str, Any]:
    """The reply the floor peer sends: what an MCP server answers to the echo call."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"content": [{"type": "text", "text": text}], "isError": False},
    }
