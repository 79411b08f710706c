"""The MCP Streamable HTTP endpoint, ``POST|GET|DELETE /t/<tenant>/mcp``, for both eras.

The same endpoint answers at ``/mcp`` for a tenant that lists the request's host name in its
tenant.toml ``hosts`` (``Host`` header, port dropped; HTTP/2 ``:authority``): the tenant comes
from :meth:`~smcp_box.seams.TenantDirectory.by_host` instead of the path, and everything after
that is the same exchange.

Order of checks, each answering with a JSON-RPC error body (``id`` null unless known):

1. ``Origin`` (DNS-rebinding protection): 403 when present and not allowed (``allowed_origins``,
   loopback, or ``https://`` on one of the tenant's own ``hosts``).
2. Tenant: 404 unknown (at ``/mcp``: no tenant has this host name), 503 disabled.
3. Credential (``services.authenticator``, given the request's resource URL from
   :func:`smcp_box.auth.urls.request_resource_url`): 401 with ``WWW-Authenticate: Bearer …``,
   which for an ``oauth``/``both`` tenant names its protected resource metadata and the scopes
   it offers; every failure is audited as ``auth.failure``.
4. POST: ``Accept`` must take both JSON and SSE (406); ``Content-Type`` must be JSON (415); the
   body is read up to ``max_body_bytes`` (413); it must be JSON (400, -32700) and one JSON-RPC
   message (400, -32600). The era comes from ``MCP-Protocol-Version`` and the body's ``_meta``
   (400, -32022, for a version the box does not serve).
5. GET/DELETE: the era comes from the header alone; 2026-07-28 has neither (405, ``Allow: POST``).

Then :mod:`smcp_box.web.mcp_modern` or :mod:`smcp_box.web.mcp_legacy` take over. Every exchange
is reported once to ``services.observer``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from quart import Blueprint, Response, g
from quart import request as quart_request

from smcp_box.auth.scopes import ALL_SCOPES, check_scope
from smcp_box.auth.urls import protected_resource_metadata_url, request_resource_url
from smcp_box.errors import (
    AuthError,
    Forbidden,
    InsufficientScope,
    MethodNotAllowed,
    NotAcceptable,
    OriginNotAllowed,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTooLarge,
    TenantDisabled,
    TenantNotFound,
    UnsupportedMediaType,
)
from smcp_box.protocol.error_replies import Stage, error_reply
from smcp_box.protocol.http import (
    accepts,
    bearer_challenge,
    client_address,
    host_name,
    https_origin_host,
    is_json_content_type,
    origin_allowed,
)
from smcp_box.protocol.jsonrpc import Request, RequestId, decode_json, parse_message
from smcp_box.protocol.modern import PROTOCOL_VERSION_HEADER
from smcp_box.protocol.versions import Era, select_era
from smcp_box.seams import Principal, TenantRuntime
from smcp_box.web import mcp_legacy, mcp_modern
from smcp_box.web.blob_resources import follow_blob_changes
from smcp_box.web.deadlines import Deadlines
from smcp_box.web.mcp_context import (
    Endpoint,
    Exchange,
    HeaderView,
    HttpRequest,
    McpResponse,
    Observation,
    TransportSettings,
    audit_refusal,
    json_response,
    read_body,
    transport_settings,
)
from smcp_box.web.services import McpServices
from smcp_box.web.streams import SessionHub
from smcp_box.web.tenant_events import TenantEvents
from smcp_box.web.tool_schemas import ToolSchemas

__all__ = ["McpTransport", "TransportSettings", "create_mcp_blueprint", "transport_settings"]

log = logging.getLogger("smcp_box.web.mcp")

#: Where ``create_mcp_blueprint`` registers its transport in ``app.extensions``.
EXTENSION_KEY = "smcp_box.mcp"


class McpTransport:
    """The endpoint's state: injected services, settings, and live legacy-session streams."""

    def __init__(
        self, services: McpServices, settings: TransportSettings, *, oauth_issuer: str = ""
    ) -> None:
        self.services = services
        self._settings = settings
        #: ``[oauth] issuer``: the base of resource URLs when set (see auth/urls.py).
        self.oauth_issuer = oauth_issuer
        self.hub = SessionHub()
        #: The body read's and the lean path's reply send's deadlines.
        self.deadlines = Deadlines()
        self.schemas = ToolSchemas()
        self.events = TenantEvents(self.hub, self.schemas, services.changes)
        self.endpoint = Endpoint(services, settings, self.hub, self.events, self.schemas)

    @property
    def settings(self) -> TransportSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: TransportSettings) -> None:
        """A reload's new ``[server]`` settings: exchanges that start from now on see them."""
        self._settings = settings
        self.endpoint = replace(self.endpoint, settings=settings)

    async def close_idle_streams(self) -> None:
        """End idle GET streams so a graceful stop waits only for calls in flight."""
        await self.hub.close_standalone_streams()

    async def aclose(self) -> None:
        """Cancel calls in flight and end open streams (call before the server drains)."""
        await self.events.aclose()
        await self.hub.aclose()

    async def handle(self, tenant_name: str | None, request: HttpRequest) -> McpResponse:
        """Serve one request for ``tenant_name``, or (None) for the tenant of the Host header."""
        observation = Observation(self.services.observer)
        headers = request.headers
        request_id: RequestId | None = None
        source_ip: str | None = request.remote_addr
        # An HTTP/1.1 request answered before its body is read leaves unread bytes on the
        # connection, so the server must close it; saying so stops a keep-alive client from
        # sending its next request into that close. (HTTP/2 streams are independent.)
        body_pending = request.method == "POST" and request.http_version.startswith("1")
        tenant: TenantRuntime | None = None
        resource = self._resource_url(tenant_name, request)
        try:
            found = self._lookup(tenant_name, headers)
            if not self._origin_ok(headers.get("origin"), found):
                raise OriginNotAllowed(
                    "Forbidden: this Origin is not allowed (add it to allowed_origins)"
                )
            tenant = self._tenant(found, tenant_name)
            tenant_name = tenant.name
            observation.tenant = tenant.name
            request.tenant = tenant.name
            source_ip = client_address(
                request.remote_addr, headers.get("x-forwarded-for"), self.settings.trusted_proxies
            )
            admission = self.services.admission
            admission.check_address(tenant.name, source_ip)
            principal = await self._authenticate(tenant, request, source_ip, resource)
            admission.admit_request(tenant.name)
            exchange = Exchange(
                endpoint=self.endpoint,
                tenant=tenant,
                principal=principal,
                headers=headers,
                source_ip=source_ip,
                observation=observation,
            )
            header_version = headers.get(PROTOCOL_VERSION_HEADER)
            if request.method != "POST":
                observation.method = request.method
                if select_era(header_version) is Era.MODERN:
                    raise MethodNotAllowed(
                        "Method not allowed: protocol 2026-07-28 has no GET stream and no "
                        "sessions; POST each request"
                    )
                if request.method == "GET":
                    return await mcp_legacy.handle_get(exchange, header_version)
                return await mcp_legacy.handle_delete(exchange, header_version)

            self._check_post_headers(headers)
            body = await self._read_body(tenant, request)
            body_pending = False
            decoded = decode_json(body)
            message = parse_message(decoded)
            # Known only now: JSON-RPC answers a body that is not a valid request with id null.
            request_id = message.id if isinstance(message, Request) else None
            method = getattr(message, "method", None)
            observation.set_method(method)
            if isinstance(method, str):
                check_scope(principal, method)
            era = select_era(header_version, decoded)
            if era is Era.MODERN:
                return await mcp_modern.handle_post(exchange, message, header_version)
            return await mcp_legacy.handle_post(exchange, message, header_version)
        except Exception as err:
            # Everything not answered by an era handler ends here: the exchange stage.
            extra: dict[str, str] = {}
            if isinstance(err, AuthError):
                extra["WWW-Authenticate"] = self._challenge(err, headers, tenant, resource)
                request_id = None  # a refusal of the caller, not an answer to its request
            elif isinstance(err, QuotaExceeded):
                await audit_refusal(self.services, err, tenant_name, source_ip)
                if isinstance(err, RateLimited) and tenant_name is not None:
                    await self._hold_refusal(tenant_name)
            reply = error_reply(err, stage=Stage.EXCHANGE, request_id=request_id)
            observation.error_kind = reply.kind
            return json_response(
                reply.body, reply.status, _closing({**reply.headers, **extra}, body_pending)
            )
        finally:
            if not observation.handed_over:
                observation.finish()

    async def _read_body(self, tenant: TenantRuntime, request: HttpRequest) -> bytes:
        """The request body, within the box's max_body_bytes and the tenant's own
        max_message_bytes (a quota: 413, counted and audited)."""
        box_limit = self.settings.max_body_bytes
        limit = min(box_limit, tenant.max_request_bytes)
        try:
            return await read_body(request, limit, self.settings.body_timeout_s, self.deadlines)
        except PayloadTooLarge:
            if limit == box_limit:
                raise
            raise RequestTooLarge(
                f"Payload too large: tenant {tenant.name!r} takes requests of at most {limit} "
                "bytes ([limits] max_message_bytes in its tenant.toml); send less",
                quota="max_message_bytes",
            ) from None

    def _lookup(self, name: str | None, headers: HeaderView) -> TenantRuntime | None:
        if name is not None:
            return self.services.tenants.get(name)
        host = host_name(headers.get("host"))
        return self.services.tenants.by_host(host) if host is not None else None

    def _origin_ok(self, origin: str | None, tenant: TenantRuntime | None) -> bool:
        if origin_allowed(origin, self.settings.allowed_origins):
            return True
        # A tenant's own host names are its origins (https, any port); they say nothing about
        # any other tenant, so the origin must name this very one.
        host = https_origin_host(origin)
        if tenant is None or host is None:
            return False
        owner = self.services.tenants.by_host(host)
        return owner is not None and owner.name == tenant.name

    @staticmethod
    def _tenant(tenant: TenantRuntime | None, name: str | None) -> TenantRuntime:
        if tenant is None:
            if name is None:
                # The Host is the client's own; not echoed all the same, and no tenant named.
                raise TenantNotFound(
                    "Not found: no tenant is served at this host name; "
                    "use /t/<tenant>/mcp or a host name listed in a tenant's hosts"
                )
            raise TenantNotFound(f"Not found: there is no tenant {name!r} on this box")
        if not tenant.enabled:
            raise TenantDisabled(f"Service unavailable: tenant {tenant.name!r} is disabled")
        return tenant

    def _resource_url(self, tenant_name: str | None, request: HttpRequest) -> str | None:
        """The URL this request was made to, as an access token's ``aud`` must name it."""
        try:
            return request_resource_url(
                self.oauth_issuer, request.scheme, request.headers.get("host") or "", tenant_name
            )
        except ValueError:
            return None

    async def _hold_refusal(self, tenant_name: str) -> None:
        """Hold a rate refusal of a tenant that keeps sending past its rate (see
        :data:`smcp_box.tenancy.quotas.REFUSAL_HOLD_S`): a sleeping task costs the loop
        nothing, where answering at once invites the next request of the flood at once. The
        answer itself is unchanged; a client leaving meanwhile cancels the hold."""
        hold = self.services.admission.refusal_hold_s(tenant_name)
        if hold > 0:
            await asyncio.sleep(hold)

    async def _authenticate(
        self,
        tenant: TenantRuntime,
        request: HttpRequest,
        source_ip: str | None,
        resource: str | None,
    ) -> Principal:
        headers = request.headers
        try:
            return await self.services.authenticator.authenticate(
                tenant, headers, source_ip, resource
            )
        except AuthError as err:
            # Counted per address: past [quotas] auth_failures_per_ip the address is locked out.
            self.services.admission.auth_failed(source_ip)
            # The audit row says why and from where, never what credential was offered.
            await self.services.auditor.record(
                "auth.failure",
                tenant=tenant.name,
                actor="anonymous",
                source_ip=source_ip,
                outcome="denied",
                detail={
                    "reason": err.message,
                    "http_method": request.method,
                    "credential_present": headers.get("authorization") is not None,
                },
            )
            raise

    def _challenge(
        self,
        err: AuthError,
        headers: HeaderView,
        tenant: TenantRuntime | None,
        resource: str | None,
    ) -> str:
        """RFC 6750: no error code when no credential was sent, ``invalid_token`` for a bad one,
        ``insufficient_scope`` for a valid one that may not do this (403).

        For a tenant that takes OAuth, ``resource_metadata`` (RFC 9728) is where an MCP client
        starts signing in, and ``scope`` (on a 401) what to ask for: every scope it offers.
        """
        error: str | None = None
        if isinstance(err, Forbidden):
            error = "insufficient_scope"
        elif headers.get("authorization"):
            error = "invalid_token"
        oauth = tenant is not None and tenant.auth_mode in ("oauth", "both")
        scope: str | None = None
        if isinstance(err, InsufficientScope):
            scope = err.scope
        elif oauth:
            scope = " ".join(ALL_SCOPES)
        return bearer_challenge(
            realm=self.settings.auth_realm,
            error=error,
            description=err.message,
            resource_metadata=self._resource_metadata(tenant, resource, oauth=oauth),
            scope=scope,
        )

    @staticmethod
    def _check_post_headers(headers: HeaderView) -> None:
        wants_json, wants_sse = accepts(headers.get("accept"))
        if not (wants_json and wants_sse):
            raise NotAcceptable(
                "Not acceptable: Accept must list both application/json and text/event-stream"
            )
        if not is_json_content_type(headers.get("content-type")):
            raise UnsupportedMediaType(
                "Unsupported media type: Content-Type must be application/json"
            )

    def _resource_metadata(
        self, tenant: TenantRuntime | None, resource: str | None, *, oauth: bool
    ) -> str | None:
        """``[server] resource_metadata_url`` when set; else, for a tenant that takes OAuth,
        the box's own metadata URL for this request's resource; else none."""
        template = self.settings.resource_metadata_url
        if tenant is None:
            return None
        if template:
            return template.replace("{tenant}", tenant.name)
        if oauth and resource is not None:
            return protected_resource_metadata_url(resource)
        return None


