"""HTTP/2 cleartext (h2c) cases for ``bench/fuzz_http.py``: prior-knowledge connections carrying
the same odd MCP requests as HTTP/1, streams reset in the middle of a body, header oddities the
h2 library would normally refuse to send, raw frames no client should send, and the HTTP/1.1
``Upgrade: h2c`` path.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from bench.fuzz_cases import Request, mcp_request

IDLE_S = 2.0


@dataclass
class StreamReply:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False


@dataclass
class H2Outcome:
    kind: str
    replies: list[StreamReply]
    #: How the connection ended, if it did (GOAWAY error code, or a client-side error).
    ended: str | None = None


def _config() -> h2.config.H2Configuration:
    # The client sends what the fuzzer says, however wrong, and reads whatever comes back.
    return h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=False,
    )


def _h2_headers(request: Request, port: int, rng: random.Random) -> list[tuple[bytes, bytes]]:
    authority = f"127.0.0.1:{port}".encode()
    rest: list[tuple[bytes, bytes]] = []
    for name, value in request.headers:
        if name.lower() == b"host":
            authority = value
        else:
            rest.append((name.lower(), value))
    if rest and rng.random() < 0.03:
        rest[0] = (rest[0][0].title(), rest[0][1])  # uppercase: malformed in HTTP/2
    pseudo = [
        (b":method", request.method.encode()),
        (b":scheme", b"http"),
        (b":authority", authority),
        (b":path", request.path.encode("utf-8")),
    ]
    roll = rng.random()
    if roll < 0.04:
        pseudo = [item for item in pseudo if item[0] != b":authority"]
    elif roll < 0.07:
        pseudo.append((b":authority", b"other.host"))
    elif roll < 0.09:
        pseudo = pseudo[1:]  # no :method
    elif roll < 0.11:
        rest.insert(0, pseudo.pop())  # a pseudo-header after regular ones
        rest.reverse()
    elif roll < 0.13:
        rest.append((b"connection", b"keep-alive"))
    elif roll < 0.15:
        rest.append((b"te", b"gzip"))
    elif roll < 0.17:
        pseudo[3] = (b":path", rng.choice((b"", b"*", b"no-slash")))
    elif roll < 0.19:
        rest.append((b"content-length", str(len(request.body) + 5).encode()))
    elif roll < 0.21:
        rest.append((b":bogus", b"1"))
    return pseudo + rest


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(config=_config())
        self.replies: dict[int, StreamReply] = {}
        self.ended: str | None = None

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def write_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def pump(self, idle_s: float = IDLE_S) -> bool:
        """Read once; False when the connection ended or went quiet."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), idle_s)
        except (TimeoutError, ConnectionError):
            return False
        if not data:
            self.ended = self.ended or "eof"
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.H2Error as exc:
            self.ended = f"client:{type(exc).__name__}"
            return False
        for event in events:
            self._on(event)
        await self.flush()
        return self.ended is None

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            reply = self.replies.setdefault(event.stream_id, StreamReply())
            for name, value in event.headers:
                key = bytes(name).decode("latin-1")
                reply.headers[key] = bytes(value).decode("latin-1")
            status = reply.headers.get(":status", "0")
            reply.status = int(status) if status.isdigit() else None
        elif isinstance(event, h2.events.DataReceived):
            self.replies.setdefault(event.stream_id, StreamReply()).body.extend(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
            self.replies.setdefault(event.stream_id, StreamReply()).done = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.ended = f"goaway:{event.error_code!s}"

    async def send_body(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        """Send ``body`` within flow control (waiting for window updates as needed)."""
        sent = 0
        while sent < len(body):
            try:
                window = self.conn.local_flow_control_window(stream_id)
            except h2.exceptions.H2Error:
                return
            chunk = min(window, self.conn.max_outbound_frame_size, len(body) - sent)
            if chunk <= 0:
                if not await self.pump():
                    return
                continue
            try:
                self.conn.send_data(stream_id, body[sent : sent + chunk])
            except h2.exceptions.H2Error:
                return
            sent += chunk
            await self.flush()
        if end:
            try:
                self.conn.end_stream(stream_id)
            except h2.exceptions.H2Error:
                return
            await self.flush()

    async def request(self, request: Request, port: int, rng: random.Random) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.replies[stream_id] = StreamReply()
        headers = _h2_headers(request, port, rng)
        self.conn.send_headers(stream_id, headers, end_stream=not request.body)
        await self.flush()
        if request.body:
            await self.send_body(stream_id, request.body)
        return stream_id

    async def settle(self) -> None:
        """Read until every stream is answered, the connection ends, or it goes quiet."""
        while self.ended is None and not all(r.done for r in self.replies.values()):
            if not await self.pump():
                return


def _raw_frame(rng: random.Random) -> Frame:
    """A frame a well-behaved client never sends."""
    choice = rng.randrange(11)
    if choice == 0:
        window = WindowUpdateFrame(0)
        window.stream_id = rng.choice((0, 1))
        window.window_increment = 0
        return window
    if choice == 1:
        priority = PriorityFrame(1)
        priority.depends_on = 1
        return priority
    if choice == 2:
        data = DataFrame(1)
        data.stream_id = rng.choice((0, 99, 2))
        data.data = b"x" * 10
        return data
    if choice == 3:
        settings = SettingsFrame(0)
        settings.settings = {
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: rng.choice((0, 2**24)),
        }
        return settings
    if choice == 4:
        continuation = ContinuationFrame(1)
        continuation.data = b"\x82"
        return continuation
    if choice == 5:
        headers = HeadersFrame(2)
        headers.data = b"\x82\x86\x84"
        headers.flags.add("END_HEADERS")
        return headers
    if choice == 6:
        reset = RstStreamFrame(1)
        reset.stream_id = rng.choice((1, 77))
        return reset
    if choice == 7:
        goaway = GoAwayFrame(0)
        goaway.error_code = rng.randrange(0, 14)
        return goaway
    if choice == 8:
        headers = HeadersFrame(1)
        headers.data = rng.randbytes(rng.randrange(1, 40))  # not HPACK
        headers.flags.add("END_HEADERS")
        return headers
    if choice == 9:
        ping = PingFrame(0)
        ping.stream_id = rng.choice((0, 1))
        ping.opaque_data = b"12345678"
        return ping
    settings = SettingsFrame(0)
    settings.flags.add("ACK")  # an ACK of settings never sent
    return settings


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def h2_case(
    rng: random.Random, *, port: int, key: str | None, session: str | None
) -> H2Outcome:
    reader, writer = await _connect(port)
    client = H2Client(reader, writer)
    try:
        roll = rng.randrange(100)
        if roll < 12:
            return await _upgrade_case(rng, client, port, key, session)
        client.conn.initiate_connection()
        await client.flush()
        if roll < 50:
            kind = "h2"
            for _ in range(rng.randrange(1, 4)):
                await client.request(
                    mcp_request(rng, port=port, key=key, session=session), port, rng
                )
        elif roll < 70:
            kind = "h2-rst-mid-body"
            request = mcp_request(rng, port=port, key=key, session=session)
            request.method = "POST"
            request.body = request.body or b'{"jsonrpc":"2.0","id":1,"method":"ping"}' * 3
            stream_id = client.conn.get_next_available_stream_id()
            client.replies[stream_id] = StreamReply(done=True)
            client.conn.send_headers(stream_id, _h2_headers(request, port, rng))
            await client.flush()
            await client.send_body(stream_id, request.body[: len(request.body) // 2], end=False)
            client.conn.reset_stream(stream_id, rng.choice((0, 1, 2, 8)))
            await client.flush()
            if rng.random() < 0.5:
                await client.request(
                    mcp_request(rng, port=port, key=key, session=session), port, rng
                )
        else:
            kind = "h2-raw-frames"
            for _ in range(rng.randrange(1, 4)):
                client.write_raw(_raw_frame(rng).serialize())
            if rng.random() < 0.5:
                await client.request(
                    mcp_request(rng, port=port, key=key, session=session), port, rng
                )
            else:
                await client.flush()
        await client.settle()
        return H2Outcome(kind, list(client.replies.values()), client.ended)
    except (ConnectionError, h2.exceptions.H2Error) as exc:
        return H2Outcome("h2-client-error", list(client.replies.values()), type(exc).__name__)
    finally:
        writer.close()


async def _upgrade_case(
    rng: random.Random, client: H2Client, port: int, key: str | None, session: str | None
) -> H2Outcome:
    """``Upgrade: h2c`` on an HTTP/1.1 request (RFC 7540 §3.2), answered on stream 1."""
    settings = client.conn.initiate_upgrade_connection()
    request = mcp_request(rng, port=port, key=key, session=session)
    lines = [f"{request.method} /t/utils/mcp HTTP/1.1".encode()]
    lines += [name + b": " + value for name, value in request.headers]
    lines += [
        b"Connection: Upgrade, HTTP2-Settings",
        b"Upgrade: h2c",
        b"HTTP2-Settings: " + (settings if rng.random() < 0.9 else b"!!bad!!"),
        b"Content-Length: " + str(len(request.body)).encode(),
    ]
    client.write_raw(b"\r\n".join(lines) + b"\r\n\r\n" + request.body)
    head = bytearray()
    while b"\r\n\r\n" not in head:
        try:
            data = await asyncio.wait_for(client.reader.read(65536), IDLE_S)
        except TimeoutError:
            data = b""
        if not data:
            return H2Outcome("h2c-upgrade", [], "no-reply")
        head.extend(data)
    status_head, _, rest = bytes(head).partition(b"\r\n\r\n")
    status_line = status_head.split(b"\r\n", 1)[0].split(b" ")
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else None
    if status != 101:
        return H2Outcome("h2c-upgrade", [StreamReply(status=status, done=True)], "http/1.1")
    client.replies[1] = StreamReply()
    await client.flush()
    if rest:
        for event in client.conn.receive_data(rest):
            client._on(event)
    await client.settle()
    return H2Outcome("h2c-upgrade", list(client.replies.values()), client.ended)
