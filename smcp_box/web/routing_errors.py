"""Requests refused before any route runs: a Host werkzeug cannot bind, a method no route takes.

Quart binds its URL adapter to the request's ``Host`` while it builds the request context,
before any error handler can run, so a Host whose IDNA encoding fails (an empty label as in
``..``, a label over 63 characters) raised werkzeug's ``BadHost`` out of the application: a
500 and a traceback. :class:`BoxQuart` binds such a request to an adapter whose only answer is
``BadHost``, so it becomes an ordinary routing error (RFC 9112 §3.2: a Host with an invalid
value gets 400).

Routing errors on the MCP endpoint's paths (``/mcp``, ``/t/<tenant>/mcp``) are answered the way
every other refusal there is: a JSON-RPC error body with ``id`` null, so a client reads every
refusal the same way. Elsewhere they keep Quart's own answer.
"""

from __future__ import annotations

import re
from typing import Any, Final

from quart import Quart, Response, request
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import BadHost, HTTPException
from werkzeug.exceptions import MethodNotAllowed as RoutingMethodNotAllowed
from werkzeug.routing import Map, MapAdapter

from smcp_box.errors import BoxError, InvalidHost, MethodNotAllowed
from smcp_box.protocol.error_replies import Stage
from smcp_box.web.mcp_context import error_response

_MCP_PATH: Final = re.compile(r"/(?:t/[^/]+/)?mcp")
_BAD_HOST_MESSAGE: Final = (
    "Bad request: the Host header is not a valid host name (each dot-separated label must be "
    "1 to 63 characters)"
)


class _BadHostAdapter(MapAdapter):
    """Matches nothing: every request bound to it is refused with ``BadHost`` (400)."""

    def match(self, *args: Any, **kwargs: Any) -> Any:
        raise BadHost(description=_BAD_HOST_MESSAGE)


class BoxQuart(Quart):
    """Quart, with a request whose Host cannot be bound refused by routing, not by a crash."""

    def create_url_adapter(self, request: BaseRequestWebsocket | None) -> MapAdapter | None:
        try:
            return super().create_url_adapter(request)
        except BadHost:
            if request is None:
                raise
            return _bad_host_adapter(self.url_map, request)


def _bad_host_adapter(url_map: Map, request: BaseRequestWebsocket) -> MapAdapter:
    return _BadHostAdapter(
        url_map,
        server_name="host.invalid",
        script_name="/",
        subdomain=None,
        url_scheme=request.scheme,
        path_info=request.path,
        default_method=request.method,
    )


def is_mcp_path(path: str) -> bool:
    return _MCP_PATH.fullmatch(path) is not None


def register_routing_errors(app: Quart) -> None:
    """Answer routing errors on the MCP endpoint's paths with JSON-RPC error bodies."""

    @app.errorhandler(BadHost)
    async def bad_host(exc: BadHost) -> Response | HTTPException:
        return _refusal(exc, InvalidHost(_BAD_HOST_MESSAGE), {})

    @app.errorhandler(RoutingMethodNotAllowed)
    async def method_not_allowed(exc: RoutingMethodNotAllowed) -> Response | HTTPException:
        allowed = ", ".join(sorted(exc.valid_methods or ()))
        error = MethodNotAllowed(
            f"Method not allowed: the MCP endpoint takes {allowed} (this was {request.method})"
        )
        return _refusal(exc, error, {"Allow": allowed})


def _refusal(
    exc: HTTPException, error: BoxError, headers: dict[str, str]
) -> Response | HTTPException:
    if not is_mcp_path(request.path):
        return exc
    return error_response(error, stage=Stage.EXCHANGE, headers=headers).to_quart()
