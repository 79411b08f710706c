"""Two HTTP/2 inputs that Hypercorn's own H2 protocol (0.18) does not survive, handled,
replies left waiting forever on a closed connection released, and small replies sent without
a detour through the send task.

Each of these ended the whole connection with an unhandled exception (``asyncio: Unhandled
exception in client_connected_cb``), dropping every other stream on it:

* DATA for a stream whose response is complete (the box answered 401 or 413 before reading the
  body, then the client sent the rest of it): Hypercorn forgot the stream and raised
  ``KeyError: <stream id>``. RFC 9113 §8.1 says what to do instead: a server that answered
  before the request ended may tell the client to stop sending with RST_STREAM(NO_ERROR). The
  data is acknowledged first, so the connection's flow-control window does not leak.
* A ``:path`` or ``:method`` that is not ASCII (HPACK carries any bytes): Hypercorn's
  ``bytes.decode("ascii")`` raised ``UnicodeDecodeError``. HTTP/1.1's parser answers such a
  request line with 400, and so does this stream now, without reaching the application.

And one leak: when a connection closes (the client went away, sent a protocol error, or the
server closed it), Hypercorn's send task stops, and a reply still being written (its buffer
not yet sent, e.g. to a client that stopped reading) is never told: its application task waits
in the buffer's ``drain`` until the server's graceful timeout cancels the whole connection at
shutdown (logged by asyncio with a traceback). The buffers are closed with the connection, so
those tasks end at once, as a reply to a reset stream does.

And three costs (issue 11: over h2c the box spent about 180 µs per request above a bare Quart
app, over HTTP/1.1 about 50):

* HPACK is :mod:`smcp_box.web.h2_hpack`'s, which repeats no work.
* Header lists are checked as h2 checks them, at less cost (:mod:`smcp_box.web.h2_fields`):
  a received list once per distinct list on a connection, with h2's own verdict and h2's
  own ending (GOAWAY(PROTOCOL_ERROR)) for a list it refuses; a reply's list in one pass.
* A reply's body goes straight to the connection while it fits the flow-control window and
  nothing of the reply waits in the stream buffer. Hypercorn buffers every body, wakes its
  per-connection send task, and holds the application in ``drain`` until that task has
  written the body and ended the stream: two task switches and a write more for a one-frame
  reply.

:func:`install` swaps the protocol class Hypercorn picks for HTTP/2 connections (h2c prior
knowledge, ``Upgrade: h2c``, and ALPN h2 on TLS); it is idempotent and checked by
tests/web/test_fuzz_regressions.py against the installed Hypercorn.
"""

from __future__ import annotations

from typing import Any, Final

import h2.errors
import h2.events
import h2.exceptions
import hypercorn.protocol
from hypercorn.events import Closed, Event
from hypercorn.protocol.events import (
    Body,
    EndBody,
    InformationalResponse,
    Request,
    Response,
    StreamClosed,
    Trailers,
)
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h2 import H2Protocol

from smcp_box.web import h2_fields, h2_hpack

#: The refusal of a request Hypercorn cannot turn into an ASGI scope (empty body, as HTTP/1's
#: parser refuses a bad request line).
_BAD_REQUEST_HEADERS: Final = [(b":status", b"400"), (b"content-length", b"0")]


