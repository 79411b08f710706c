"""The lean path for ``POST /t/<tenant>/mcp`` and ``POST /mcp``: ASGI in front of the Quart app.

Nearly every request the box serves is one of these POSTs, and Quart's per-request machinery
(request object, app and request contexts, hooks, URL routing, two tasks per request and a third
to time the response out) cost about as much CPU as the box's own work. :class:`LeanMcpPath`
serves them itself, with the same :class:`~smcp_box.web.mcp.McpTransport` the Quart routes use:
it reads the scope, runs the transport, and writes the reply. What the Quart path does for this
route it does too, in the same order:

* the request id (the client's tame ``X-Request-Id`` or a new one) is set for the log lines and
  the call tasks, and echoed on the reply (:mod:`smcp_box.web.request_log`);
* the access-log line, when ``[server] access_log`` is on (read from the app's config at every
  request, so SIGHUP still switches it);
* the body limits and the body deadline are the transport's own (:func:`read_body`); the 408 it
  answers is counted here as :class:`~smcp_box.web.connections.StreamCapMiddleware` counts
  Quart's (the caps middleware's other job, SSE caps, is for GETs only); the connection caps
  and the HTTP/2 guard sit below ASGI;
* the ``Smcp-Box`` header (:mod:`smcp_box.web.box_header`), when the box sends it, is added to
  the reply's headers here: this path sits outside the middleware that adds it to Quart's
  replies, so a POST pays for no wrapped ``send`` (two of them cost more than the header);
* a client that disconnects cancels the request's handling, as Quart cancels its handler task;
  the era's code decides what that means (2026-07-28: the call is cancelled; the handshake era
  keeps it for a resume). Quart watches for the disconnect from a second task on every request;
  here the watcher starts only once a request has been in hand for
  :data:`DISCONNECT_WATCH_AFTER_S` (most are answered sooner), so a client that leaves earlier
  is noticed that much later;
* a reply's send is bounded by Quart's ``RESPONSE_TIMEOUT`` unless the response says otherwise
  (an SSE stream lasts as long as its call);
* an exception the transport did not answer (a bug) becomes the logged 500 with the request id
  that :func:`~smcp_box.protocol.error_replies.error_reply` makes of it.

Everything else goes to Quart untouched: other paths and methods, an ASGI ``root_path`` (Quart
rewrites paths under it), and a ``Host`` that Quart's routing refuses (400, see
:mod:`smcp_box.web.routing_errors`). Auth, tenant lookup, validation, the sandbox, audit and
metrics are all in the transport, so both paths run them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any, Final

from werkzeug.sansio.utils import get_host

from smcp_box.logs import request_id_var
from smcp_box.protocol.error_replies import Stage
from smcp_box.web.connections import BODY_TIMEOUT, ConnectionGuard
from smcp_box.web.mcp import McpTransport
from smcp_box.web.mcp_context import HeaderView, HttpRequest, McpResponse, error_response
from smcp_box.web.request_log import REQUEST_ID_HEADER, choose_request_id, log_access

log = logging.getLogger("smcp_box.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]

#: ``path`` is not the MCP endpoint's: the request goes to Quart.
_NOT_MCP: Final = ""
_TENANT_PREFIX: Final = "/t/"
_MCP_SUFFIX: Final = "/mcp"
#: How long after its body is in a request's handling starts watching for the client leaving.
#: A task per request costs about as much as the rest of the request id, logging and reply
#: writing together; a timer costs next to nothing and is cancelled when the reply is out.
DISCONNECT_WATCH_AFTER_S: Final = 0.05


class ClientDisconnected(asyncio.CancelledError):
    """The client went away while the request was read or answered: its handling is cancelled,
    as Quart cancels its handler task."""


def mcp_tenant_of(path: str) -> str | None:
    """The tenant in ``/t/<tenant>/mcp``, None for ``/mcp`` (the tenant comes from the Host),
    ``""`` for any other path. Matches exactly what the Quart routes match (a tenant is one
    non-empty path segment, already percent-decoded by the server)."""
    if path == _MCP_SUFFIX:
        return None
    if path.startswith(_TENANT_PREFIX) and path.endswith(_MCP_SUFFIX):
        name = path[len(_TENANT_PREFIX) : -len(_MCP_SUFFIX)]
        if name and "/" not in name:
            return name
    return _NOT_MCP


@lru_cache(maxsize=256)
def host_binds(scheme: str, host: str | None) -> bool:
    """Whether Quart's routing takes this ``Host`` (it IDNA-encodes the name; a name that does
    not encode is refused there with 400). Cached: a box sees few distinct host names."""
    if host is None:
        return True  # routing falls back to the server's own address
    name = get_host(scheme, host).lower().partition(":")[0]
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


class LeanMcpPath:
    """ASGI middleware: serves the MCP endpoint's POSTs, passes everything else to ``app``."""

    def __init__(
        self,
        app: AsgiApp,
        transport: McpTransport,
        config: Mapping[str, Any],
        access_log_key: str,
        *,
        guard: ConnectionGuard,
        box_header: tuple[bytes, bytes] | None,
    ) -> None:
        self.app = app
        self.transport = transport
        #: The Quart app's config: the access-log switch and RESPONSE_TIMEOUT, read per request.
        self.config = config
        self.access_log_key = access_log_key
        #: Counts the 408s this path answers (body deadline), as the caps middleware does.
        self.guard = guard
        #: The ``Smcp-Box`` header every reply carries, None when the box sends none.
        self.box_header = box_header

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            tenant = mcp_tenant_of(scope["path"])
            if tenant != _NOT_MCP:
                headers = HeaderView.from_asgi(scope["headers"])
                if host_binds(scope["scheme"], _host_header(scope, headers)):
                    await _Exchange(self, scope, receive, send, headers).serve(tenant)
                    return
        await self.app(scope, receive, send)


