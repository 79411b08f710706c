"""Per-address caps on connections and SSE streams, and the header and body deadlines.

A client that opens thousands of connections, or holds them half-sent, costs the box a socket,
a task and some loop time each; without caps one address can crowd out every other client. The
defences sit below the MCP transport, so that no route can forget them:

* **Connections per address**, counted where Hypercorn accepts a connection
  (:class:`GuardedTCPServer`, swapped in by :func:`install` as ``h2_guard`` swaps the HTTP/2
  protocol). A connection past ``max_connections_per_address`` is answered ``429`` (over
  HTTP/1; an HTTP/2 TLS connection is just closed, having no HTTP/1 to speak) and closed
  before any request of it is parsed, so refusing costs an accept and a write. Connections
  from a trusted proxy are not counted: they carry many clients.
* **SSE streams per address**, counted around the ASGI call of every ``GET`` that accepts
  ``text/event-stream`` (:class:`StreamCapMiddleware`): the call lasts as long as the stream.
  The address is the one ``trusted_proxies`` resolves (``X-Forwarded-For``), as for every other
  per-address limit. Past ``max_sse_streams_per_address`` the answer is ``429``.
* **Header deadline**: Hypercorn's ``keep_alive_timeout`` runs from when a connection opens or
  its previous response ends, and only a complete request head stops it (partial bytes do not
  restart it), so it is the deadline for the request head too; ``header_timeout_s`` sets it.
  It is kept by a timer a request cancels and its reply's end arms again, not by Hypercorn's
  task per request (:mod:`smcp_box.web.keepalive`).
* **Body deadline**: ``body_timeout_s`` bounds the MCP transport's body read (408) and Quart's
  own (``BODY_TIMEOUT``, the other routes); after a 408 the connection is closed, since the
  rest of the body was never read.

* **One write per reply**: :class:`GuardedTCPServer` gathers what Hypercorn writes within one
  turn of the event loop (a response's head, its body, the end of a chunked body) and sends it
  as one write when the turn ends. A reply then leaves in one system call, not two or three:
  less CPU per request, and a box killed mid-reply either sent the whole reply or none of it,
  so a load balancer can retry a request whose box died before answering (HAProxy cannot once
  part of a reply has reached the client; docs/scale-out.md "Failure modes").

Every refusal and deadline is counted by kind (:attr:`ConnectionGuard.dropped`) for ``/metrics``.
Counters are plain dicts touched on the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import hypercorn.asyncio.run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed, Event, RawData

from smcp_box.config import ServerSettings
from smcp_box.protocol.http import IpNetwork, client_address
from smcp_box.web.http1 import Http1Protocol
from smcp_box.web.keepalive import GuardedWorkerContext, IdleDeadline, TerminatedEvent

#: Kinds counted in ``smcp_box_connections_dropped_total``: refused past a per-address cap;
#: closed with part of a request head unsent, or with nothing sent, at the header deadline;
#: answered 408 at the body deadline.
CONNECTIONS_PER_ADDRESS: Final = "connections_per_address"
SSE_STREAMS_PER_ADDRESS: Final = "sse_streams_per_address"
HEADER_TIMEOUT: Final = "header_timeout"
IDLE_TIMEOUT: Final = "idle_timeout"
BODY_TIMEOUT: Final = "body_timeout"
DROP_KINDS: Final = (
    CONNECTIONS_PER_ADDRESS,
    SSE_STREAMS_PER_ADDRESS,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    BODY_TIMEOUT,
)

#: Gathered reply bytes past this are written at once rather than at the end of the loop's
#: turn (a large body streams as before).
COALESCE_MAX_BYTES: Final = 256 * 1024

#: ``app.extensions`` key of the app's guard (what :func:`configure_hypercorn` attaches).
EXTENSION_KEY: Final = "smcp_box.connections"
#: Attribute of a Hypercorn config carrying the guard to :class:`GuardedTCPServer`.
_CONFIG_ATTRIBUTE: Final = "smcp_box_connection_guard"
#: A refused connection is closed this long after its 429, so that the kernel does not reset it
#: (losing the 429) while the client's request is still unread.
REFUSAL_LINGER_S: Final = 0.5
#: Retry-After of a per-address refusal: the client should first close what it has open.
RETRY_AFTER_S: Final = 1

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]


class ConnectionGuard:
    """Open connections and SSE streams per client address, and what was refused, by kind."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._proxies: tuple[IpNetwork, ...] = ()
        self.update_settings(settings)
        self._connections: dict[str, int] = {}
        self._streams: dict[str, int] = {}
        self.dropped: dict[str, int] = dict.fromkeys(DROP_KINDS, 0)

    def update_settings(self, settings: ServerSettings) -> None:
        """A reload's caps: they hold for connections and streams opened from now on."""
        self.settings = settings
        self._proxies = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in settings.trusted_proxies
        )

    @property
    def open_connections(self) -> int:
        return sum(self._connections.values())

    @property
    def open_streams(self) -> int:
        return sum(self._streams.values())

    def count(self, kind: str) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + 1

    def open_connection(self, address: str | None) -> bool:
        """Count a new connection from ``address``; False (and counted) when over the cap."""
        if address is None or self._is_proxy(address):
            return True
        if _take(self._connections, address, self.settings.max_connections_per_address):
            return True
        self.count(CONNECTIONS_PER_ADDRESS)
        return False

    def close_connection(self, address: str | None) -> None:
        if address is not None and not self._is_proxy(address):
            _give_back(self._connections, address)

    def open_stream(self, address: str | None) -> bool:
        """Count a new SSE stream from ``address``; False (and counted) when over the cap."""
        if address is None:
            return True
        if _take(self._streams, address, self.settings.max_sse_streams_per_address):
            return True
        self.count(SSE_STREAMS_PER_ADDRESS)
        return False

    def close_stream(self, address: str | None) -> None:
        if address is not None:
            _give_back(self._streams, address)

    def _is_proxy(self, address: str) -> bool:
        if not self._proxies:
            return False
        try:
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(parsed in network for network in self._proxies)

    def figures(self) -> dict[str, int]:
        """``/metrics``' view: drops by kind, and what is open now."""
        return {
            **{f"dropped.{kind}": count for kind, count in self.dropped.items()},
            "open_connections": self.open_connections,
            "open_streams": self.open_streams,
        }


