"""The keep-alive (header) deadline kept by a timer (web/keepalive.py) ends idle connections
both ways Hypercorn's own task does: at the deadline (tests/web/test_connections.py), and at
once when the server stops, over HTTP/1.1 and HTTP/2, rather than at the graceful timeout.

The server here is given a graceful timeout and a keep-alive deadline far longer than the
tests wait, so an idle connection that the stop did not end would hold the server past them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from hypercorn.config import Config

from smcp_box.web import connections, http1
from tests.support.serving import loopback_server

#: Longer than any wait below: a connection still open when it runs out was not closed by the stop.
LINGER_S = 60.0
#: How long a stop may take with only idle connections open.
STOP_WITHIN_S = 5.0


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


def _lingering(config: Config) -> None:
    config.graceful_timeout = LINGER_S
    config.keep_alive_timeout = LINGER_S


@asynccontextmanager
async def _server() -> AsyncIterator[tuple[int, asyncio.Event, asyncio.Task[None]]]:
    connections.install()
    http1.install()
    async with loopback_server(_hello, _lingering) as server:
        yield server.port, server.stop, server.task


async def test_an_idle_http1_connection_is_closed_at_once_when_the_server_stops() -> None:
    async with _server() as (port, stop, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: box\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STOP_WITHIN_S)
        assert head.startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(5) == b"hello"
        # Kept alive and idle, then the server stops.
        stop.set()
        await asyncio.wait_for(asyncio.shield(server), STOP_WITHIN_S)
        assert await asyncio.wait_for(reader.read(), STOP_WITHIN_S) == b""
        writer.close()


async def test_an_idle_http2_connection_is_closed_at_once_when_the_server_stops() -> None:
    client = httpx.AsyncClient(http1=False, http2=True, timeout=STOP_WITHIN_S)
    async with _server() as (port, stop, server), client:
        reply = await client.get(f"http://127.0.0.1:{port}/")
        assert reply.status_code == 200
        assert reply.http_version == "HTTP/2"
        stop.set()
        await asyncio.wait_for(asyncio.shield(server), STOP_WITHIN_S)


async def test_a_connection_that_never_sends_a_request_is_closed_when_the_server_stops() -> None:
    async with _server() as (port, stop, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: b")  # half a head: the deadline is still armed
        stop.set()
        await asyncio.wait_for(asyncio.shield(server), STOP_WITHIN_S)
        assert await asyncio.wait_for(reader.read(), STOP_WITHIN_S) == b""
        writer.close()
