"""The lean ASGI path (web/mcp_asgi.py) answers the MCP endpoint's POSTs as Quart's routes do.

The same app is served twice: as the box serves it (POSTs take the lean path), and with only
Quart's own ASGI app behind the caps middleware (every POST through the Quart routes). Each
request below must get the same status, headers and body from both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from smcp_box.web.box_header import BoxHeaderMiddleware
from smcp_box.web.connections import StreamCapMiddleware
from smcp_box.web.mcp_asgi import LeanMcpPath, host_binds, mcp_tenant_of
from tests.support.serving import serve_on_loopback
from tests.web.conftest import ACCEPT_BOTH, ALPHA_TOKEN, BETA_TOKEN, BoxUnderTest
from tests.web.rawhttp import base_headers, modern, rpc
from tests.web.rawwire import assert_no_tracebacks

#: Headers that differ between any two replies, whichever path made them.
_VARYING = {"date"}


class _QuartOnly:
    """The box's app with the lean path taken out: box header and caps middleware, then Quart."""

    def __init__(self, app: Any) -> None:
        lean = app.asgi_app
        assert isinstance(lean, LeanMcpPath)
        named = lean.app
        assert isinstance(named, BoxHeaderMiddleware)
        assert isinstance(named.app, StreamCapMiddleware)
        self.asgi = named
        self.extensions = app.extensions

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)


@asynccontextmanager
async def quart_only(box: BoxUnderTest) -> AsyncIterator[str]:
    async with serve_on_loopback(_QuartOnly(box.app)) as base_url:
        yield base_url


def _cases() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(name, path, headers, body) of POSTs that exercise each way the endpoint answers."""
    call_headers, call = modern("tools/call", {"name": "echo", "arguments": {"text": "x"}})
    call_headers["Mcp-Name"] = "echo"
    list_headers, listing = modern("tools/list")
    rid = {"X-Request-Id": "lean-1"}
    return [
        ("tools/call", "/t/alpha/mcp", {**call_headers, **rid}, json.dumps(call).encode()),
        ("tools/list", "/t/alpha/mcp", {**list_headers, **rid}, json.dumps(listing).encode()),
        ("no credential", "/t/alpha/mcp", {**base_headers(None), **rid}, b"{}"),
        ("wrong tenant's key", "/t/alpha/mcp", {**base_headers(BETA_TOKEN), **rid}, b"{}"),
        ("unknown tenant", "/t/nobody/mcp", {**base_headers(), **rid}, b"{}"),
        ("disabled tenant", "/t/gamma/mcp", {**base_headers(), **rid}, b"{}"),
        ("no host-routed tenant", "/mcp", {**base_headers(), **rid}, b"{}"),
        ("bad Accept", "/t/alpha/mcp", {**base_headers(Accept="text/html"), **rid}, b"{}"),
        ("bad JSON", "/t/alpha/mcp", {**base_headers(), **rid}, b"{nope"),
        ("lone surrogate", "/t/alpha/mcp", {**base_headers(), **rid}, b'{"id": "\\ud800"}'),
        ("too large", "/t/alpha/mcp", {**base_headers(), **rid}, b" " * (70 * 1024)),
        (
            "legacy initialize",
            "/t/alpha/mcp",
            {**base_headers(), **rid},
            json.dumps(
                rpc(
                    "initialize",
                    {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "lean", "version": "0"},
                    },
                )
            ).encode(),
        ),
        ("bad Host", "/t/alpha/mcp", {**base_headers(), "Host": "a..b", **rid}, b"{}"),
    ]


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in _VARYING}
    if "mcp-session-id" in headers:
        headers["mcp-session-id"] = "(a new session)"
        headers.pop("content-length", None)
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return response.status_code, headers, body


async def test_the_lean_path_answers_as_the_quart_routes_do(box: BoxUnderTest) -> None:
    async with quart_only(box) as quart_url, httpx.AsyncClient(timeout=10) as http:
        for name, path, headers, body in _cases():
            lean = await http.post(f"{box.base_url}{path}", headers=headers, content=body)
            routed = await http.post(f"{quart_url}{path}", headers=headers, content=body)
            assert _comparable(lean) == _comparable(routed), name
            assert lean.headers["x-request-id"] == "lean-1", name
            assert lean.status_code != 500, name  # no case here is a bug


@pytest.mark.parametrize(
    ("path", "tenant"),
    [
        ("/t/alpha/mcp", "alpha"),
        ("/mcp", None),
        ("/t/a%20b/mcp", "a%20b"),
        ("/t//mcp", ""),
        ("/t/a/b/mcp", ""),
        ("/t/alpha/mcp/", ""),
        ("/healthz", ""),
        ("/t/alpha/mcpx", ""),
    ],
)
def test_the_lean_path_takes_exactly_the_routes_paths(path: str, tenant: str | None) -> None:
    assert mcp_tenant_of(path) == tenant


def test_a_host_quart_cannot_route_is_left_to_quart() -> None:
    assert host_binds("http", "box.example:8080")
    assert host_binds("http", None)
    assert not host_binds("http", "a..b")
    assert not host_binds("http", "x" * 64 + ".example")


async def test_a_client_leaving_mid_body_ends_its_request_quietly(
    box: BoxUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    port = int(box.base_url.rsplit(":", 1)[1])
    head = (
        "POST /t/alpha/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ALPHA_TOKEN}\r\nAccept: {ACCEPT_BOTH}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + b'{"jsonrpc": ')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # Its observation is finished (tenant known, no method: the body never came) ...
    await box.observer.changes.until(lambda: len(box.observer.observations) == 1)
    assert box.observer.observations[0][:2] == ("alpha", "none")
    # ... nothing was called, and the next request is served as usual.
    assert box.alpha.calls == []
    async with httpx.AsyncClient(timeout=10) as http:
        headers, body = modern("tools/list")
        assert (await http.post(box.url(), headers=headers, json=body)).status_code == 200
    assert_no_tracebacks(caplog.records)
