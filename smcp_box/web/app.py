"""``create_app``: the one way to build the box's Quart application (CLI, tests and bench)."""

from __future__ import annotations

import html
import logging
import time
from typing import Any, Final

from quart import Quart, Response, g, jsonify, request

from smcp_box import __version__
from smcp_box.config import Settings
from smcp_box.errors import BoxError
from smcp_box.logs import request_id_var
from smcp_box.web import h2_guard, http1
from smcp_box.web.box_header import BoxHeaderMiddleware, box_header_line
from smcp_box.web.catalog import create_catalog_blueprint
from smcp_box.web.connections import EXTENSION_KEY as CONNECTIONS_KEY
from smcp_box.web.connections import ConnectionGuard, StreamCapMiddleware
from smcp_box.web.mcp import EXTENSION_KEY as MCP_KEY
from smcp_box.web.mcp import create_mcp_blueprint, transport_settings
from smcp_box.web.mcp_asgi import LeanMcpPath
from smcp_box.web.metrics_endpoint import create_metrics_blueprint
from smcp_box.web.oauth import create_oauth_blueprint
from smcp_box.web.oauth_resource import create_oauth_resource_blueprint
from smcp_box.web.request_log import REQUEST_ID_HEADER, choose_request_id, log_access
from smcp_box.web.routing_errors import BoxQuart, register_routing_errors
from smcp_box.web.services import AppServices

logger = logging.getLogger("smcp_box.web")
#: ``app.config`` key of the access-log switch; SIGHUP sets it (ops/reload.py).
ACCESS_LOG_KEY: Final = "SMCP_BOX_ACCESS_LOG"


def create_app(settings: Settings, services: AppServices) -> Quart:
    # Hypercorn's HTTP/2 protocol, made to survive two client inputs (see h2_guard).
    h2_guard.install()
    # HTTP/1.1 parsed by llhttp instead of h11 (see http1): the same server, less CPU per request.
    http1.install()
    app = BoxQuart("smcp_box")
    # The MCP blueprint enforces its own body limit while streaming the body in; this is the
    # backstop for every other route.
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    # The body deadline of every route that reads a body through Quart (the MCP blueprint
    # applies the same setting to its own read).
    app.config["BODY_TIMEOUT"] = settings.server.body_timeout_s
    guard = services.connections or ConnectionGuard(settings.server)
    app.extensions[CONNECTIONS_KEY] = guard
    app.config[ACCESS_LOG_KEY] = settings.server.access_log
    app.register_blueprint(
        create_mcp_blueprint(
            services.mcp, transport_settings(settings), oauth_issuer=settings.oauth.issuer
        )
    )
    # The MCP endpoint's POSTs skip Quart's per-request machinery (see mcp_asgi): the 408 count
    # and the Smcp-Box header are the lean path's own there (one ASGI layer per request, not
    # three), and middleware around Quart for every other request.
    quart_app: Any = StreamCapMiddleware(app.asgi_app, guard)
    box_header = None
    if settings.cluster.box_header:
        box_header = box_header_line(services.mcp.box_id)
        quart_app = BoxHeaderMiddleware(quart_app, services.mcp.box_id)
    app.asgi_app = LeanMcpPath(  # type: ignore[method-assign]
        quart_app,
        app.extensions[MCP_KEY],
        app.config,
        ACCESS_LOG_KEY,
        guard=guard,
        box_header=box_header,
    )
    app.register_blueprint(
        create_oauth_resource_blueprint(
            services.mcp.tenants, services.tokens, oauth_issuer=settings.oauth.issuer
        )
    )
    app.register_blueprint(
        create_metrics_blueprint(services.metrics_snapshot, services.metrics_token)
    )
    if services.oauth is not None:
        app.register_blueprint(create_oauth_blueprint(services.oauth))
    register_routing_errors(app)
    if services.catalog_tenants is not None and services.catalog_authenticator is not None:
        app.register_blueprint(
            create_catalog_blueprint(
                services.catalog_tenants,
                services.catalog_authenticator,
                realm=settings.server.auth_realm,
                oauth_issuer=settings.oauth.issuer,
            )
        )

    @app.before_request
    async def assign_request_id() -> None:
        # Set in the request's own context: the handler, the log lines and the call tasks it
        # starts (which copy the context) all carry it.
        chosen = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
        request_id_var.set(chosen)
        g.smcp_started = time.perf_counter()
        if logger.isEnabledFor(logging.DEBUG):
            # Method and path only: headers and bodies carry credentials and session ids.
            logger.debug("%s %s from %s", request.method, request.path, request.remote_addr)

    @app.after_request
    async def echo_request_id(response: Response) -> Response:
        request_id = request_id_var.get()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        if app.config[ACCESS_LOG_KEY]:
            _log_access(response)
        return response

    @app.get("/healthz")
    async def healthz() -> Any:
        return jsonify({"status": "ok", "version": __version__})

    @app.get("/")
    async def landing() -> Any:
        # Says what this is to whoever opens the box's address, without naming any tenant:
        # the list of tenants is for credential holders (and admins), not for the LAN.
        body = {
            "name": "smcp-box",
            "version": __version__,
            "what": "MCP servers hosted for this network, one endpoint per tenant",
            "mcp_endpoint": "/t/<tenant>/mcp",
            "health": "/healthz",
            "docs": "README.md and docs/ of the smcp-box package; `smcp-box --help` on the box",
        }
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            return Response(_landing_html(body), content_type="text/html; charset=utf-8")
        return jsonify(body)

    @app.get("/readyz")
    async def readyz() -> Any:
        problems = await services.readiness()
        body = {"status": "ok" if not problems else "unavailable", "problems": problems}
        return jsonify(body), (200 if not problems else 503)

    @app.errorhandler(BoxError)
    async def box_error(exc: BoxError) -> Response:
        response = jsonify({"error": exc.kind, "message": exc.message})
        response.status_code = exc.http_status
        return response

    return app


def _log_access(response: Response) -> None:
    started = getattr(g, "smcp_started", None)
    tenant = g.get("smcp_tenant") or (request.view_args or {}).get("tenant")
    log_access(
        method=request.method,
        path=request.path,
        status=response.status_code,
        size=response.content_length,
        duration_ms=(time.perf_counter() - started) * 1000 if started is not None else 0.0,
        client=request.remote_addr,
        tenant=tenant if isinstance(tenant, str) else None,
    )


def _landing_html(body: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
        for key, value in body.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>smcp-box {html.escape(__version__)}</title></head>"
        f"<body><h1>smcp-box</h1><table>{rows}</table>"
        "<p>Connect an MCP client to <code>/t/&lt;tenant&gt;/mcp</code> with the key or sign-in "
        "your admin gave you.</p></body></html>\n"
    )
