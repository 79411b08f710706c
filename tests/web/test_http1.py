"""The HTTP/1.1 protocol on llhttp (smcp_box/web/http1.py) under a real Hypercorn on loopback.

A small ASGI app stands in for the box so that every reply shape (fixed length, streamed,
HEAD, 204, early answers, bad headers) can be asked for; replies are read back with h11 as the
client, an independent HTTP/1.1 implementation, so framing mistakes show as parse errors.
The box itself is served by the same protocol in every other web and end-to-end test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import h11
import pytest
from hypercorn.config import Config
from hypercorn.protocol.h11 import H2ProtocolAssumedError

from smcp_box.web import http1
from smcp_box.web.http1 import Http1Protocol
from tests.support.serving import serve_on_loopback

READ_DEADLINE_S = 10.0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Replies chosen by path; the request body is read unless the path says otherwise."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    body = b""
    if path != "/early":
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/broken"):
        # A reply the app cannot finish (a stream that fails mid-way).
        declared = [(b"content-length", b"10")] if path == "/broken-length" else []
        await send({"type": "http.response.start", "status": 200, "headers": declared})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        raise RuntimeError("the app failed mid-reply")
    if path == "/early":
        text = b"too large"
        status = 413
    elif path == "/empty":
        text, status = b"", 204
    elif path == "/split":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-bad", b"a\r\nset-cookie: stolen=1")],
            }
        )
        return
    elif path == "/close":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"2"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})
        return
    else:
        text = f"{scope['method']} {path} {len(body)} {scope['http_version']}".encode()
        status = 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(text)).encode())] if text else [],
        }
    )
    await send({"type": "http.response.body", "body": text})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    http1.install()
    async with serve_on_loopback(app) as base_url:
        yield int(base_url.rsplit(":", 1)[1])


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class Wire:
    """One raw connection; replies are parsed by an h11 client told what was asked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.client = h11.Connection(h11.CLIENT)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, method: bytes = b"GET") -> Reply:
        """The next reply, to a request with ``method`` (h11 frames a HEAD reply differently)."""
        if self.client.our_state is h11.DONE:
            self.client.start_next_cycle()
        self.client.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
        self.client.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = self.client.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(self.reader.read(65536), READ_DEADLINE_S)
                self.client.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return Reply(status, headers, body)
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def closed(self) -> bool:
        """Whether the server ends the connection (after what it has already sent)."""
        rest = await asyncio.wait_for(self.reader.read(), READ_DEADLINE_S)
        return rest == b"" or self.client.their_state is h11.MUST_CLOSE

    async def raw(self) -> bytes:
        return await asyncio.wait_for(self.reader.read(), READ_DEADLINE_S)


@pytest.fixture
async def wire(port: int) -> AsyncIterator[Wire]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield Wire(reader, writer)
    finally:
        writer.close()


