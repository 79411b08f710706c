"""Reply bodies over HTTP/2 written straight to the connection when they fit (web/h2_guard.py).

Whatever mix of small chunks (sent at once) and large ones (through Hypercorn's stream buffer
and send task) a reply is made of, each stream's body arrives whole and in order, every stream
ends, and nothing is logged as an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from smcp_box.web import h2_guard
from tests.support.serving import serve_on_loopback
from tests.web.rawwire import H2Client, assert_no_tracebacks, h2_headers

PATIENCE_S = 10.0

#: Each path's reply, chunk by chunk. 16,384 is HTTP/2's default largest frame, 65,535 the
#: initial flow-control window: chunks past either go through the buffer.
REPLIES: dict[bytes, list[bytes]] = {
    b"/empty": [],
    b"/small": [b"a" * 10],
    b"/frame": [b"b" * 16384],
    b"/over-frame": [b"c" * 16385],
    b"/small-chunks": [b"d1" * 50, b"d2" * 50, b"d3" * 50],
    b"/big-then-small": [b"e" * 70000, b"tail"],
    # Under the buffer's high-water mark: the app goes on while the chunk still waits there.
    b"/mid-then-small": [b"h" * 20000, b"tail"],
    b"/small-then-big": [b"head", b"f" * 70000, b"g" * 5],
}


def _expected(path: bytes) -> bytes:
    return b"".join(REPLIES[path])


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks = REPLIES[scope["raw_path"]]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def test_every_reply_shape_arrives_whole_and_in_order_on_one_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    h2_guard.install()
    async with serve_on_loopback(_app) as base_url:
        h2c = await H2Client.open(base_url)
        port, reader, writer, client = h2c.port, h2c.reader, h2c.writer, h2c.conn
        paths = {1 + 2 * i: path for i, path in enumerate(list(REPLIES) * 3)}
        for stream_id, path in paths.items():
            client.send_headers(stream_id, h2_headers(port, "GET", path), end_stream=True)
        writer.write(client.data_to_send())
        bodies = {stream_id: bytearray() for stream_id in paths}
        ended: set[int] = set()
        async with asyncio.timeout(PATIENCE_S):
            while len(ended) < len(paths):
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                for event in client.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        client.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.add(event.stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        raise AssertionError(f"stream {event.stream_id} was reset")
                writer.write(client.data_to_send())
        writer.close()
    for stream_id, path in paths.items():
        assert bytes(bodies[stream_id]) == _expected(path), path
    assert_no_tracebacks(caplog.records)


async def test_a_reply_to_a_stream_the_client_reset_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client resets the stream while the app is about to reply: writing the body straight
    to the connection fails on h2's side, and Hypercorn's own path drops it."""
    caplog.set_level("INFO")
    h2_guard.install()
    started = asyncio.Event()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        await release.wait()
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        finished.set()

    async with serve_on_loopback(app) as base_url:
        h2c = await H2Client.open(base_url)
        port, reader, writer, client = h2c.port, h2c.reader, h2c.writer, h2c.conn
        client.send_headers(1, h2_headers(port, "GET", b"/"), end_stream=True)
        writer.write(client.data_to_send())
        async with asyncio.timeout(PATIENCE_S):
            await started.wait()
            client.reset_stream(1)
            writer.write(client.data_to_send())
            await writer.drain()
            # The reset is read by the server before the app goes on: a PING's answer follows
            # it on the same connection.
            client.ping(b"12345678")
            writer.write(client.data_to_send())
            acked = False
            while not acked:
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                acked = any(
                    isinstance(e, h2.events.PingAckReceived) for e in client.receive_data(data)
                )
            release.set()
            await finished.wait()
        writer.close()
    assert_no_tracebacks(caplog.records)
