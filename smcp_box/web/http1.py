"""HTTP/1.1 for Hypercorn on llhttp (node's parser, through ``httptools``) instead of h11.

Hypercorn (0.18) speaks HTTP/1.1 through h11, a pure-Python state machine: parsing a request
and writing its reply cost more CPU than everything the box does for a small ``tools/call``
but the module call (issue 11's profiles: about 40% of the event loop's samples, h11 alone a
third of that). :class:`Http1Protocol` takes h11's place under Hypercorn's own connection
handling and ASGI streams (:class:`~hypercorn.protocol.http_stream.HTTPStream`, timeouts,
task groups, the h2c and prior-knowledge switches to HTTP/2): the request is parsed by
llhttp, the reply's head is written by a few lines here. :func:`install` swaps it in as
``h2_guard`` swaps Hypercorn's HTTP/2 protocol.

What it keeps of h11's behaviour, so that every client sees the same server:

* **Strict parsing.** llhttp runs with none of its leniencies: ``Content-Length`` together
  with ``Transfer-Encoding``, two different lengths, a transfer coding other than chunked,
  obsolete line folding, bare LF line ends, control characters and non-ASCII targets are all
  refused with ``400`` and the connection closed (the request-smuggling shapes). An HTTP/1.1
  request needs exactly one ``Host``; only versions 1.0 and 1.1 are spoken.
* **Bounded heads.** A request head (request line and headers) larger than Hypercorn's
  ``h11_max_incomplete_size`` is refused with ``431``, whether it arrives at once or a byte at
  a time (llhttp itself would buffer a header of any size).
* **One request at a time.** Pipelined requests are parsed as they arrive but each waits for
  the reply before it, and reading stops meanwhile (back-pressure, as h11's ``PAUSED``).
* **Framing of replies**: ``Content-Length`` when the app gives one (more body than declared
  is an error, less closes the connection), chunked otherwise, read-until-close for an
  HTTP/1.0 client; nothing after the head of a reply to ``HEAD`` or of a 1xx/204/304.
  ``Connection: close`` whenever the connection ends after the reply: asked for by the
  client or the app, an HTTP/1.0 client, the request body not fully read, or Hypercorn's
  ``keep_alive_max_requests`` reached.
* **Upgrades**: ``Upgrade: h2c`` without a body switches to HTTP/2 (``101``), the HTTP/2
  preface switches at once, as Hypercorn does with h11; any other upgrade is answered as a
  plain request and the connection closed after it (no WebSocket routes exist).
* ``Expect: 100-continue`` is answered ``100`` as soon as the head is read.

Invariants: at most one :class:`HTTPStream` per connection; once :attr:`_closed` is set
nothing more is written or parsed; parser callbacks only queue events, which
:meth:`_run_events` hands to the stream in order.
"""

from __future__ import annotations

import http
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httptools
import hypercorn.protocol
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import (
    Body,
    Data,
    EndBody,
    EndData,
    InformationalResponse,
    Request,
    Response,
    StreamClosed,
)
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.typing import AppWrapper, ConnectionState, TaskGroup, WorkerContext

STREAM_ID: Final = 1
#: The start of the HTTP/2 connection preface (RFC 9113 §3.4): prior-knowledge h2c.
H2_PREFACE: Final = b"PRI * HTTP/2.0"
_VERSIONS: Final = frozenset({"1.0", "1.1"})
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_STATUS_LINES: Final = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")
    for status in http.HTTPStatus
}

# Parser events, queued by the callbacks and handled in order by _run_events.
_HEAD: Final = 0
_BODY: Final = 1
_END: Final = 2
_ERROR: Final = 3
_H2C: Final = 4


