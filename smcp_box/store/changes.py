"""The in-process change feed: the one a single box (SQLite) uses, and the part of every
feed that calls this box's own listeners (see :class:`smcp_box.seams.ChangeFeed`).

A listener that raises is logged and skipped: one broken listener must not keep a change
from the others (a revoked key from the credential cache, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
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
#: The areas of :data:`TOPIC_ADMIN` this module's users announce (``drain`` is the boxes').
ADMIN_USERS: Final = "users"
ADMIN_OAUTH_CLIENTS: Final = "oauth_clients"
ADMIN_SECRETS: Final = "secrets"
ADMIN_APPROVALS: Final = "approvals"
ADMIN_BASELINES: Final = "baselines"
#: :data:`TOPIC_CREDENTIAL` payloads name their kind by prefix.
APIKEY_PREFIX: Final = "apikey:"
TOKEN_ID_PREFIX: Final = "token:"  # noqa: S105 - a label, not a secret
USER_PREFIX: Final = "user:"
CLIENT_PREFIX: Final = "client:"
#: This box may have missed changes (its feed's connection dropped and came back, and notices
#: sent meanwhile are lost): payload ``""``. Delivered by a fleet feed to its own box's
#: listeners only; every cache drops everything it holds and every follower reloads.
TOPIC_RESYNC: Final = "resync"


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


class CoalescedJob:
    """Runs ``job`` soon after :meth:`trigger`; triggers that come while it runs make exactly
    one more run, so a burst of changes costs at most two reloads and none is missed (a run
    started after the last trigger sees its change). Failures are logged, not raised: the
    next trigger (or a resync) tries again."""

    def __init__(self, job: Callable[[], Awaitable[object]], what: str) -> None:
        self._job = job
        self._what = what
        self._wanted = False
        self._task: asyncio.Task[None] | None = None
        #: Completed runs (for tests and status).
        self.runs = 0

    def trigger(self, _change: Change | None = None) -> None:
        """Ask for a run (usable as a :data:`~smcp_box.seams.ChangeListener`)."""
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._wanted:
            self._wanted = False
            try:
                await self._job()
            except Exception:
                log.exception("%s after another box's change failed", self._what)
            self.runs += 1

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