def _host_header(scope: Scope, headers: HeaderView) -> str | None:
    host = headers.get("host")
    if host is None and scope["http_version"] < "1.1":
        return ""  # Quart's default Host for HTTP/1.0 without one
    return host


class _Exchange:
    """One POST on the lean path: reading, answering, and watching for the client leaving."""

    def __init__(
        self, path: LeanMcpPath, scope: Scope, receive: Receive, send: Send, headers: HeaderView
    ) -> None:
        self.path = path
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = headers
        self.started = time.perf_counter()
        self.request_id = choose_request_id(headers.get(REQUEST_ID_HEADER))
        self._task = asyncio.current_task()
        self._watch_timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._disconnected = False
        self._done = False

    async def serve(self, tenant_name: str | None) -> None:
        # Set in this request's own task (the server runs each request in one), so the log
        # lines and the call tasks the transport starts (which copy the context) carry it.
        request_id_var.set(self.request_id)
        client = self.scope.get("client")
        remote_addr = client[0] if client else None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s from %s", self.scope["path"], remote_addr)
        http = HttpRequest(
            method="POST",
            http_version=self.scope["http_version"],
            scheme=self.scope["scheme"],
            remote_addr=remote_addr,
            headers=self.headers,
            body=self._body(),
        )
        try:
            try:
                response = await self.path.transport.handle(tenant_name, http)
            except Exception as err:
                # The transport answers everything it knows; this is a bug: logged, 500.
                response = error_response(err, stage=Stage.EXCHANGE)
            response.headers[REQUEST_ID_HEADER] = self.request_id
            if self.path.config[self.path.access_log_key]:
                self._log_access(response, http.tenant or tenant_name, remote_addr)
            await self._send_response(response)
        except asyncio.CancelledError as cancelled:
            if not (self._disconnected or isinstance(cancelled, ClientDisconnected)):
                raise  # the server's own cancellation (shutdown): it must see it
            # The client is gone: nothing to answer. The cancellation the watcher caused is
            # spent here, so the server sees this request end as a normal one.
            if self._disconnected and self._task is not None:
                self._task.uncancel()
        finally:
            self._done = True
            if self._watch_timer is not None:
                self._watch_timer.cancel()
            if self._watcher is not None:
                self._watcher.cancel()

    async def _body(self) -> AsyncIterator[bytes]:
        """The body's chunks; once all are in, a watcher turns a disconnect into cancellation."""
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "http.disconnect":
                raise ClientDisconnected()
            if kind != "http.request":
                continue
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            if not more:
                self._watch_for_disconnect()
            if chunk:
                yield chunk
            if not more:
                return

    def _watch_for_disconnect(self) -> None:
        if self._watch_timer is None and self._task is not None:
            loop = asyncio.get_running_loop()
            self._watch_timer = loop.call_later(DISCONNECT_WATCH_AFTER_S, self._start_watcher)

    def _start_watcher(self) -> None:
        if not self._done and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self._disconnected = True
                if self._task is not None:
                    self._task.cancel()
                return

    async def _send_response(self, response: McpResponse) -> None:
        raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.items()
        ]
        body = response.body
        if isinstance(body, bytes):
            raw_headers.append((b"content-length", str(len(body)).encode("ascii")))
        if self.path.box_header is not None:
            raw_headers.append(self.path.box_header)
        if response.status == 408:
            self.path.guard.count(BODY_TIMEOUT)
        start = {"type": "http.response.start", "status": response.status}
        start["headers"] = raw_headers
        timeout = response.send_timeout
        if timeout is Ellipsis:
            timeout = self.path.config["RESPONSE_TIMEOUT"]
        try:
            with self.path.transport.deadlines.within(timeout):
                await self.send(start)
                if isinstance(body, bytes):
                    await self.send({"type": "http.response.body", "body": body})
                    return
                async with contextlib.aclosing(body) as chunks:
                    async for chunk in chunks:
                        await self.send(
                            {"type": "http.response.body", "body": chunk, "more_body": True}
                        )
                await self.send({"type": "http.response.body", "body": b""})
        except TimeoutError:
            # As Quart does: the reply could not be sent in time; the server closes it.
            return

    def _log_access(self, response: McpResponse, tenant: str | None, client: str | None) -> None:
        log_access(
            method="POST",
            path=self.scope["path"],
            status=response.status,
            size=response.content_length,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            client=client,
            tenant=tenant,
        )
