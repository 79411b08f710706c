"""What one exchange on the MCP endpoint carries around, and the responses it can give.

Shared by the router (:mod:`smcp_box.web.mcp`) and the two era handlers. Nothing here decides
protocol questions: those are :mod:`smcp_box.protocol`'s.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Final, TypeAlias

from quart import Response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.utils import get_content_length

from smcp_box.config import ServerSettings, Settings
from smcp_box.errors import BodyTimeout, PayloadTooLarge, QuotaExceeded
from smcp_box.protocol.error_replies import Stage, error_reply, reply_status
from smcp_box.protocol.http import metric_method_label
from smcp_box.protocol.jsonrpc import RequestId, encode_json
from smcp_box.protocol.versions import Era
from smcp_box.seams import Principal, RequestObserver, TenantRuntime
from smcp_box.web.deadlines import Deadlines
from smcp_box.web.services import McpServices
from smcp_box.web.sse import SSE_HEADERS
from smcp_box.web.streams import SessionHub
from smcp_box.web.tenant_events import TenantEvents
from smcp_box.web.tool_schemas import ToolSchemas

UNKNOWN_TENANT_LABEL: Final = "(unknown)"


#: The transport's settings are the ``[server]`` section of the settings tree, documented
#: there once; the transport reads no other copy.
TransportSettings: TypeAlias = ServerSettings


def transport_settings(settings: Settings) -> TransportSettings:
    """What the MCP transport runs under: the one way from the settings tree to the transport,
    used at start-up (``create_app``) and by a reload."""
    return settings.server


class HeaderView(Mapping[str, str]):
    """Case-insensitive read-only view of request headers (first value of repeated ones)."""

    __slots__ = ("_first", "_lines")

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self._lines = lines
        first: dict[str, str] = {}
        for name, value in lines:
            first.setdefault(name.lower(), value)
        self._first = first

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> HeaderView:
        """From an ASGI scope's header list, decoded as Latin-1 (as Quart decodes them).

        ASGI servers give names lowercased (the spec's rule; Hypercorn's h11 and HTTP/2, and
        the box's own HTTP/1.1 protocol, do), so they are not lowercased again here."""
        view = cls.__new__(cls)
        view._lines = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
        # Reversed, so that the first of repeated names is the one kept.
        view._first = dict(reversed(view._lines))
        return view

    def __getitem__(self, key: str) -> str:
        return self._first[key.lower()]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        # Mapping.get goes through __getitem__ and a KeyError; this is called a dozen times a
        # request.
        return self._first.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def lines(self) -> list[tuple[str, str]]:
        return list(self._lines)


@dataclass
class HttpRequest:
    """One HTTP request to the endpoint as the transport reads it, whichever path received it:
    Quart's request object (:mod:`smcp_box.web.mcp`'s routes) or the ASGI scope itself
    (:mod:`smcp_box.web.mcp_asgi`)."""

    method: str
    #: "1.0", "1.1" or "2", as ASGI says.
    http_version: str
    scheme: str
    #: The peer's address (before ``trusted_proxies`` are applied).
    remote_addr: str | None
    headers: HeaderView
    #: The body's chunks, read as they arrive (at most once).
    body: AsyncIterable[bytes]
    #: Set by the transport once the tenant is known: the access log names it (a tenant served
    #: by its host name has none in the path).
    tenant: str | None = None

    @property
    def content_length(self) -> int | None:
        """The declared length, as werkzeug reads it (None when chunked or absent)."""
        return get_content_length(
            self.headers.get("content-length"), self.headers.get("transfer-encoding")
        )


class Observation:
    """One observer record per exchange: tenant, method, duration and error kind.

    One owner finishes it: the router, for exchanges the box answers itself; or, once
    :meth:`hand_over` was called, the task the exchange started (``mcp_calls.start_task``), so
    that the duration covers the module's whole call.
    """

    def __init__(self, observer: RequestObserver) -> None:
        self._observer = observer
        self._started = time.perf_counter()
        self.tenant = UNKNOWN_TENANT_LABEL
        self.method = "none"
        self.error_kind: str | None = None
        #: Set when a task owns finishing this record.
        self.handed_over = False
        self._finished = False

    def set_method(self, method: str | None) -> None:
        self.method = metric_method_label(method)

    def hand_over(self) -> None:
        """A task started for this exchange finishes the record, not the router."""
        self.handed_over = True

    def finish(self, error_kind: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        kind = error_kind if error_kind is not None else self.error_kind
        self._observer.observe(self.tenant, self.method, time.perf_counter() - self._started, kind)


@dataclass(frozen=True)
class Endpoint:
    """What every exchange on the MCP endpoint shares: made once, by the transport."""

    services: McpServices
    settings: TransportSettings
    #: Live legacy sessions: their calls, streams and pending client responses.
    hub: SessionHub
    #: Tenant-wide notifications (list changes, resource updates) and their subscribers.
    events: TenantEvents
    #: Tool input schemas for the Mcp-Param-* checks.
    schemas: ToolSchemas


@dataclass(frozen=True)
class Exchange:
    """One HTTP request to ``/t/<tenant>/mcp`` after the tenant and caller are known: the
    request's own state, and the endpoint it arrived at."""

    endpoint: Endpoint
    tenant: TenantRuntime
    principal: Principal
    headers: HeaderView
    source_ip: str | None
    observation: Observation

    @property
    def tenant_name(self) -> str:
        return self.tenant.name

    @property
    def owner(self) -> str:
        """Who may use a session this exchange opens."""
        return f"{self.principal.method}:{self.principal.subject}"


# -- responses ---------------------------------------------------------------------------------


@dataclass(slots=True)
class McpResponse:
    """A reply of the MCP endpoint, whichever path serves it: the lean ASGI path
    (:mod:`smcp_box.web.mcp_asgi`) writes it as it is, the Quart routes hand Quart
    :meth:`to_quart`. Not a Quart ``Response`` itself: making one (werkzeug's header object,
    content-type parsing, a body wrapper) and reading it back cost about a fortieth of a whole
    small ``tools/call`` (``timeit``: 18 µs against 1.2), for a reply whose parts are known here.

    ``headers`` are keyed by name as the box spells them (``Content-Type``, ``Mcp-Session-Id``);
    every value is Latin-1, as HTTP fields are. A body of bytes is sent with its
    ``Content-Length``; an iterator of chunks is streamed (SSE)."""

    status: int
    headers: dict[str, str]
    body: bytes | AsyncGenerator[bytes, None]
    #: How long sending the reply may take, in seconds: None for as long as it lasts (an SSE
    #: stream lives as long as its call or session), ``...`` for the server's own limit
    #: (Quart's ``RESPONSE_TIMEOUT``).
    send_timeout: float | EllipsisType | None = ...

    @property
    def content_length(self) -> int | None:
        return len(self.body) if isinstance(self.body, bytes) else None

    def to_quart(self) -> Response:
        response = Response(self.body, status=self.status, headers=self.headers)
        if not any(name.lower() == "content-type" for name in self.headers):
            del response.headers["Content-Type"]  # Quart's default (text/html) is not ours
        if self.send_timeout is not ...:
            response.timeout = self.send_timeout
        return response


_JSON_HEADERS: Final = {"Content-Type": "application/json"}


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> McpResponse:
    return McpResponse(status, {**_JSON_HEADERS, **(headers or {})}, encode_json(body))


def accepted(headers: Mapping[str, str] | None = None, status: int = 202) -> McpResponse:
    """202 (or 204) with no body: a notification or response the box took."""
    return McpResponse(status, dict(headers or {}), b"")


def error_response(
    error: BaseException,
    *,
    stage: Stage,
    era: Era | None = None,
    request_id: RequestId | None = None,
    headers: Mapping[str, str] | None = None,
) -> McpResponse:
    """``error`` as the endpoint answers it (:func:`~smcp_box.protocol.error_replies.error_reply`
    decides status and body); ``headers`` are added to the reply's own."""
    reply = error_reply(error, stage=stage, era=era, request_id=request_id)
    return json_response(reply.body, reply.status, {**reply.headers, **(headers or {})})


def reply_response(era: Era, reply: dict[str, Any], headers: Mapping[str, str]) -> McpResponse:
    """A module's (or the box's) reply to a request, as a JSON body."""
    status = 200
    error = reply.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        status = reply_status(era, error["code"])
    return json_response(reply, status, headers)


def sse_response(
    body: AsyncGenerator[bytes, None], headers: Mapping[str, str] | None = None
) -> McpResponse:
    # A stream lives as long as its call (or its session): no send timeout may end it.
    return McpResponse(200, {**SSE_HEADERS, **(headers or {})}, body, send_timeout=None)


async def read_body(
    request: HttpRequest, limit: int, timeout_s: float, deadlines: Deadlines
) -> bytes:
    """Read the body chunk by chunk, never holding more than ``limit`` bytes (413 beyond),
    within ``timeout_s`` (408 beyond)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"Payload too large: the body is {declared} bytes; the limit is {limit} bytes"
        )
    received = bytearray()
    try:
        with deadlines.within(timeout_s):
            async for chunk in request.body:
                if len(received) + len(chunk) > limit:
                    raise PayloadTooLarge(
                        f"Payload too large: the body exceeds the limit of {limit} bytes"
                    )
                received.extend(chunk)
    except TimeoutError:
        raise BodyTimeout(
            f"Request timeout: the body did not arrive within {timeout_s:g} seconds"
        ) from None
    except RequestEntityTooLarge:
        # Quart's own app-wide limit (MAX_CONTENT_LENGTH) tripped first.
        raise PayloadTooLarge("Payload too large: the body exceeds the server's limit") from None
    return bytes(received)


async def audit_refusal(
    services: McpServices, err: QuotaExceeded, tenant_name: str | None, source_ip: str | None
) -> None:
    """One ``quota.exceeded`` row per tenant and quota a minute, counting the refusals it
    stands for: a flood is visible in the audit log without flooding it. For every quota,
    whether it refused the HTTP request (429, 413) or one call (a JSON-RPC error)."""
    scope = tenant_name or "-"
    refusals = services.admission.audit_due(scope, err.quota)
    if refusals is None:
        return
    await services.auditor.record(
        "quota.exceeded",
        tenant=tenant_name,
        actor="anonymous",
        source_ip=source_ip,
        outcome="denied",
        detail={"quota": err.quota, "refusals": refusals, "reason": err.message},
    )
