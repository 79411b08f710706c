"""Raw bytes to the box under test: one HTTP/1.x exchange over a socket, and an HTTP/2 (h2c,
prior knowledge) connection driven frame by frame. For inputs httpx refuses to send."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events

from smcp_box.logs import KeyValueFormatter

READ_TIMEOUT_S = 10.0


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def http1(port: int, data: bytes) -> RawReply:
    """Send ``data`` (one request, ``Connection: close`` advised) and read the whole reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), READ_TIMEOUT_S)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawReply(int(lines[0].split(" ")[1]), headers, body)


@dataclass
class H2Stream:
    status: int | None = None
    body: bytearray = field(default_factory=bytearray)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    reset_code: int | None = None


class H2Conn:
    """A prior-knowledge h2c client that sends what it is told, however wrong."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.streams: dict[int, H2Stream] = {}
        self.terminated: int | None = None
        self._reader_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int) -> H2Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.conn.initiate_connection()
        await client.flush()
        client._reader_task = asyncio.create_task(client._read())
        return client

    async def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())
        await self.writer.drain()

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                self.terminated = self.terminated if self.terminated is not None else -1
                for stream in self.streams.values():
                    stream.ended.set()
                    stream.answered.set()
                return
            for event in self.conn.receive_data(data):
                self._on(event)
            await self.flush()

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams[event.stream_id]
            stream.status = int(dict(event.headers)[b":status"])
            stream.answered.set()
        elif isinstance(event, h2.events.DataReceived):
            self.streams[event.stream_id].body.extend(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended.set()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams[event.stream_id]
            stream.reset_code = int(event.error_code)
            stream.answered.set()
            stream.ended.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = int(event.error_code)

    async def start(
        self, headers: list[tuple[bytes, bytes]], body: bytes = b"", *, end: bool = True
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = H2Stream()
        self.conn.send_headers(stream_id, headers, end_stream=end and not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=end)
        await self.flush()
        return stream_id

    async def send_data(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        self.conn.send_data(stream_id, body, end_stream=end)
        await self.flush()

    async def finished(self, stream_id: int) -> H2Stream:
        stream = self.streams[stream_id]
        await asyncio.wait_for(stream.ended.wait(), READ_TIMEOUT_S)
        return stream

    async def until_closed(self) -> int | None:
        """Wait until the server closes the connection: the error code of the GOAWAY it sent
        (-1 if it sent none)."""
        assert self._reader_task is not None
        await asyncio.wait_for(asyncio.shield(self._reader_task), READ_TIMEOUT_S)
        return self.terminated

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        self.writer.close()


@dataclass
class H2Client:
    """A stock h2 client connection (h2's own checks on) to a server under test, initiated;
    the caller drives it frame by frame."""

    port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h2.connection.H2Connection

    @classmethod
    async def open(cls, base_url: str) -> H2Client:
        port = urlsplit(base_url).port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        return cls(port, reader, writer, conn)


def h2_headers(port: int, method: str, path: bytes, *extra: tuple[str, str]) -> list[Any]:
    return [
        (b":method", method.encode()),
        (b":scheme", b"http"),
        (b":authority", f"127.0.0.1:{port}".encode()),
        (b":path", path),
        *[(name.encode(), value.encode()) for name, value in extra],
    ]


def assert_no_tracebacks(records: list[logging.LogRecord]) -> None:
    """No record carries a traceback or is an error, and every one formats as UTF-8 (what
    the box's log handler writes)."""
    formatter = KeyValueFormatter(journald=False)
    for record in records:
        text = formatter.format(record)
        assert record.exc_info is None, text
        assert "Traceback" not in text, text
        assert record.levelno < logging.ERROR, text
        text.encode("utf-8")
