"""The in-process change feed: the one a single box (SQLite) uses, and the part of every
feed that calls this box's own listeners (see :class:`smcp_box.seams.ChangeFeed`).

A listener that raises is logged and skipped: one broken listener must not keep a change
from the others (a revoked key from the credential cache, say).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from smcp_box.seams import Change, ChangeListener

log = logging.getLogger(__name__)

#: The largest payload, in UTF-8 bytes: PostgreSQL's NOTIFY takes under 8,000, and a feed on
#: one box keeps the same limit so nothing that works on one box breaks on a fleet.
MAX_PAYLOAD_BYTES: Final = 7_000


# The topics, and what their payloads hold (ids and names only; docs/scale-out.md "Fan-out").
#: A credential was revoked or changed: ``apikey:<id>``, ``token:<jti>``, ``user:<id>``,
#: ``client:<id>``; caches drop it.
TOPIC_CREDENTIAL: Final = "credential"
#: A session moved to another box or ended: ``<tenant>\t<session id hash hex>\t<owner box>``;
#: other boxes drop their cached copy.
TOPIC_SESSION: Final = "session"
#: A tenant's admin state, module or settings changed: ``<tenant>``; every box reloads it.
TOPIC_TENANT: Final = "tenant"
#: A tenant's tools, prompts or resources list changed: ``<tenant>\t<tools|prompts|resources>``.
TOPIC_LIST_CHANGED: Final = "list_changed"
#: A resource a client may be subscribed to changed: ``<tenant>\t<uri>``.
TOPIC_RESOURCE_UPDATED: Final = "resource_updated"
#: Box-wide admin state changed: the area (``users``, ``oauth_clients``, ``secrets``,
#: ``approvals``, ``baselines``, ``drain``); every box reloads that area.
TOPIC_ADMIN: Final = "admin"


def check_payload(topic: str, payload: str) -> None:
    """Refuse a payload no backend could carry (a bug in the caller, never client input)."""
    if len(payload.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"change payload for {topic!r} exceeds {MAX_PAYLOAD_BYTES} bytes")


class LocalChangeFeed:
    """Delivers each change to this process's listeners, synchronously, in publish order."""

    def __init__(self, box_id: str) -> None:
        self.box_id = box_id
        self._listeners: dict[str, list[ChangeListener]] = {}

    async def publish(self, topic: str, payload: str) -> None:
        check_payload(topic, payload)
        self.deliver(Change(topic=topic, payload=payload, origin=self.box_id))

    def subscribe(self, topic: str, listener: ChangeListener) -> Callable[[], None]:
        listeners = self._listeners.setdefault(topic, [])
        listeners.append(listener)

        def stop() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return stop

    def deliver(self, change: Change) -> None:
        """Call every listener of ``change.topic`` (also how a fleet feed hands on what it
        received from other boxes)."""
        for listener in list(self._listeners.get(change.topic, ())):
            try:
                listener(change)
            except Exception:
                log.exception("change listener for %r failed", change.topic)
