"""``create_app``: the one way to build the box's Quart application (CLI, tests and bench)."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, jsonify

from smcp_box import __version__
from smcp_box.box import Box
from smcp_box.errors import BoxError
from smcp_box.web.mcp import TransportSettings, create_mcp_blueprint


def create_app(box: Box) -> Quart:
    settings = box.settings
    app = Quart("smcp_box")
    # The MCP blueprint enforces its own body limit while streaming the body in; this is the
    # backstop for every other route.
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    transport = TransportSettings(
        max_body_bytes=settings.server.max_body_bytes,
        allowed_origins=settings.server.allowed_origins,
        sse_keepalive_s=settings.server.sse_keepalive_s,
    )
    app.register_blueprint(create_mcp_blueprint(box.mcp_services(), transport))

    @app.get("/healthz")
    async def healthz() -> Any:
        return jsonify({"status": "ok", "version": __version__})

    @app.get("/readyz")
    async def readyz() -> Any:
        problems: list[str] = []
        try:
            await box.store.healthcheck()
        except BoxError as exc:
            problems.append(f"database: {exc.message}")
        if not box.sandbox.ticker_alive():
            problems.append("sandbox: the wall-clock ticker is not running")
        body = {"status": "ok" if not problems else "unavailable", "problems": problems}
        return jsonify(body), (200 if not problems else 503)

    @app.errorhandler(BoxError)
    async def box_error(exc: BoxError) -> Response:
        response = jsonify({"error": exc.kind, "message": exc.message})
        response.status_code = exc.http_status
        return response

    return app
