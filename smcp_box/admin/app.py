"""``create_admin_app``: the admin API's Quart app, served only on the admin socket (and,
optionally, a TCP port guarded by a token), never on the LAN port of the MCP app."""

from __future__ import annotations

import hmac
import logging

from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from smcp_box.admin.approval_routes import approval_routes
from smcp_box.admin.blob_routes import blob_routes
from smcp_box.admin.context import AdminContext, json_response
from smcp_box.admin.fleet_routes import fleet_routes
from smcp_box.admin.oauth_routes import oauth_routes
from smcp_box.admin.routes import keys_sessions_audit_routes
from smcp_box.admin.secret_routes import catalog_routes, secret_routes
from smcp_box.admin.status import status_metrics_routes
from smcp_box.admin.tenant_routes import tenant_routes
from smcp_box.admin.user_routes import user_routes
from smcp_box.box import Box
from smcp_box.errors import AdminUnauthorized, BoxError

logger = logging.getLogger("smcp_box.admin")

#: Largest admin request: a tenant module upload, base64-encoded.
MAX_ADMIN_BODY_BYTES = 96 * 1024 * 1024


def create_admin_app(box: Box, *, token: str | None = None) -> Quart:
    """The admin app. With ``token`` every request must carry ``Authorization: Bearer <token>``
    (for TCP); without it, the socket's file permissions are the only credential."""
    app = Quart("smcp_box.admin")
    app.config["MAX_CONTENT_LENGTH"] = MAX_ADMIN_BODY_BYTES
    ctx = AdminContext(box, "tcp" if token is not None else "socket")

    if token is not None:
        expected = f"Bearer {token}".encode()

        @app.before_request
        async def require_token() -> None:
            offered = request.headers.get("authorization", "").encode()
            # Constant-time, so that response timing does not reveal a prefix of the token.
            if not hmac.compare_digest(offered, expected):
                await box.auditor.record(
                    "admin.auth_failure",
                    tenant=None,
                    actor="anonymous",
                    source_ip=request.remote_addr,
                    outcome="denied",
                    detail={"path": request.path},
                )
                raise AdminUnauthorized(
                    "the admin API on TCP needs 'Authorization: Bearer <admin token>'"
                )

    app.register_blueprint(tenant_routes(ctx))
    app.register_blueprint(keys_sessions_audit_routes(ctx))
    app.register_blueprint(status_metrics_routes(ctx))
    app.register_blueprint(user_routes(ctx))
    app.register_blueprint(oauth_routes(ctx))
    app.register_blueprint(secret_routes(ctx))
    app.register_blueprint(catalog_routes(ctx))
    app.register_blueprint(approval_routes(ctx))
    app.register_blueprint(blob_routes(ctx))
    app.register_blueprint(fleet_routes(ctx))

    async def audit_failure(kind: str, message: str) -> None:
        if g.get("audit_event"):
            await ctx.audit(outcome="error", error=kind, message=message)

    @app.errorhandler(BoxError)
    async def box_error(exc: BoxError) -> Response:
        # Bad manifests and limits are the admin's input: ConfigError is a 400 ("invalid").
        await audit_failure(exc.kind, exc.message)
        return json_response({"error": exc.kind, "message": exc.message}, exc.http_status)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = {
            404: f"no admin API route {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request body is larger than {MAX_ADMIN_BODY_BYTES} bytes",
        }.get(status, exc.description or exc.name)
        await audit_failure("http", message)
        return json_response({"error": "http", "message": message}, status)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        logger.exception("admin request %s %s failed", request.method, request.path)
        message = f"internal error ({type(exc).__name__}); see the box's log"
        await audit_failure("internal", message)
        return json_response({"error": "internal", "message": message}, 500)

    return app