def create_mcp_blueprint(
    services: McpServices, settings: TransportSettings, *, oauth_issuer: str = ""
) -> Blueprint:
    """The MCP endpoint as a blueprint; its :class:`McpTransport` is put in
    ``app.extensions["smcp_box.mcp"]`` so the server can ``aclose()`` it on shutdown."""
    transport = McpTransport(services, settings, oauth_issuer=oauth_issuer)
    stop_following_blobs = follow_blob_changes(services.blob_changes, transport.events)
    blueprint = Blueprint("mcp", __name__)

    # Most POSTs never get here: the lean ASGI path (mcp_asgi) serves them in front of Quart.
    # These routes serve GET and DELETE, and POSTs under an ASGI root path.
    @blueprint.route("/t/<tenant>/mcp", methods=["POST", "GET", "DELETE"])
    async def mcp_endpoint(tenant: str) -> Response:
        return await _handle_quart_request(transport, tenant)

    @blueprint.route("/mcp", methods=["POST", "GET", "DELETE"])
    async def mcp_host_endpoint() -> Response:
        return await _handle_quart_request(transport, None)

    @blueprint.record_once
    def register(state: Any) -> None:
        state.app.extensions[EXTENSION_KEY] = transport

    @blueprint.after_app_serving
    async def shutdown() -> None:
        stop_following_blobs()
        await transport.aclose()

    return blueprint


async def _handle_quart_request(transport: McpTransport, tenant_name: str | None) -> Response:
    http = HttpRequest(
        method=quart_request.method,
        http_version=quart_request.http_version,
        scheme=quart_request.scheme,
        remote_addr=quart_request.remote_addr,
        headers=HeaderView(list(quart_request.headers.items())),
        body=quart_request.body,
    )
    try:
        return (await transport.handle(tenant_name, http)).to_quart()
    finally:
        # For the access log, which runs after the handler.
        if http.tenant is not None:
            g.smcp_tenant = http.tenant


def _closing(headers: dict[str, str], body_pending: bool) -> dict[str, str]:
    return {**headers, "Connection": "close"} if body_pending else headers
