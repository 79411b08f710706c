"""A reply still being written over HTTP/2 ends when its connection closes (web/h2_guard.py).

A client that stops reading (sends no WINDOW_UPDATE) and then goes away leaves the reply's
unsent part in Hypercorn's stream buffer; Hypercorn's send task stops with the connection and
the application task used to wait on that buffer until the server's graceful timeout cancelled
the connection at shutdown (a traceback in the log). It must end at once instead.
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

#: Far more than HTTP/2's initial flow-control window (65,535 bytes), so the reply blocks.
CHUNK = b"x" * 65536
CHUNKS = 16
PATIENCE_S = 10.0


async def test_a_reply_blocked_on_a_client_that_left_ends_with_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    h2_guard.install()
    ended = asyncio.Event()

    async def big_reply(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            length = str(len(CHUNK) * CHUNKS).encode()
            headers = [(b"content-length", length)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for _ in range(CHUNKS):
                await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            # Sends after the client left return at once, as ASGI servers do for a disconnect.
            await send({"type": "http.response.body", "body": b""})
        finally:
            ended.set()

    async with serve_on_loopback(big_reply) as base_url:
        h2c = await H2Client.open(base_url)
        port, reader, writer, client = h2c.port, h2c.reader, h2c.writer, h2c.conn
        client.send_headers(1, h2_headers(port, "GET", b"/"), end_stream=True)
        writer.write(client.data_to_send())
        received = 0
        async with asyncio.timeout(PATIENCE_S):
            # Read until the window is used up; acknowledge nothing, so the server must stop.
            while received < 65535:
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                for event in client.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        received += len(event.data)
                writer.write(client.data_to_send())
        assert not ended.is_set()
        writer.close()  # gone, with most of the reply unsent
        await asyncio.wait_for(ended.wait(), PATIENCE_S)
    assert_no_tracebacks(caplog.records)
