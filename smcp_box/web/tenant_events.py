"""Delivery of tenant-wide notifications: list changes and resource updates.

Modules emit them through ``notify`` during any call (:func:`smcp_box.web.mcp_calls.make_sink`
routes them here instead of onto the caller's stream). This hub sends each to

* the tenant's open ``subscriptions/listen`` streams (2026-07-28) whose filter asked for it,
  tagged with that stream's subscription id, and
* the attached standalone GET streams of the tenant's handshake-era sessions (list changes to
  all, resource updates only to sessions subscribed to the URI), persisted like every frame
  there,

and forgets the tenant's cached tool schemas on a tool-list change. Delivery is in-process, like
live resume: a box with several worker processes would need a shared bus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from smcp_box.protocol.jsonrpc import RequestId, result_response
from smcp_box.protocol.subscriptions import (
    RESOURCE_UPDATED,
    SubscriptionFilter,
    event_uri,
    listen_result,
    tagged,
)
from smcp_box.seams import JsonObject
from smcp_box.web.streams import ResponseStream, SessionHub
from smcp_box.web.tool_schemas import ToolSchemas

log = logging.getLogger("smcp_box.web.mcp")


@dataclass(eq=False)
class Listener:
    """One open ``subscriptions/listen`` stream."""

    tenant: str
    listen_id: RequestId
    granted: SubscriptionFilter
    stream: ResponseStream = field(repr=False)


class TenantEvents:
    def __init__(self, sessions: SessionHub, schemas: ToolSchemas) -> None:
        self._sessions = sessions
        self._schemas = schemas
        self._listeners: dict[str, set[Listener]] = {}

    def add_listener(self, listener: Listener) -> None:
        self._listeners.setdefault(listener.tenant, set()).add(listener)

    def remove_listener(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.tenant)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.tenant]

    def listener_count(self, tenant: str) -> int:
        return len(self._listeners.get(tenant, ()))

    async def publish(self, tenant: str, message: JsonObject) -> None:
        """Deliver one tenant notification to everyone subscribed to it here."""
        method = message.get("method")
        if method == "notifications/tools/list_changed":
            self._schemas.invalidate(tenant)
        uri = event_uri(message) if method == RESOURCE_UPDATED else None
        if method == RESOURCE_UPDATED and uri is None:
            log.warning("tenant %s: dropped a resources/updated without a uri", tenant)
            return
        for listener in list(self._listeners.get(tenant, ())):
            if listener.granted.matches(message):
                await listener.stream.notify(tagged(message, listener.listen_id))
        await self._sessions.broadcast(tenant, message, uri)

    async def aclose(self) -> None:
        """End every listen stream gracefully: its result, then the end of the stream."""
        listeners = [listener for group in self._listeners.values() for listener in group]
        self._listeners.clear()
        for listener in listeners:
            reply = result_response(listener.listen_id, listen_result(listener.listen_id))
            await listener.stream.finish(reply)