def get(path: str = "/", *extra: bytes, version: bytes = b"1.1") -> bytes:
    lines = [b"GET " + path.encode() + b" HTTP/" + version, b"Host: x", *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def post(path: str, body: bytes, *extra: bytes) -> bytes:
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: x", *extra]
    head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def test_keep_alive_serves_requests_one_after_another(wire: Wire) -> None:
    for n in range(3):
        await wire.send(post("/echo", b"x" * n))
        reply = await wire.reply(b"POST")
        assert (reply.status, reply.body) == (200, b"POST /echo %d 1.1" % n)
        assert b"connection" not in reply.headers
        assert reply.headers[b"content-length"] == str(len(reply.body)).encode()


@pytest.mark.parametrize(
    ("path", "framing"),
    [("/echo", b"content-length:"), ("/stream", b"transfer-encoding:"), ("/close", b"connection:")],
)
async def test_each_framing_header_is_written_once(wire: Wire, path: str, framing: bytes) -> None:
    # h11 (the test's client) merges identical duplicates; other clients (wrk) refuse them.
    await wire.send(get(path, b"Connection: close"))
    head = (await wire.raw()).partition(b"\r\n\r\n")[0]
    assert head.lower().count(b"\r\n" + framing) == 1, head


@pytest.mark.parametrize("path", ["/broken", "/broken-length"])
async def test_a_reply_the_app_did_not_finish_ends_the_connection(wire: Wire, path: str) -> None:
    # Kept open, the client would wait for the rest of the body (and the request pipelined
    # behind it would get a reply the client would read as part of the first).
    await wire.send(get(path) + get("/next"))
    raw = await wire.raw()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body in (b"3\r\nabc\r\n", b"abc")  # no end of chunks, or 3 of 10 bytes


async def test_pipelined_requests_are_answered_in_order(wire: Wire) -> None:
    await wire.send(get("/a") + post("/b", b"12345") + get("/c"))
    assert (await wire.reply()).body == b"GET /a 0 1.1"
    assert (await wire.reply(b"POST")).body == b"POST /b 5 1.1"
    assert (await wire.reply()).body == b"GET /c 0 1.1"


async def test_a_body_split_across_writes_and_chunked_bodies_are_read_whole(wire: Wire) -> None:
    request = post("/echo", b"abcdefghij")
    await wire.send(request[:-7])
    await wire.send(request[-7:])
    assert (await wire.reply(b"POST")).body == b"POST /echo 10 1.1"
    chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    await wire.send(chunked + b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert (await wire.reply(b"POST")).body == b"POST /echo 7 1.1"


async def test_a_streamed_reply_is_chunked(wire: Wire) -> None:
    await wire.send(get("/stream"))
    reply = await wire.reply()
    assert reply.headers[b"transfer-encoding"] == b"chunked"
    assert reply.body == b"one,two,three"
    await wire.send(get("/after"))
    assert (await wire.reply()).body == b"GET /after 0 1.1"


async def test_http_1_0_gets_a_reply_delimited_by_close(wire: Wire) -> None:
    await wire.send(get("/stream", version=b"1.0"))
    raw = await wire.raw()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"one,two,three"


async def test_head_and_204_replies_have_no_body(wire: Wire) -> None:
    await wire.send(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = await wire.reply(b"HEAD")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers[b"content-length"] == b"13"  # "HEAD /x 0 1.1"
    await wire.send(get("/empty"))
    assert (await wire.reply()).status == 204
    await wire.send(get("/next"))
    assert (await wire.reply()).body == b"GET /next 0 1.1"


async def test_expect_100_continue_is_answered_before_the_body(wire: Wire) -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    await wire.send(head)
    interim = await asyncio.wait_for(wire.reader.readuntil(b"\r\n\r\n"), READ_DEADLINE_S)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    await wire.send(b"abcd")
    wire.client.receive_data(interim)
    assert (await wire.reply(b"POST")).body == b"POST /echo 4 1.1"


async def test_connection_close_from_client_or_app_ends_the_connection(port: int) -> None:
    for request in (get("/a", b"Connection: close"), get("/close")):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            wire = Wire(reader, writer)
            await wire.send(request)
            reply = await wire.reply()
            assert reply.status == 200
            assert reply.headers[b"connection"] == b"close"
            assert await wire.closed()
        finally:
            writer.close()


async def test_an_early_answer_closes_the_connection_with_the_body_unread(wire: Wire) -> None:
    await wire.send(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
    reply = await wire.reply(b"POST")
    assert reply.status == 413
    assert reply.headers[b"connection"] == b"close"
    assert await wire.closed()


SMUGGLING_AND_MALFORMED = {
    "length and chunked together": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\nab",
    "a transfer coding other than chunked": b"POST / HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: gzip\r\n\r\nabc",
    "obsolete line folding": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "bare LF line ends": b"GET / HTTP/1.1\nHost: x\n\n",
    "a control character in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "space before the colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
    "a non-ASCII target": b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "no Host in HTTP/1.1": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two Hosts": b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "HTTP/1.2": b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    "HTTP/2.0 as a request line": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "an unknown method": b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
}


@pytest.mark.parametrize("data", SMUGGLING_AND_MALFORMED.values(), ids=SMUGGLING_AND_MALFORMED)
async def test_malformed_or_ambiguous_requests_are_refused_and_closed(
    wire: Wire, data: bytes
) -> None:
    await wire.send(data)
    raw = await wire.raw()
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close" in raw
    assert raw.endswith(b"\r\n\r\n")  # an empty body, and nothing after it: closed


async def test_refused_input_after_a_good_request_lets_that_request_finish(wire: Wire) -> None:
    # The refusal is parsed while the first request runs: its reply says the connection ends
    # (a reply after "connection: close" would be a protocol error), and it does.
    await wire.send(get("/first") + b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
    reply = await wire.reply()
    assert (reply.status, reply.body) == (200, b"GET /first 0 1.1")
    assert reply.headers[b"connection"] == b"close"
    assert await wire.raw() == b""


@pytest.mark.parametrize("piece", [65536, 1024], ids=["at once", "a kilobyte at a time"])
async def test_an_oversized_head_is_431(wire: Wire, piece: int) -> None:
    limit = Config().h11_max_incomplete_size
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (limit + 100) + b"\r\n\r\n"
    for start in range(0, len(head), piece):
        await wire.send(head[start : start + piece])
    raw = await wire.raw()
    assert raw.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_one_endless_header_is_refused_without_being_buffered() -> None:
    # llhttp buffers a header's pieces until its end: the protocol bounds them itself, by the
    # bytes that keep arriving after the read the head began in.
    protocol = _bare_protocol()
    limit = Config().h11_max_incomplete_size
    protocol._feed(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
    pieces = 0
    while not protocol._events:
        protocol._feed(b"a" * 1024)
        pieces += 1
        assert pieces <= limit // 1024 + 1, "never refused"
    assert list(protocol._events) == [(http1._ERROR, 431)]
    assert pieces == limit // 1024 + 1


async def test_a_reply_header_that_would_split_the_reply_is_never_written(wire: Wire) -> None:
    await wire.send(get("/split"))
    raw = await wire.raw()
    assert b"stolen" not in raw
    assert raw.startswith(b"HTTP/1.1 500 ")


def test_head_pending_tells_a_partial_head_from_an_idle_connection() -> None:
    protocol = _bare_protocol()
    assert not protocol.head_pending()
    protocol._feed(b"GET / HTT")
    assert protocol.head_pending()
    protocol._feed(b"P/1.1\r\nHost: x\r\n\r\n")
    assert not protocol.head_pending()


def _bare_protocol() -> Http1Protocol:
    class Context:
        event_class = asyncio.Event

    async def send(event: object) -> None:
        raise AssertionError("nothing is sent by parsing alone")

    return Http1Protocol(
        None,  # type: ignore[arg-type]
        Config(),
        Context(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        False,
        None,
        None,
        send,
    )


def test_the_http2_preface_switches_even_when_split_across_reads() -> None:
    protocol = _bare_protocol()
    assert protocol._sniff(b"PR") == b""
    assert protocol.head_pending()
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    with pytest.raises(H2ProtocolAssumedError) as switched:
        protocol._sniff(preface[2:])
    assert switched.value.data == preface


def test_http1_after_a_first_read_shorter_than_the_preface_is_parsed() -> None:
    protocol = _bare_protocol()
    assert protocol._sniff(b"P") == b""
    assert protocol._sniff(b"OST / HTTP/1.1\r\n") == b"POST / HTTP/1.1\r\n"
    assert protocol._sniffed is None  # sniffing ends with the first verdict


async def test_upgrade_to_h2c_answers_the_request_over_http2(wire: Wire) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    await wire.send(
        b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    switched = await asyncio.wait_for(wire.reader.readuntil(b"\r\n\r\n"), READ_DEADLINE_S)
    assert switched.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"upgrade: h2c" in switched
    await wire.send(client.data_to_send())
    body, status = b"", None
    while True:
        data = await asyncio.wait_for(wire.reader.read(65536), READ_DEADLINE_S)
        assert data, "closed before the reply ended"
        events = client.receive_data(data)
        await wire.send(client.data_to_send())
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[b":status"]
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
            elif isinstance(event, h2.events.StreamEnded):
                assert (status, body) == (b"200", b"GET /up 0 2")
                return


async def test_an_upgrade_to_anything_else_is_answered_and_closed(wire: Wire) -> None:
    await wire.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    reply = await wire.reply()
    assert (reply.status, reply.body) == (200, b"GET /ws 0 1.1")
    assert reply.headers[b"connection"] == b"close"
    assert await wire.closed()
