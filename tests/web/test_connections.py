"""Per-address caps and read deadlines, through a real Hypercorn on loopback: connections past
the cap are answered 429 at accept, SSE streams past theirs 429, a half-sent head and an idle
connection are closed at the header deadline, a slow body gets 408 and a close; each is counted
by kind for /metrics. Small limits are injected through the settings.

Loopback is all of 127.0.0.0/8, so a client bound to 127.0.0.2 is another address."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from smcp_box.metrics import BoxFigures
from smcp_box.web.connections import (
    BODY_TIMEOUT,
    CONNECTIONS_PER_ADDRESS,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    SSE_STREAMS_PER_ADDRESS,
    ConnectionGuard,
)
from smcp_box.web.metrics_endpoint import render
from tests.support.waiting import wait_until
from tests.web.conftest import ALPHA_TOKEN, BoxUnderTest, TransportSettings, run_box
from tests.web.rawhttp import initialize, session_headers

OTHER_ADDRESS = "127.0.0.2"
#: Bounds how long a test waits for something the box must do by a deadline of well under it.
PATIENCE_S = 10.0
#: Hypercorn closes idle connections after 5 s by default; a close before that (of a connection
#: given an injected 0.4 s) shows the setting at work.
BEFORE_HYPERCORN_DEFAULT_S = 4.0


@pytest.fixture
async def capped() -> AsyncIterator[BoxUnderTest]:
    settings = TransportSettings(
        max_connections_per_address=3,
        max_sse_streams_per_address=1,
        header_timeout_s=0.4,
        body_timeout_s=0.4,
        sse_keepalive_s=0.5,
    )
    async for box in run_box(settings):
        # The fixture's readiness probe has closed its connection; the box must have noticed.
        await wait_until(no_connections(guard_of(box)), what="probe released")
        yield box


def no_connections(guard: ConnectionGuard) -> Callable[[], bool]:
    return lambda: guard.open_connections == 0


def guard_of(box: BoxUnderTest) -> ConnectionGuard:
    assert box.connections is not None
    return box.connections


class Raw:
    """One raw HTTP/1.1 connection (the caps act below any HTTP client's pool)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base_url: str, source: str | None = None) -> Raw:
        host, port = base_url.removeprefix("http://").split(":")
        local = (source, 0) if source else None
        reader, writer = await asyncio.open_connection(host, int(port), local_addr=local)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: box\r\n\r\n".encode())
        return await self.response()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(PATIENCE_S):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            fields = {}
            for line in lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    fields[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(fields.get("content-length", "0")))
        return int(status_line.split(" ", 2)[1]), fields, body

    async def closed_by_server(self, within: float = PATIENCE_S) -> bytes:
        """Everything the server sends until it closes (fails after ``within`` seconds)."""
        async with asyncio.timeout(within):
            return await self.reader.read()

    def close(self) -> None:
        self.writer.close()


async def test_connections_past_the_per_address_cap_are_refused_with_429(
    capped: BoxUnderTest,
) -> None:
    held = [await Raw.open(capped.base_url) for _ in range(3)]
    for connection in held:
        status, _, _ = await connection.get("/healthz")
        assert status == 200
    refused = await Raw.open(capped.base_url)
    status, fields, body = await refused.get("/healthz")
    assert status == 429
    assert fields["retry-after"] == "1"
    assert b"Too many connections from this address (the box allows 3)" in body
    assert await refused.closed_by_server() == b""
    refused.close()
    assert guard_of(capped).dropped[CONNECTIONS_PER_ADDRESS] == 1

    # Another address has its own allowance.
    other = await Raw.open(capped.base_url, OTHER_ADDRESS)
    assert (await other.get("/healthz"))[0] == 200
    other.close()

    # Closing one frees its place.
    held.pop().close()
    await wait_until(lambda: guard_of(capped).open_connections <= 2, what="connection released")
    again = await Raw.open(capped.base_url)
    assert (await again.get("/healthz"))[0] == 200
    for connection in [*held, again]:
        connection.close()


async def test_sse_streams_past_the_per_address_cap_are_refused_with_429(
    capped: BoxUnderTest,
) -> None:
    async with httpx.AsyncClient(timeout=PATIENCE_S) as http:
        one, two = await initialize(http, capped), await initialize(http, capped)
        async with http.stream("GET", capped.url(), headers=session_headers(one)) as stream:
            assert stream.status_code == 200
            await wait_until(lambda: guard_of(capped).open_streams == 1, what="stream counted")
            refused = await http.get(capped.url(), headers=session_headers(two))
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert "Too many open event streams from this address" in refused.text
            assert guard_of(capped).dropped[SSE_STREAMS_PER_ADDRESS] == 1
            elsewhere = httpx.AsyncHTTPTransport(local_address=OTHER_ADDRESS)
            async with (
                httpx.AsyncClient(timeout=PATIENCE_S, transport=elsewhere) as other,
                other.stream("GET", capped.url(), headers=session_headers(two)) as second,
            ):
                assert second.status_code == 200
        await wait_until(lambda: guard_of(capped).open_streams == 0, what="streams released")
        # The place is free again once the stream has ended.
        async with http.stream("GET", capped.url(), headers=session_headers(two)) as stream:
            assert stream.status_code == 200


async def test_a_half_sent_head_is_closed_at_the_header_deadline(capped: BoxUnderTest) -> None:
    slow = await Raw.open(capped.base_url)
    slow.writer.write(b"GET /healthz HTTP/1.1\r\nHost: box\r\nX-Slow: ")
    # Closed without an answer, and sooner than Hypercorn's own 5 s: the injected deadline.
    assert await slow.closed_by_server(within=BEFORE_HYPERCORN_DEFAULT_S) == b""
    await wait_until(
        lambda: guard_of(capped).dropped[HEADER_TIMEOUT] == 1, what="header deadline counted"
    )
    await wait_until(lambda: guard_of(capped).open_connections == 0, what="connection released")
    slow.close()


async def test_an_idle_connection_is_closed_at_the_header_deadline(capped: BoxUnderTest) -> None:
    idle = await Raw.open(capped.base_url)
    assert await idle.closed_by_server(within=BEFORE_HYPERCORN_DEFAULT_S) == b""
    await wait_until(lambda: guard_of(capped).dropped[IDLE_TIMEOUT] >= 1, what="idle counted")
    assert guard_of(capped).dropped[HEADER_TIMEOUT] == 0
    idle.close()


async def test_a_slow_body_gets_408_and_the_connection_is_closed(capped: BoxUnderTest) -> None:
    slow = await Raw.open(capped.base_url)
    slow.writer.write(
        (
            f"POST /t/alpha/mcp HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {ALPHA_TOKEN}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            'Content-Length: 100\r\n\r\n{"jsonrpc":'
        ).encode()
    )
    status, _, body = await slow.response()
    assert status == 408
    assert b"did not arrive within 0.4 seconds" in body
    assert await slow.closed_by_server() == b""
    assert guard_of(capped).dropped[BODY_TIMEOUT] == 1
    slow.close()


async def test_drops_are_rendered_by_kind_in_metrics() -> None:
    guard = ConnectionGuard(TransportSettings(max_connections_per_address=1))
    assert guard.open_connection("192.0.2.1")
    assert not guard.open_connection("192.0.2.1")
    figures = BoxFigures(
        started_at=0.0,
        tenants_failed=0,
        ticker_alive=True,
        cache={},
        audit={"rows_written": 0, "rows_dropped": 0, "pending": 0},
        connections=guard.figures(),
    )
    text = await render(figures, [], "text/plain").get_data(as_text=True)
    assert 'smcp_box_connections_dropped_total{kind="connections_per_address"} 1.0' in text
    assert 'smcp_box_connections_dropped_total{kind="header_timeout"} 0.0' in text
    assert "smcp_box_connections_open 1.0" in text


def test_trusted_proxies_are_not_capped_and_reloads_change_the_caps() -> None:
    guard = ConnectionGuard(
        TransportSettings(max_connections_per_address=1, trusted_proxies=("10.0.0.0/8",))
    )
    assert all(guard.open_connection("10.1.2.3") for _ in range(5))
    assert guard.open_connection("192.0.2.1")
    assert not guard.open_connection("192.0.2.1")
    guard.update_settings(TransportSettings(max_connections_per_address=2))
    assert guard.open_connection("192.0.2.1")
    guard.close_connection("192.0.2.1")
    guard.close_connection("192.0.2.1")
    assert guard.open_connections == 0, "proxies are not counted; the address is forgotten"


@pytest.fixture
async def uncapped() -> AsyncIterator[BoxUnderTest]:
    async for box in run_box(TransportSettings()):
        yield box


async def test_a_reply_leaves_in_one_write(
    uncapped: BoxUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Head and body of a reply go out in one write: fewer system calls, and a box killed
    mid-reply sent all of it or none (so a load balancer may retry it elsewhere)."""
    box = uncapped
    port = int(box.base_url.rsplit(":", 1)[1])
    server_writes: list[bytes] = []
    original = asyncio.StreamWriter.write

    def recording(writer: asyncio.StreamWriter, data: bytes | bytearray | memoryview) -> None:
        sockname = writer.get_extra_info("sockname")
        if isinstance(sockname, tuple) and sockname[1] == port:
            server_writes.append(bytes(data))
        original(writer, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", recording)
    raw = await Raw.open(box.base_url)
    try:
        body = (
            b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":'
            b'"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'
        )
        raw.writer.write(
            b"POST /t/alpha/mcp HTTP/1.1\r\nHost: box\r\n"
            + f"Authorization: Bearer {ALPHA_TOKEN}\r\n".encode()
            + b"Content-Type: application/json\r\nAccept: application/json, text/event-stream"
            + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status, _, reply = await raw.response()
    finally:
        raw.close()
    assert status == 200
    assert b'"protocolVersion"' in reply
    replies = [data for data in server_writes if data.startswith(b"HTTP/1.1 ")]
    assert len(replies) == 1
    assert replies[0].endswith(reply)  # the whole body rode with the head


async def test_a_refused_client_gone_before_the_429_leaves_no_traceback(
    capped: BoxUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: a client past the cap that has closed its end by the time the box answers
    (a load generator ending its connections) made the 429's write draw a reset and the
    ``write_eof`` after it raise ENOTCONN out of the connection callback, which asyncio logged
    as an unhandled exception with a traceback. The refusal is counted and nothing is logged."""
    held = [await Raw.open(capped.base_url) for _ in range(3)]
    for connection in held:
        assert (await connection.get("/healthz"))[0] == 200
    host, port = capped.base_url.removeprefix("http://").split(":")
    # Connected and closed before the box's loop runs again: the box accepts a connection
    # whose client is already gone.
    gone = socket.create_connection((host, int(port)))
    gone.close()
    await wait_until(
        lambda: guard_of(capped).dropped[CONNECTIONS_PER_ADDRESS] == 1, what="the refusal"
    )
    await wait_until(
        lambda: guard_of(capped).open_connections == 3, what="the refused connection closed"
    )
    unhandled = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert unhandled == [], [r.getMessage() for r in unhandled]
    for connection in held:
        connection.close()


async def test_a_request_in_progress_outlives_the_header_deadline(capped: BoxUnderTest) -> None:
    # The deadline counts idle time only: an SSE stream open for several deadlines (its
    # keep-alive comments come every 0.5 s, the deadline is 0.4 s) is not cut, and the
    # connection is closed at the deadline only once the stream has ended.
    async with httpx.AsyncClient(timeout=PATIENCE_S) as http:
        session = await initialize(http, capped)
        async with http.stream("GET", capped.url(), headers=session_headers(session)) as stream:
            assert stream.status_code == 200
            comments = 0
            async for line in stream.aiter_lines():
                comments += line.startswith(":")
                if comments == 3:
                    break
    assert guard_of(capped).dropped[HEADER_TIMEOUT] == 0
    await wait_until(no_connections(guard_of(capped)), what="connections closed after")