class _BadRequest(Exception):
    """Raised inside a parser callback: the request is refused with :attr:`status`."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(slots=True)
class _RequestHead:
    """A parsed request head; also what ``H2CProtocolRequiredError`` reads (h11's names)."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    http_version: str
    keep_alive: bool
    expect_continue: bool
    upgrade: bytes | None
    has_body: bool


@dataclass(slots=True)
class _Reply:
    """How the reply in progress is framed."""

    send_body: bool
    chunked: bool
    #: Bytes still owed under a Content-Length (None: not length-delimited).
    remaining: int | None
    close: bool
    #: The reply's end was written: only then may the connection carry another request.
    ended: bool = False


@dataclass(slots=True)
class _Parsing:
    """The head being parsed (between llhttp's message-begin and headers-complete)."""

    target: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    size: int = 0
    hosts: int = 0
    expect_continue: bool = False
    upgrade: bytes | None = None
    has_body: bool = False


class Http1Protocol:
    """One HTTP/1.1 connection for Hypercorn: :class:`H11Protocol`'s interface on llhttp."""

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        task_group: TaskGroup,
        connection_state: ConnectionState,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
    ) -> None:
        self.app = app
        self.config = config
        self.context = context
        self.task_group = task_group
        self.connection_state = connection_state
        self.ssl = ssl
        self.client = client
        self.server = server
        self.send = send
        self.can_read = context.event_class()
        self.stream: HTTPStream | None = None
        self.keep_alive_requests = 0
        self._parser = httptools.HttpRequestParser(self)
        self._max_head = config.h11_max_incomplete_size
        self._events: deque[tuple[int, Any]] = deque()
        self._parsing: _Parsing | None = None
        #: Bytes of the head in progress that arrived in reads after the one it began in
        #: (llhttp buffers a header's pieces until its end, without limit of its own).
        self._pending_head_bytes = 0
        self._head_began = False
        #: Bytes seen before the first request was recognised (the h2 preface check).
        self._sniffed: bytearray | None = bytearray()
        self._request: _RequestHead | None = None
        self._request_done = False
        self._reply: _Reply | None = None
        #: No request after the current one: an upgrade left the parser, or input was refused.
        self._last = False
        self._closed = False

    async def initiate(self) -> None:
        pass

    def head_pending(self) -> bool:
        """Whether part of a request head has arrived and not its end (the header deadline's
        ``header_timeout`` rather than ``idle_timeout``)."""
        return self._parsing is not None or bool(self._sniffed)

    # --- input -------------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData):
            if self._closed or self._last:
                return
            data = event.data
            if self._sniffed is not None:
                data = self._sniff(data)
                if not data:
                    return
            self._feed(data)
            await self._run_events()
        elif isinstance(event, Closed):
            self._closed = True
            self._events.clear()
            await self.can_read.set()
            if self.stream is not None:
                await self._close_stream()

    def _sniff(self, data: bytes) -> bytes:
        """Hold the first bytes of a connection until they show whether it speaks HTTP/2."""
        assert self._sniffed is not None
        self._sniffed += data
        seen = bytes(self._sniffed)
        if len(seen) < len(H2_PREFACE) and H2_PREFACE.startswith(seen):
            return b""
        self._sniffed = None
        if seen.startswith(H2_PREFACE):
            raise H2ProtocolAssumedError(seen)
        return seen

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data[upgrade.args[0] :])
            return
        except httptools.HttpParserCallbackError as error:
            cause = error.__cause__ or error.__context__
            self._refuse(cause.status if isinstance(cause, _BadRequest) else 400)
            return
        except httptools.HttpParserError:
            self._refuse(400)
            return
        if self._head_began:
            # The read a head began in is at most one receive (64 KiB), and the callbacks
            # bound every part of the head they see; a head that keeps arriving in later
            # reads without ending is refused once those alone pass the limit.
            self._head_began = False
        elif self._parsing is not None:
            self._pending_head_bytes += len(data)
            if self._pending_head_bytes > self._max_head:
                self._refuse(431)

    def _refuse(self, status: int) -> None:
        self._last = True
        self._events.append((_ERROR, status))

    def _upgraded(self, rest: bytes) -> None:
        """llhttp stopped after a request asking to upgrade; ``rest`` is what followed it."""
        self._last = True
        events = self._events
        head = events[-2][1] if len(events) >= 2 and events[-2][0] == _HEAD else None
        if (
            head is not None
            and head.upgrade is not None
            and head.upgrade.lower() == b"h2c"
            and not head.has_body
        ):
            # Hypercorn's rule: h2c only for a request without a body (its body would have to
            # be read in HTTP/1.1 before the switch); the request becomes HTTP/2 stream 1,
            # after the replies to any requests pipelined before it.
            events.pop()
            events.pop()
            events.append((_H2C, (head, rest)))

    # llhttp's callbacks (called from inside feed_data; they only record what was parsed).

    def on_message_begin(self) -> None:
        self._parsing = _Parsing()
        self._pending_head_bytes = 0
        self._head_began = True

    def on_url(self, url: bytes) -> None:
        parsing = self._parsing
        assert parsing is not None
        parsing.target += url
        parsing.size += len(url)
        if parsing.size > self._max_head:
            raise _BadRequest(431)

    def on_header(self, name: bytes, value: bytes) -> None:
        parsing = self._parsing
        assert parsing is not None
        name = name.lower()
        value = value.rstrip(b" \t")
        parsing.headers.append((name, value))
        parsing.size += len(name) + len(value) + 4
        if parsing.size > self._max_head:
            raise _BadRequest(431)
        if name == b"host":
            parsing.hosts += 1
        elif name == b"content-length" or name == b"transfer-encoding":
            parsing.has_body = True
        elif name == b"expect":
            parsing.expect_continue = value.lower() == b"100-continue"
        elif name == b"upgrade":
            parsing.upgrade = value

    def on_headers_complete(self) -> None:
        parsing = self._parsing
        assert parsing is not None
        self._parsing = None
        version = self._parser.get_http_version()
        if version not in _VERSIONS or not parsing.target.isascii():
            raise _BadRequest(400)
        if parsing.hosts > 1 or (parsing.hosts == 0 and version == "1.1"):
            raise _BadRequest(400)
        head = _RequestHead(
            method=self._parser.get_method(),
            target=parsing.target,
            headers=parsing.headers,
            http_version=version,
            keep_alive=version == "1.1" and self._parser.should_keep_alive(),
            expect_continue=parsing.expect_continue and version == "1.1",
            upgrade=parsing.upgrade,
            has_body=parsing.has_body,
        )
        self._events.append((_HEAD, head))

    def on_body(self, body: bytes) -> None:
        self._events.append((_BODY, body))

    def on_message_complete(self) -> None:
        self._events.append((_END, None))

    # --- events to the stream ----------------------------------------------------------------

    async def _run_events(self) -> None:
        events = self._events
        while events and not self._closed:
            kind, value = events.popleft()
            if kind == _HEAD:
                await self._wait_for_stream()
                if self._closed:
                    return
                await self._start(value, queued_body=bool(events) and events[0][0] == _BODY)
            elif kind == _BODY:
                if self.stream is not None:
                    await self.stream.handle(Body(stream_id=STREAM_ID, data=value))
            elif kind == _END:
                self._request_done = True
                if self.stream is not None:
                    await self.stream.handle(EndBody(stream_id=STREAM_ID))
            elif kind == _ERROR:
                if self._request_done:
                    # Refused input after a complete request: its reply goes first.
                    await self._wait_for_stream()
                await self._fail(value)
                return
            else:  # _H2C
                await self._wait_for_stream()
                if not self._closed:
                    await self._switch_to_h2(*value)

    async def _wait_for_stream(self) -> None:
        """Wait until the reply in progress has ended (a pipelined request waits its turn)."""
        while self.stream is not None and not self._closed:
            await self.can_read.clear()
            await self.can_read.wait()

    async def _start(self, head: _RequestHead, *, queued_body: bool) -> None:
        await self.send(Updated(idle=False))
        self._request = head
        self._request_done = False
        self._reply = None
        self.stream = HTTPStream(
            self.app,
            self.config,
            self.context,
            self.task_group,
            self.ssl,
            self.client,
            self.server,
            self.stream_send,
            STREAM_ID,
        )
        if head.expect_continue and not queued_body:
            await self.send(RawData(self._head_bytes(100, [])))
        await self.stream.handle(
            Request(
                stream_id=STREAM_ID,
                headers=head.headers,
                http_version=head.http_version,
                method=head.method.decode("ascii"),
                raw_path=head.target,
                state=self.connection_state,
            )
        )
        self.keep_alive_requests += 1
        await self.context.mark_request()

    async def _switch_to_h2(self, head: _RequestHead, rest: bytes) -> None:
        await self.send(
            RawData(self._head_bytes(101, [(b"connection", b"upgrade"), (b"upgrade", b"h2c")]))
        )
        raise H2CProtocolRequiredError(rest, head)  # type: ignore[arg-type]

    async def _fail(self, status: int) -> None:
        """Refuse what the client sent: an empty reply if none has started, then close."""
        if not self._closed and self._reply is None:
            self._reply = _Reply(send_body=False, chunked=False, remaining=None, close=True)
            head = self._head_bytes(status, [(b"content-length", b"0"), (b"connection", b"close")])
            await self.send(RawData(head))
        await self._close_connection()

    async def _close_connection(self) -> None:
        self._closed = True
        self._events.clear()
        await self.can_read.set()
        await self.send(Closed())

    # --- output (from the stream) ------------------------------------------------------------

    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, StreamClosed):
            await self._maybe_recycle()
        elif self._closed:
            return
        elif isinstance(event, Response):
            await self.send(RawData(self._reply_head(event.status_code, event.headers)))
        elif isinstance(event, Body):
            await self._send_body(event.data)
        elif isinstance(event, EndBody):
            await self._end_body()
        elif isinstance(event, (InformationalResponse, Data, EndData)):
            # Early hints are HTTP/2 and 3 only in Hypercorn; Data is WebSocket pass-through,
            # which this protocol never starts.
            return

    def _reply_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        request = self._request
        assert request is not None
        if status < 200:
            return self._head_bytes(status, headers)
        send_body = request.method != b"HEAD" and status not in _NO_BODY_STATUSES
        # A reply that starts before its request's body has all arrived ends the connection
        # (the rest of that body would have to be read and thrown away first).
        close = not request.keep_alive or self._last or not self._request_done
        length: int | None = None
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            name = name.lower()
            if name == b"content-length":
                length = int(value)
                continue  # written below, once, where the framing is chosen
            elif name == b"connection":
                # Replaced by this protocol's own: it knows whether the connection ends.
                close = close or b"close" in value.lower()
                continue
            elif name == b"transfer-encoding":
                continue
            kept.append((name, value))
        if self.keep_alive_requests >= self.config.keep_alive_max_requests:
            close = True
        chunked = False
        if length is not None:
            kept.append((b"content-length", b"%d" % length))
        if not send_body:
            length = None  # a reply to HEAD, a 204 or a 304 sends its head only
        elif length is None and request.http_version == "1.1":
            chunked = True
            kept.append((b"transfer-encoding", b"chunked"))
        elif length is None:
            close = True  # an HTTP/1.0 client reads the body until the connection closes
        if close:
            kept.append((b"connection", b"close"))
        head = self._head_bytes(status, kept)
        self._reply = _Reply(send_body=send_body, chunked=chunked, remaining=length, close=close)
        return head

    def _head_bytes(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        status_line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status
        lines = [status_line]
        for name, value in headers:
            if b"\n" in value or b"\r" in value or b"\x00" in value:
                # A header value that would split the reply (h11 refuses it too).
                raise ValueError(f"invalid value for response header {name!r}")
            lines.append(name + b": " + value + b"\r\n")
        lines.append(_fixed_headers(self.config))
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _send_body(self, data: bytes) -> None:
        reply = self._reply
        if reply is None or not reply.send_body or not data:
            return
        if reply.remaining is not None:
            if len(data) > reply.remaining:
                raise ValueError("reply body longer than its Content-Length")
            reply.remaining -= len(data)
            await self.send(RawData(data))
        elif reply.chunked:
            await self.send(RawData(b"%x\r\n%b\r\n" % (len(data), data)))
        else:
            await self.send(RawData(data))

    async def _end_body(self) -> None:
        reply = self._reply
        if reply is None:
            return
        reply.ended = True
        if reply.chunked:
            await self.send(RawData(b"0\r\n\r\n"))
        elif reply.remaining:
            # Shorter than declared: the client would wait for the rest; ending the
            # connection tells it the reply is cut.
            reply.close = True

    async def _maybe_recycle(self) -> None:
        await self._close_stream()
        reply = self._reply
        reusable = (
            not self._closed
            and not self.context.terminated.is_set()
            and self._request_done
            and reply is not None
            and reply.ended
            and not reply.close
        )
        if not reusable:
            if not self._closed:
                await self._close_connection()
            return
        self._request = None
        self._reply = None
        await self.can_read.set()
        await self.send(Updated(idle=True))

    async def _close_stream(self) -> None:
        if self.stream is not None:
            stream = self.stream
            await stream.handle(StreamClosed(stream_id=STREAM_ID))
            self.stream = None


_fixed_cache: tuple[int, int, bytes] = (0, 0, b"")


def _fixed_headers(config: Config) -> bytes:
    """Hypercorn's own reply headers (``date``, ``server``, ``alt-svc``), spelled once per
    second rather than per reply (the date is second-grained)."""
    global _fixed_cache
    now = int(time.time())
    second, owner, spelled = _fixed_cache
    if second != now or owner != id(config):
        spelled = b"".join(
            name + b": " + value + b"\r\n" for name, value in config.response_headers("h11")
        )
        _fixed_cache = (now, id(config), spelled)
    return spelled


def install() -> None:
    """Make Hypercorn use :class:`Http1Protocol` for every HTTP/1 connection (idempotent)."""
    module: Any = hypercorn.protocol
    module.H11Protocol = Http1Protocol
