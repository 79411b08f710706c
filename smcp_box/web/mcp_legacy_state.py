"""The handshake era's part (of :mod:`smcp_box.web.mcp_legacy`): changes to a session's
stored state, and its resource subscriptions.

The state is one small JSON object per session in the store (:class:`SessionState`). Requests
of one session may run concurrently (a ``resources/subscribe`` next to a ``logging/setLevel``),
so every change is a read-modify-write under a per-session lock: the change is applied to what
the store holds *now*, not to the copy the request loaded when it began.

In a fleet the lock is this box's only, so the write is also conditional on the epoch the box
read (docs/scale-out.md, "Sessions that move"): a box writes a session's state only while it
owns it, taking it over first if it does not; when another box took it over meanwhile the
write is refused, and the change is applied again to the new owner's state after taking the
session back (a request reached this box, so it serves it), a bounded number of times.

Resource subscriptions: a ``resources/subscribe`` is forwarded to the module, which says whether
it serves the URI; only when it answers with a result does the box record ``(session, uri)``
(before the client sees the answer, so an update right after it is delivered). Unsubscribing
forgets it. The module's ``notifications/resources/updated`` then reach the subscribed sessions'
standalone streams (:mod:`smcp_box.web.tenant_events`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable

from smcp_box.errors import SessionMoved
from smcp_box.protocol.error_replies import Stage, error_reply
from smcp_box.protocol.jsonrpc import Request
from smcp_box.protocol.legacy import SessionState
from smcp_box.protocol.versions import Era
from smcp_box.seams import JsonObject
from smcp_box.web.mcp_context import Exchange
from smcp_box.web.streams import SessionKey

#: Lives as long as some request holds it: sessions no one is changing cost nothing.
_locks: weakref.WeakValueDictionary[SessionKey, asyncio.Lock] = weakref.WeakValueDictionary()

#: Read-claim-write rounds before a change gives up (SessionMoved: the client sends it again).
#: Each lost round means another box took the session over within one round trip.
_WRITE_ATTEMPTS = 3

SUBSCRIBE = "resources/subscribe"
UNSUBSCRIBE = "resources/unsubscribe"


async def change_state(
    exchange: Exchange, key: SessionKey, change: Callable[[SessionState], SessionState]
) -> SessionState | None:
    """Apply ``change`` to the session's current stored state; None when the session is gone.

    ``change`` may raise a BoxError to refuse (nothing is written then).
    """
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    sessions = exchange.endpoint.services.sessions
    async with lock:
        for attempt in range(_WRITE_ATTEMPTS):
            record = await sessions.get_session(*key)
            if record is None or record.ended:
                return None
            record = await sessions.claim_session(key[0], key[1], record)
            state = SessionState.from_json(record.state)
            changed = change(state)
            if changed == state:
                return changed
            try:
                await sessions.update_session_state(
                    key[0], key[1], changed.to_json(), epoch=record.epoch
                )
            except SessionMoved:
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise
                continue
            return changed
    raise AssertionError("unreachable: the last attempt returns or raises")


def subscription_keeper(
    exchange: Exchange, key: SessionKey, request: Request
) -> Callable[[JsonObject], Awaitable[JsonObject]] | None:
    """For ``resources/(un)subscribe``: what records the subscription once the module accepted
    it (the CallPlan's ``after_reply``); None for every other request."""
    if request.method not in (SUBSCRIBE, UNSUBSCRIBE):
        return None
    uri = (request.params or {}).get("uri")
    if not isinstance(uri, str):
        return None  # the module answers -32602 for it

    def change(state: SessionState) -> SessionState:
        return state.subscribed(uri) if request.method == SUBSCRIBE else state.unsubscribed(uri)

    async def keep(reply: JsonObject) -> JsonObject:
        if "result" not in reply:
            return reply
        try:
            state = await change_state(exchange, key, change)
        except Exception as err:
            # The module said yes but the session could not record it: the request failed.
            return error_reply(
                err, stage=Stage.DISPATCH, era=Era.LEGACY, request_id=request.id
            ).body
        if state is not None:
            exchange.endpoint.hub.set_subscriptions(key, frozenset(state.subscriptions))
        return reply

    return keep
