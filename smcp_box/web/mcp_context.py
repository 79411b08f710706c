"""What one exchange on the MCP endpoint carries around, and the responses it can give.

Shared by the router (:mod:`smcp_box.web.mcp`) and the two era handlers. Nothing here decides
protocol questions: those are :mod:`smcp_box.protocol`'s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from quart import Request as QuartRequest
from quart import Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

from smcp_box.config import ServerSettings, Settings
from smcp_box.errors import BoxError, PayloadTooLarge, QuotaExceeded
from smcp_box.protocol.errors import BodyTimeout
from smcp_box.protocol.http import jsonrpc_error_status, metric_method_label
from smcp_box.protocol.jsonrpc import RequestId, error_response
from smcp_box.protocol.versions import Era
from smcp_box.seams import Principal, RequestObserver, TenantRuntime
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

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def __getitem__(self, key: str) -> str:
        value = self._headers.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._headers.items():
            lowered = name.lower()
            if lowered not in seen:
                seen.add(lowered)
                yield lowered

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self._headers.items()})

    def lines(self) -> list[tuple[str, str]]:
        return list(self._headers.items())


class Observation:
    """One observer record per exchange: tenant, method, duration and error kind.

    Finished once: by the router for exchanges the box answers itself, or by the call task for
    requests forwarded to a module (so the duration covers the module's whole call).
    """

    def __init__(self, observer: RequestObserver) -> None:
        self._observer = observer
        self._started = time.perf_counter()
        self.tenant = UNKNOWN_TENANT_LABEL
        self.method = "none"
        self.error_kind: str | None = None
        #: Set when a call task owns finishing this record.
        self.deferred = False
        self._finished = False

    def set_method(self, method: str | None) -> None:
        self.method = metric_method_label(method)

    def finish(self, error_kind: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        kind = error_kind if error_kind is not None else self.error_kind
        self._observer.observe(self.tenant, self.method, time.perf_counter() - self._started, kind)


@dataclass
class Exchange:
    """One HTTP request to ``/t/<tenant>/mcp`` after the tenant and caller are known."""

    services: McpServices
    settings: TransportSettings
    hub: SessionHub
    #: Tenant-wide notifications (list changes, resource updates) and their subscribers.
    events: TenantEvents
    #: Tool input schemas for the Mcp-Param-* checks.
    schemas: ToolSchemas
    tenant: TenantRuntime
    principal: Principal
    headers: HeaderView
    source_ip: str | None
    observation: Observation
    #: Tasks started for this exchange that must outlive it (kept referenced by the hub).
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def tenant_name(self) -> str:
        return self.tenant.name

    @property
    def owner(self) -> str:
        """Who may use a session this exchange opens."""
        return f"{self.principal.method}:{self.principal.subject}"


# -- responses ---------------------------------------------------------------------------------


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    response = Response(text, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def accepted(headers: Mapping[str, str] | None = None) -> Response:
    """202 with no body: a notification or response the box took."""
    response = Response(b"", status=202)
    del response.headers["Content-Type"]
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def transport_error(
    error: BoxError,
    request_id: RequestId | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The exchange failed before its message was dispatched: the error's own HTTP status."""
    return json_response(error_response(request_id, error), error.http_status, headers)


def rpc_error(
    era: Era,
    request_id: RequestId,
    error: BoxError,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A dispatched request failed: a JSON-RPC error with the era's status for its code."""
    status = jsonrpc_error_status(era, error.jsonrpc_code)
    return json_response(error_response(request_id, error), status, headers)


def reply_response(era: Era, reply: dict[str, Any], headers: Mapping[str, str]) -> Response:
    """A module's (or the box's) reply to a request, as a JSON body."""
    status = 200
    error = reply.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        status = jsonrpc_error_status(era, error["code"])
    return json_response(reply, status, headers)


def sse_response(body: AsyncIterator[bytes], headers: Mapping[str, str] | None = None) -> Response:
    response = Response(body, status=200, headers={**SSE_HEADERS, **(headers or {})})
    # A stream lives as long as its call (or its session): Quart's send timeout must not end it.
    response.timeout = None
    return response


async def read_body(request: QuartRequest, limit: int, timeout_s: float) -> bytes:
    """Read the body chunk by chunk, never holding more than ``limit`` bytes (413 beyond)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"Payload too large: the body is {declared} bytes; the limit is {limit} bytes"
        )
    received = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
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
