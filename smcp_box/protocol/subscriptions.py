"""Tenant-wide notifications and who may receive them: ``subscriptions/listen`` (2026-07-28)
and resource subscriptions of handshake-era sessions. No I/O.

A module announces changes with notifications of its own (``notify``):
``notifications/{tools,prompts,resources}/list_changed`` and
``notifications/resources/updated {uri}``. They concern every client of the tenant, not the
request that happened to cause them, so the box routes them to subscribers:

* 2026-07-28: a ``subscriptions/listen`` request opens a stream that first carries
  ``notifications/subscriptions/acknowledged`` (the requested types the tenant supports), then
  every matching notification, each tagged with the listen request's id in
  ``params._meta["io.modelcontextprotocol/subscriptionId"]``, and never a type not asked for.
* Handshake era: list changes go to every session's standalone (GET) stream, resource updates
  to the sessions subscribed to that URI (``resources/subscribe``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from smcp_box.errors import InvalidParams
from smcp_box.protocol.jsonrpc import JSONRPC_VERSION, RequestId
from smcp_box.seams import JsonObject

SUBSCRIPTION_ID_META_KEY: Final = "io.modelcontextprotocol/subscriptionId"
ACKNOWLEDGED: Final = "notifications/subscriptions/acknowledged"
RESOURCE_UPDATED: Final = "notifications/resources/updated"
#: Each list-changed notification: its filter field and the capability that offers it.
LIST_CHANGED: Final[Mapping[str, tuple[str, str]]] = {
    "notifications/tools/list_changed": ("toolsListChanged", "tools"),
    "notifications/prompts/list_changed": ("promptsListChanged", "prompts"),
    "notifications/resources/list_changed": ("resourcesListChanged", "resources"),
}
TENANT_EVENT_METHODS: Final = frozenset({*LIST_CHANGED, RESOURCE_UPDATED})
#: URIs one listen stream may watch (each is checked on every resource update).
MAX_RESOURCE_SUBSCRIPTIONS: Final = 256


@dataclass(frozen=True)
class SubscriptionFilter:
    """What a listen stream receives: the list-changed types by filter field, and URIs."""

    lists: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()

    def matches(self, message: Mapping[str, Any]) -> bool:
        method = message.get("method")
        if method == RESOURCE_UPDATED:
            return event_uri(message) in self.resources
        kind = LIST_CHANGED.get(method) if isinstance(method, str) else None
        return kind is not None and kind[0] in self.lists

    def to_json(self) -> JsonObject:
        shaped: JsonObject = {field: True for field in sorted(self.lists)}
        if self.resources:
            shaped["resourceSubscriptions"] = sorted(self.resources)
        return shaped


def is_tenant_event(message: Mapping[str, Any]) -> bool:
    return message.get("method") in TENANT_EVENT_METHODS


def event_uri(message: Mapping[str, Any]) -> str | None:
    """The ``uri`` of a resources/updated notification (None when it has none)."""
    params = message.get("params")
    uri = params.get("uri") if isinstance(params, dict) else None
    return uri if isinstance(uri, str) else None


def parse_filter(params: Mapping[str, Any] | None) -> SubscriptionFilter:
    """``params.notifications`` of a listen request; InvalidParams (-32602) when malformed."""
    notifications = (params or {}).get("notifications")
    if not isinstance(notifications, dict):
        raise InvalidParams(
            "Invalid params: subscriptions/listen needs params.notifications, an object naming "
            'the notifications to receive (e.g. {"toolsListChanged": true})'
        )
    lists: set[str] = set()
    for field, _ in LIST_CHANGED.values():
        value = notifications.get(field, False)
        if not isinstance(value, bool):
            raise InvalidParams(f"Invalid params: notifications.{field} must be a boolean")
        if value:
            lists.add(field)
    uris = notifications.get("resourceSubscriptions", [])
    if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
        raise InvalidParams(
            "Invalid params: notifications.resourceSubscriptions must be an array of URIs"
        )
    if len(uris) > MAX_RESOURCE_SUBSCRIPTIONS:
        raise InvalidParams(
            f"Invalid params: at most {MAX_RESOURCE_SUBSCRIPTIONS} resourceSubscriptions per "
            "stream; open another stream for more"
        )
    return SubscriptionFilter(lists=frozenset(lists), resources=frozenset(uris))


def _declares(capabilities: Mapping[str, Any], capability: str, flag: str) -> bool:
    entry = capabilities.get(capability)
    return isinstance(entry, dict) and entry.get(flag) is True


def offers_subscriptions(capabilities: Mapping[str, Any]) -> bool:
    """Whether a tenant declares anything a listen stream could deliver."""
    return any(
        _declares(capabilities, capability, "listChanged")
        for _, capability in LIST_CHANGED.values()
    ) or _declares(capabilities, "resources", "subscribe")


def granted_filter(
    requested: SubscriptionFilter, capabilities: Mapping[str, Any]
) -> SubscriptionFilter:
    """The part of ``requested`` the tenant supports: what the acknowledgement lists."""
    lists = frozenset(
        field
        for field, capability in LIST_CHANGED.values()
        if field in requested.lists and _declares(capabilities, capability, "listChanged")
    )
    resources = requested.resources if _declares(capabilities, "resources", "subscribe") else None
    return SubscriptionFilter(lists=lists, resources=resources or frozenset())


def acknowledgement(granted: SubscriptionFilter, listen_id: RequestId) -> JsonObject:
    """The first frame of every listen stream."""
    return {
        "jsonrpc": JSONRPC_VERSION,
        "method": ACKNOWLEDGED,
        "params": {
            "notifications": granted.to_json(),
            "_meta": {SUBSCRIPTION_ID_META_KEY: listen_id},
        },
    }


def tagged(message: Mapping[str, Any], listen_id: RequestId) -> JsonObject:
    """A copy of a tenant notification carrying the listen stream's subscription id."""
    shaped = copy.deepcopy(dict(message))
    params = shaped.get("params")
    params = params if isinstance(params, dict) else {}
    meta = params.get("_meta")
    params["_meta"] = {
        **(meta if isinstance(meta, dict) else {}),
        SUBSCRIPTION_ID_META_KEY: listen_id,
    }
    shaped["params"] = params
    shaped["jsonrpc"] = JSONRPC_VERSION
    return shaped


def listen_result(listen_id: RequestId) -> JsonObject:
    """The result that ends a listen stream gracefully (the box is shutting down)."""
    return {"resultType": "complete", "_meta": {SUBSCRIPTION_ID_META_KEY: listen_id}}