class GuardedH2Protocol(H2Protocol):
    """Hypercorn's HTTP/2 protocol, with the two inputs above handled per stream, the
    buffers of unsent replies closed with the connection, and the three costs above cut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        h2_hpack.install_on(self.connection)
        # Header lists are checked here instead, at less cost (web/h2_fields.py): received
        # ones once per distinct list, replies in one pass.
        config = self.connection.config
        config.validate_inbound_headers = False
        config.validate_outbound_headers = config.normalize_outbound_headers = False
        self._received_lists = h2_fields.ReceivedLists()
        #: Streams whose reply went through Hypercorn's stream buffer and send task: the rest
        #: of the reply must follow the same way, after what is queued there.
        self._buffered: set[int] = set()

    async def stream_send(self, event: StreamEvent) -> None:
        # A reply's body written straight to the connection while it fits the flow-control
        # window and nothing of it waits in the stream buffer (most replies: one small DATA
        # frame), instead of buffering it, waking the send task, and waiting for the task to
        # empty the buffer and end the stream. A stream that once used the buffer keeps using
        # it, so DATA frames stay in order and the send task never finds its buffer gone.
        if isinstance(event, Body) and self._send_now(event.stream_id, event.data):
            await self._flush()
            return
        if isinstance(event, EndBody) and self._end_now(event.stream_id):
            await self._flush()
            return
        if isinstance(event, (Response, InformationalResponse)):
            await self._send_reply_head(event)
            return
        if isinstance(event, StreamClosed):
            self._buffered.discard(event.stream_id)
        elif isinstance(event, (Body, EndBody, Trailers)):
            self._buffered.add(event.stream_id)
        if isinstance(event, (Trailers, Request)):
            # Rare (trailers, server push): h2's own checks, switched back on around them.
            config = self.connection.config
            config.validate_outbound_headers = config.normalize_outbound_headers = True
            try:
                await super().stream_send(event)
            finally:
                config.validate_outbound_headers = config.normalize_outbound_headers = False
            return
        await super().stream_send(event)

    async def _send_reply_head(self, event: Response | InformationalResponse) -> None:
        """Hypercorn's sending of a reply's head, with the list checked in one pass."""
        fields = [
            (b":status", b"%d" % event.status_code),
            *event.headers,
            *self.config.response_headers("h2"),
        ]
        try:
            self.connection.send_headers(event.stream_id, h2_fields.reply_fields(fields))
        except (KeyError, h2.exceptions.ProtocolError):
            # As Hypercorn: the connection closed, or the stream ended, meanwhile.
            return
        await self._flush()

    def _direct(self, stream_id: int) -> bool:
        """Whether the stream's reply may bypass the stream buffer: the connection is open, the
        stream has a buffer (its reply is not over) and nothing of it ever went through it."""
        return (
            not self.closed and stream_id not in self._buffered and stream_id in self.stream_buffers
        )

    def _send_now(self, stream_id: int, data: bytes) -> bool:
        if not self._direct(stream_id):
            return False
        try:
            window = self.connection.local_flow_control_window(stream_id)
            if len(data) > min(window, self.connection.max_outbound_frame_size):
                return False
            self.connection.send_data(stream_id, data)
        except h2.exceptions.H2Error:
            return False  # reset or closed meanwhile: Hypercorn's own path drops it
        return True

    def _end_now(self, stream_id: int) -> bool:
        if not self._direct(stream_id):
            return False
        try:
            self.connection.end_stream(stream_id)
        except h2.exceptions.H2Error:
            return False
        # As the send task does for a stream whose buffer is complete and empty.
        del self.stream_buffers[stream_id]
        self.priority.remove_stream(stream_id)
        return True

    async def handle(self, event: Event) -> None:
        await super().handle(event)
        if isinstance(event, Closed):
            # The send task has stopped (the connection is closed): nothing will empty these.
            for buffer in list(self.stream_buffers.values()):
                await buffer.close()

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        # One event at a time: a request and its first DATA often arrive in one read, and the
        # stream the request creates must exist before its DATA is checked.
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self._discard_body(event)
            elif isinstance(
                event, (h2.events.RequestReceived, h2.events.TrailersReceived)
            ) and not self._received_lists.valid(
                event.headers or [], trailers=isinstance(event, h2.events.TrailersReceived)
            ):
                # What h2 does with a header list it refuses: the connection ends with
                # GOAWAY(PROTOCOL_ERROR), and nothing after it is handled.
                self.connection.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
                await self._flush()
                await self.send(Closed())
                return
            elif isinstance(event, h2.events.RequestReceived) and not _ascii_request(event):
                self._refuse(event.stream_id)
            else:
                await super()._handle_events([event])
                continue
            await self._flush()

    def _discard_body(self, event: h2.events.DataReceived) -> None:
        """The rest of the body of a request already answered: take it and stop the sender."""
        try:
            self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.connection.reset_stream(event.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        except h2.exceptions.H2Error:
            # Already reset or closed on h2's side: nothing more is owed.
            return

    def _refuse(self, stream_id: int) -> None:
        try:
            self.connection.send_headers(stream_id, _BAD_REQUEST_HEADERS, end_stream=True)
        except h2.exceptions.H2Error:
            return


def _ascii_request(event: h2.events.RequestReceived) -> bool:
    for name, value in event.headers or ():
        if name in (b":path", b":method") and not bytes(value).isascii():
            return False
    return True


def install() -> None:
    """Make Hypercorn use :class:`GuardedH2Protocol` for every HTTP/2 connection it opens."""
    module: Any = hypercorn.protocol
    module.H2Protocol = GuardedH2Protocol
