"""Which requests the box answers itself, which it refuses, and which the module gets.

The box owns the transport, sessions, ping, logging levels and version discovery; a module only
ever sees the methods of its own server (tools, resources, prompts, completion, and client
notifications in the legacy era). Methods of one era are unknown in the other.
"""

from __future__ import annotations

import enum
from typing import Final

from smcp_box.errors import MethodNotFound
from smcp_box.protocol.versions import Era


class Route(enum.Enum):
    #: The box answers (legacy: ``initialize``, ``ping``, ``logging/setLevel``; modern:
    #: ``server/discover``, ``subscriptions/listen``).
    BOX = "box"
    #: The tenant module answers.
    MODULE = "module"


_BOX_METHODS: Final[dict[Era, frozenset[str]]] = {
    Era.LEGACY: frozenset({"initialize", "ping", "logging/setLevel"}),
    Era.MODERN: frozenset({"server/discover", "subscriptions/listen"}),
}

#: Methods that exist only in the other era (or that the box cannot offer), with the reason.
_REFUSED: Final[dict[Era, dict[str, str]]] = {
    Era.LEGACY: {
        "server/discover": "server/discover belongs to protocol 2026-07-28; "
        "send it with the 2026-07-28 envelope",
        "subscriptions/listen": "subscriptions/listen belongs to protocol 2026-07-28",
    },
    # The methods 2026-07-28 removed must be 404/-32601 there (the revision's conformance
    # suite checks each), even though the box answers them in the legacy era.
    Era.MODERN: {
        "initialize": "2026-07-28 has no initialize handshake; call server/discover, or "
        "send initialize without the 2026-07-28 envelope to open a legacy session",
        "ping": "2026-07-28 removed ping; any request (e.g. server/discover) shows liveness",
        "logging/setLevel": "2026-07-28 removed logging/setLevel; put "
        "io.modelcontextprotocol/logLevel in each request's _meta",
        "resources/subscribe": "2026-07-28 removed resources/subscribe; subscribe with "
        "subscriptions/listen (notifications.resourceSubscriptions)",
        "resources/unsubscribe": "2026-07-28 removed resources/unsubscribe; close the "
        "subscriptions/listen stream instead",
    },
}


def route_request(era: Era, method: str) -> Route:
    """Route one request, or raise :class:`MethodNotFound` (-32601) for a refused method."""
    reason = _REFUSED[era].get(method)
    if reason is not None:
        raise MethodNotFound(f"Method not found: {reason}")
    return Route.BOX if method in _BOX_METHODS[era] else Route.MODULE
