"""Delivery of tenant-wide notifications: list changes and resource updates.

Modules emit them through ``notify`` during any call (:func:`smcp_box.web.mcp_calls.make_sink`
routes them here instead of onto the caller's stream). This hub sends each to

* the tenant's open ``subscriptions/listen`` streams (2026-07-28) whose filter asked for it,
  tagged with that stream's subscription id, and
* the attached standalone GET streams of the tenant's handshake-era sessions (list changes to
  all, resource updates only to sessions subscribed to the URI), persisted like every frame
  there,

and forgets the tenant's cached tool schemas on a tool-list change.

Given the box's change feed, each notification is also announced to the other boxes sharing
the store (``list_changed``: ``<tenant>\t<tools|prompts|resources>``; ``resource_updated``:
``<tenant>\t<uri>``), and what other boxes announce is delivered here the same way, so a
client's streams hear a tenant's changes whichever box made them. Only the method and the URI
cross: the notification is rebuilt from them on the other boxes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from smcp_box.protocol.jsonrpc import JSONRPC_VERSION, RequestId, result_response
from smcp_box.protocol.subscriptions import (
    LIST_CHANGED,
    RESOURCE_UPDATED,
    SubscriptionFilter,
    event_uri,
    listen_result,
    tagged,
)
from smcp_box.seams import Change, ChangeFeed, JsonObject
from smcp_box.store.changes import TOPIC_LIST_CHANGED, TOPIC_RESOURCE_UPDATED
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


#: ``tools`` -> ``notifications/tools/list_changed``, and so on.
_LIST_METHODS = {kind: method for method, (_, kind) in LIST_CHANGED.items()}


class TenantEvents:
    def __init__(
        self, sessions: SessionHub, schemas: ToolSchemas, changes: ChangeFeed | None = None
    ) -> None:
        self._sessions = sessions
        self._schemas = schemas
        self._listeners: dict[str, set[Listener]] = {}
        self._changes = changes
        self._delivering: set[asyncio.Task[None]] = set()
        self._stops: list[Callable[[], None]] = []
        if changes is not None:
            self._stops = [
                changes.subscribe(TOPIC_LIST_CHANGED, self._heard),
                changes.subscribe(TOPIC_RESOURCE_UPDATED, self._heard),
            ]

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
        """Deliver one tenant notification to everyone subscribed to it here, and announce
        it to the other boxes."""
        await self._deliver(tenant, message)
        if self._changes is None:
            return
        announced = _announcement(tenant, message)
        if announced is None:
            return
        topic, payload = announced
        try:
            await self._changes.publish(topic, payload)
        except ValueError:
            log.warning("tenant %s: a notification too large to announce stayed here", tenant)

    def _heard(self, change: Change) -> None:
        """A notification another box announced (this box's own were delivered already)."""
        if self._changes is None or change.origin == self._changes.box_id:
            return
        tenant, _, detail = change.payload.partition("\t")
        message: JsonObject
        if change.topic == TOPIC_RESOURCE_UPDATED:
            message = {
                "jsonrpc": JSONRPC_VERSION,
                "method": RESOURCE_UPDATED,
                "params": {"uri": detail},
            }
        elif detail in _LIST_METHODS:
            message = {"jsonrpc": JSONRPC_VERSION, "method": _LIST_METHODS[detail]}
        else:
            log.warning(
                "ignored a list change of unknown kind %r from box %s", detail, change.origin
            )
            return
        task = asyncio.get_running_loop().create_task(self._deliver(tenant, message))
        self._delivering.add(task)
        task.add_done_callback(self._delivering.discard)

    async def _deliver(self, tenant: str, message: JsonObject) -> None:
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
        for stop in self._stops:
            stop()
        self._stops = []
        listeners = [listener for group in self._listeners.values() for listener in group]
        self._listeners.clear()
        for listener in listeners:
            reply = result_response(listener.listen_id, listen_result(listener.listen_id))
            await listener.stream.finish(reply)


def _announcement(tenant: str, message: JsonObject) -> tuple[str, str] | None:
    """The change-feed topic and payload that tell other boxes about ``message``."""
    method = message.get("method")
    if method == RESOURCE_UPDATED:
        uri = event_uri(message)
        return None if uri is None else (TOPIC_RESOURCE_UPDATED, f"{tenant}\t{uri}")
    listed = LIST_CHANGED.get(method) if isinstance(method, str) else None
    return None if listed is None else (TOPIC_LIST_CHANGED, f"{tenant}\t{listed[1]}")
