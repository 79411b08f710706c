"""The ``Smcp-Box`` header: every HTTP response names the box that sent it.

In a fleet behind a load balancer this tells an admin (and a test) which box answered, from
any response: MCP replies on both the lean path and Quart's, OAuth pages, health checks,
metrics, errors and 404s alike. The middleware wraps Quart's app; the lean MCP path in front
of it (:mod:`smcp_box.web.mcp_asgi`) adds the same header to the replies it writes itself, so
the POSTs nearly every request is do not pay for a wrapped ``send``. ``[cluster]
box_header = false`` leaves it out (create_app then does not install this at all).
"""

from __future__ import annotations

from typing import Any, Final

BOX_HEADER: Final = b"smcp-box"


def box_header_line(box_id: str) -> tuple[bytes, bytes]:
    """The header as an ASGI (name, value) pair. A box id is 1-32 letters, digits or
    underscores (config.BOX_ID_PATTERN): header-safe."""
    return (BOX_HEADER, box_id.encode("ascii"))


class BoxHeaderMiddleware:
    """Adds ``Smcp-Box: <box_id>`` to the start of every HTTP response of ``app``."""

    def __init__(self, app: Any, box_id: str) -> None:
        self.app = app
        self.box_id = box_id
        self._header = box_header_line(box_id)

    # Typed loosely like StreamCapMiddleware: Quart types its messages with its own TypedDicts.
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        header = self._header

        async def named(message: Any) -> None:
            if message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, named)