def _take(counts: dict[str, int], address: str, cap: int) -> bool:
    held = counts.get(address, 0)
    if held >= cap:
        return False
    counts[address] = held + 1
    return True


def _give_back(counts: dict[str, int], address: str) -> None:
    held = counts.get(address, 0) - 1
    if held > 0:
        counts[address] = held
    else:
        # Addresses with nothing open are forgotten: memory follows what is open, not history.
        counts.pop(address, None)


# --- Hypercorn: connections and the header deadline ----------------------------------------


def configure_hypercorn(config: HypercornConfig, guard: ConnectionGuard) -> None:
    """Give a Hypercorn config the header deadline and the guard that caps connections."""
    install()
    config.keep_alive_timeout = guard.settings.header_timeout_s
    setattr(config, _CONFIG_ATTRIBUTE, guard)


def _refusal(status: str, message: str) -> bytes:
    body = message.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"retry-after: {RETRY_AFTER_S}\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


class GuardedTCPServer(TCPServer):
    """Hypercorn's connection handler, counting connections per address against the cap of
    the guard its config carries (none: Hypercorn's own behaviour, as on the admin socket),
    and sending what it writes in one turn of the event loop as one write (module doc).

    Invariant: bytes leave in the order Hypercorn wrote them; :attr:`_unsent` is empty
    whenever the connection is closed or another event than data is handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent = bytearray()
        self._flush_due = False
        terminated = self.context.terminated
        # install() swaps in this class and GuardedWorkerContext together, so the context's
        # event is always a TerminatedEvent; the header deadline is then a timer, not a task
        # per request (web/keepalive.py).
        if isinstance(terminated, TerminatedEvent):
            self.idle_task = IdleDeadline(
                self.loop,
                terminated,
                self.config,
                self._initiate_server_close,
                self._count_deadline,
            )

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            self._flush_unsent()
            await super().protocol_send(event)
            return
        self._unsent += event.data
        if len(self._unsent) >= COALESCE_MAX_BYTES:
            self._flush_unsent()
        elif not self._flush_due:
            self._flush_due = True
            self.loop.call_soon(self._flush_unsent)
        try:
            # Back-pressure as before: waits only while the transport holds more than its
            # high-water mark (earlier writes the client has not read).
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            await self.protocol.handle(Closed())

    def _flush_unsent(self) -> None:
        self._flush_due = False
        if not self._unsent:
            return
        data = bytes(self._unsent)
        self._unsent.clear()
        # A closed transport drops the bytes (the reader sees the close and ends the
        # connection), as Hypercorn's own write would have.
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.write(data)

    async def _close(self) -> None:
        if isinstance(self.idle_task, IdleDeadline):
            self.idle_task.retire()
        self._flush_unsent()
        await super()._close()

    async def _initiate_server_close(self) -> None:
        # Hypercorn's, with the gathered bytes sent before the writer closes.
        await self.protocol.handle(Closed())
        self._flush_unsent()
        self.writer.close()

    async def run(self) -> None:
        guard: ConnectionGuard | None = getattr(self.config, _CONFIG_ATTRIBUTE, None)
        if guard is None:
            await super().run()
            return
        peer = self.writer.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else None
        if not guard.open_connection(address):
            await self._refuse(guard)
            return
        try:
            await super().run()
        finally:
            guard.close_connection(address)

    async def _refuse(self, guard: ConnectionGuard) -> None:
        """Answer 429 and close, spending as little as possible: a flood of these is what an
        attacker past the cap sends, and each costs the box an accept already."""
        transport = self.writer.transport
        ssl_object = self.writer.get_extra_info("ssl_object")
        try:
            if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
                cap = guard.settings.max_connections_per_address
                transport.write(
                    _refusal(
                        "429 Too Many Requests",
                        f"Too many connections from this address (the box allows {cap}); "
                        "close some and retry",
                    )
                )
            if transport.can_write_eof():
                transport.write_eof()
        except OSError:
            # The client had gone already (a closed end answers the 429 with a reset, and the
            # end-of-file after it fails with ENOTCONN): nothing is left to refuse.
            transport.close()
            return
        # Closed a moment later rather than now: closing with unread request bytes makes the
        # kernel reset the connection and drop the 429 before the client has read it. A
        # stopping server ends the wait at once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.context.terminated.wait(), REFUSAL_LINGER_S)
        transport.close()

    def _count_deadline(self) -> None:
        # The deadline passed: the connection sent no complete request head within it (or sat
        # idle that long between requests).
        guard: ConnectionGuard | None = getattr(self.config, _CONFIG_ATTRIBUTE, None)
        if guard is not None:
            guard.count(HEADER_TIMEOUT if self._head_pending() else IDLE_TIMEOUT)

    def _head_pending(self) -> bool:
        """Whether part of an HTTP/1 request head has arrived (the parser holds it)."""
        protocol = getattr(self.protocol, "protocol", None)
        return isinstance(protocol, Http1Protocol) and protocol.head_pending()


def install() -> None:
    """Make Hypercorn's asyncio worker use :class:`GuardedTCPServer`, and a worker context
    whose connections keep their header deadline by a timer (idempotent)."""
    module: Any = hypercorn.asyncio.run
    module.TCPServer = GuardedTCPServer
    module.WorkerContext = GuardedWorkerContext


# --- ASGI: SSE streams per address, and body timeouts counted -----------------------------


class StreamCapMiddleware:
    """Caps open SSE streams per client address, and counts 408s (body deadlines)."""

    def __init__(self, app: AsgiApp, guard: ConnectionGuard) -> None:
        self.app = app
        self.guard = guard

    # Typed loosely: Quart's asgi_app is typed with its own TypedDicts for the messages.
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        counted = self._counting_send(send)
        if scope.get("method") != "GET" or not _wants_event_stream(scope):
            await self.app(scope, receive, counted)
            return
        guard = self.guard
        address = _client_of(scope, guard.settings.trusted_proxies)
        if not guard.open_stream(address):
            await _send_too_many_streams(send, guard.settings.max_sse_streams_per_address)
            return
        try:
            await self.app(scope, receive, counted)
        finally:
            guard.close_stream(address)

    def _counting_send(self, send: Send) -> Send:
        guard = self.guard

        async def counted(message: Message) -> None:
            if message.get("type") == "http.response.start" and message.get("status") == 408:
                guard.count(BODY_TIMEOUT)
            await send(message)

        return counted


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _wants_event_stream(scope: Scope) -> bool:
    return "text/event-stream" in (_header(scope, b"accept") or "").lower()


def _client_of(scope: Scope, trusted_proxies: tuple[str, ...]) -> str | None:
    client = scope.get("client")
    peer = client[0] if client else None
    return client_address(peer, _header(scope, b"x-forwarded-for"), trusted_proxies)


async def _send_too_many_streams(send: Send, cap: int) -> None:
    body = (
        f"Too many open event streams from this address (the box allows {cap}); "
        "close some and retry\n"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
