"""The handshake era (2024-11-05 … 2025-11-25): sessions, the GET stream, resume, DELETE.

A session is opened by ``initialize`` (answered by the box from the module's description),
identified by ``Mcp-Session-Id`` on every later request, bound to the credential that opened it,
and ended by DELETE (404 afterwards). Request streams and the session's standalone GET stream
persist every SSE event through ``sessions.append_event``; a GET with ``Last-Event-ID`` replays
what that one stream missed and then follows it live while its call is still running here.

The era's own parts beside this module (nothing else imports them): the session's stored state
and its resource subscriptions (:mod:`~smcp_box.web.mcp_legacy_state`), and InputRequiredResult
rounds run with the client (:mod:`~smcp_box.web.mcp_legacy_inputs`). What both eras share is
era-blind: :mod:`~smcp_box.web.mcp_calls`, :mod:`~smcp_box.web.mcp_context`,
:mod:`~smcp_box.web.streams`, :mod:`~smcp_box.web.sse`, :mod:`~smcp_box.web.tenant_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from functools import partial

from smcp_box.errors import (
    BoxError,
    InvalidRequest,
    NotAcceptable,
    SessionMoved,
    SessionNotFound,
    SessionRequired,
)
from smcp_box.protocol.error_replies import Stage, error_reply
from smcp_box.protocol.http import accepts
from smcp_box.protocol.inputs import is_input_required, with_client_capabilities
from smcp_box.protocol.jsonrpc import Message, Notification, Request, result_response
from smcp_box.protocol.legacy import (
    LAST_EVENT_ID_HEADER,
    SESSION_ID_HEADER,
    SessionState,
    cancelled_request_id,
    initialize_result,
    parse_initialize,
    parse_set_level,
    request_version,
)
from smcp_box.protocol.loglevels import LogFilter
from smcp_box.protocol.methods import Route, route_request
from smcp_box.protocol.versions import Era, supports_priming
from smcp_box.seams import CallContext, JsonObject, SessionRecord
from smcp_box.web.mcp_calls import (
    CallModule,
    CallPlan,
    answer,
    make_sink,
    run_call,
    start_in_place,
    start_task,
)
from smcp_box.web.mcp_context import (
    Exchange,
    McpResponse,
    accepted,
    error_response,
    json_response,
    sse_response,
)
from smcp_box.web.mcp_legacy_inputs import InputRounds, drive_rounds
from smcp_box.web.mcp_legacy_state import change_state, subscription_keeper
from smcp_box.web.mcp_tasks import HANDLED_METHODS, answer_task_method, task_caller
from smcp_box.web.sse import Frame, frame_stream
from smcp_box.web.streams import (
    STANDALONE_STREAM_ID,
    Persist,
    ResponseStream,
    SessionKey,
    Subscription,
)

log = logging.getLogger("smcp_box.web.mcp")

_SESSION_ID_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
#: Longer than any id a box issues (``<box_id>-<random>``: at most 32 + 1 + 43 characters), with
#: room for ids issued by other sources; a longer one is no session's, refused before hashing.
MAX_SESSION_ID_CHARS = 256


class Session:
    """A live legacy session as one request sees it."""

    def __init__(self, record: SessionRecord, state: SessionState, version: str) -> None:
        self.record = record
        self.state = state
        #: The version this request speaks (its header's, else the negotiated one).
        self.version = version

    @property
    def id(self) -> str:
        return self.record.session_id

    @property
    def key(self) -> SessionKey:
        return (self.record.tenant, self.record.session_id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Mcp-Session-Id": self.record.session_id}


async def load_session(exchange: Exchange, header_version: str | None) -> Session:
    """The session named by ``Mcp-Session-Id``: 400 without one, 404 unknown/ended/not yours."""
    session_id = exchange.headers.get(SESSION_ID_HEADER)
    if not session_id:
        raise SessionRequired(
            "Bad request: the Mcp-Session-Id header is required; send initialize to open a session"
        )
    gone = SessionNotFound(
        "Not found: this session does not exist or has ended; send initialize to start a new one"
    )
    if len(session_id) > MAX_SESSION_ID_CHARS or not set(session_id) <= _SESSION_ID_CHARS:
        raise gone  # no box issued it (ids are visible ASCII); same answer as for unknown ones
    sessions = exchange.endpoint.services.sessions
    record = await sessions.get_session(exchange.tenant_name, session_id)
    if record is None or record.ended or record.tenant != exchange.tenant_name:
        raise gone
    if SessionState.from_json(record.state).owner != exchange.owner:
        # Answer exactly as for an unknown session: a session id is not a credential. Checked
        # before any takeover: another principal's request must not move the session.
        raise gone
    # Owned here: the record itself, no write. Owned by another box (gone, or the balancer
    # sent this request elsewhere): taken over and served here, same id, no re-initialize.
    record = await sessions.claim_session(exchange.tenant_name, session_id, record)
    state = SessionState.from_json(record.state)
    version = request_version(header_version, record.protocol_version)
    await touch(exchange, record)
    return Session(record, state, version)


async def touch(exchange: Exchange, record: SessionRecord) -> None:
    """Mark a session in use as seen, at most once per ``session_touch_s``."""
    if (
        exchange.endpoint.services.clock() - record.last_seen
        >= exchange.endpoint.settings.session_touch_s
    ):
        # SessionMoved: another box owns it now and keeps it seen; this copy must not
        # overwrite its state.
        with contextlib.suppress(SessionMoved):
            await exchange.endpoint.services.sessions.update_session_state(
                record.tenant, record.session_id, record.state, epoch=record.epoch
            )


async def handle_post(
    exchange: Exchange, message: Message, header_version: str | None
) -> McpResponse:
    if isinstance(message, Request) and message.method == "initialize":
        return await _initialize(exchange, message)
    session = await load_session(exchange, header_version)
    if isinstance(message, Notification):
        await _client_notification(exchange, session, message)
        return accepted(session.headers)
    if not isinstance(message, Request):
        # The client's answer to a request the box sent on a module's behalf (an
        # InputRequiredResult round): the call waiting for it takes it. Anything else (unknown,
        # late, or waited for in another process) is dropped; the client gets 202 either way.
        exchange.endpoint.hub.deliver_response(session.key, message.id, message.raw)
        return accepted(session.headers)
    try:
        if message.method in HANDLED_METHODS:
            return await _answer_task_method(exchange, session, message)
        route = route_request(Era.LEGACY, message.method)
        if route is Route.BOX:
            return await _answer_box_method(exchange, session, message)
    except Exception as err:
        return error_response(
            err,
            stage=Stage.DISPATCH,
            era=Era.LEGACY,
            request_id=message.id,
            headers=session.headers,
        )
    return await _forward(exchange, session, message)


async def _answer_task_method(
    exchange: Exchange, session: Session, request: Request
) -> McpResponse:
    # The session's initialize capabilities count as this request's (docs/tasks.md).
    raw = with_client_capabilities(request.raw, session.state.client_capabilities)
    forwarded = Request(id=request.id, method=request.method, params=raw.get("params"), raw=raw)
    services = exchange.endpoint.services
    caller = task_caller(
        exchange.tenant, exchange.principal, exchange.source_ip, session.version, services.auditor
    )
    reply = await answer_task_method(services.tasks, caller, forwarded)
    return json_response(reply, headers=session.headers)


async def _initialize(exchange: Exchange, request: Request) -> McpResponse:
    if exchange.headers.get(SESSION_ID_HEADER):
        raise InvalidRequest(
            "Bad request: initialize opens a new session; send it without Mcp-Session-Id"
        )
    drain = exchange.endpoint.services.drain
    if drain is not None:
        # Before anything is created: the client opens its session on another box instead.
        drain.check_new_session()
    try:
        params = parse_initialize(request.params)
        description = await exchange.tenant.describe()
    except Exception as err:
        # A dispatched request that failed: a JSON-RPC error for its id, not an HTTP failure.
        return error_response(err, stage=Stage.DISPATCH, era=Era.LEGACY, request_id=request.id)
    session_id = exchange.endpoint.services.new_session_id()
    if not session_id or not set(session_id) <= _SESSION_ID_CHARS:
        # The spec allows only visible ASCII; anything else would break clients' headers.
        raise BoxError("Internal error: the session id source produced an invalid id")
    sessions = exchange.endpoint.services.sessions
    version = params.negotiated_version
    exchange.endpoint.services.admission.check_new_session(
        exchange.tenant_name, await sessions.count_open_sessions(exchange.tenant_name)
    )
    await sessions.create_session(exchange.tenant_name, session_id, version, params.client_info)
    state = SessionState(owner=exchange.owner, client_capabilities=params.capabilities)
    # Unconditional: the session is seconds old and no other box has its id yet.
    await sessions.update_session_state(exchange.tenant_name, session_id, state.to_json())
    result = initialize_result(
        version, description.server_info, description.capabilities, description.instructions
    )
    return json_response(
        result_response(request.id, result), headers={"Mcp-Session-Id": session_id}
    )


async def _save_state(
    exchange: Exchange, session: Session, change: Callable[[SessionState], SessionState]
) -> None:
    changed = await change_state(exchange, session.key, change)
    if changed is None:
        raise SessionNotFound(
            "Not found: this session does not exist or has ended; send initialize to start a "
            "new one"
        )
    session.state = changed


async def _answer_box_method(exchange: Exchange, session: Session, request: Request) -> McpResponse:
    if request.method == "logging/setLevel":
        level = parse_set_level(request.params)
        await _save_state(exchange, session, lambda state: replace(state, log_level=level))
    # ping and logging/setLevel both answer an empty result.
    return json_response(result_response(request.id, {}), headers=session.headers)


async def _client_notification(
    exchange: Exchange, session: Session, notification: Notification
) -> None:
    if notification.method == "notifications/initialized":
        if not session.state.initialized:
            await _save_state(exchange, session, lambda state: replace(state, initialized=True))
        return
    if notification.method == "notifications/cancelled":
        request_id = cancelled_request_id(notification.params)
        if request_id is not None:
            exchange.endpoint.hub.cancel_call(session.key, request_id)
        return
    # Anything else is the module's (e.g. roots/list_changed). It is handled after the 202, and
    # whatever the module emits meanwhile is unrelated to any request: the standalone stream.
    standalone = exchange.endpoint.hub.standalone(
        session.key, partial(_standalone_stream, exchange, session)
    )
    ctx = CallContext(
        tenant=exchange.tenant_name,
        protocol_version=session.version,
        notify=make_sink(exchange, standalone, LogFilter.legacy(session.state.log_level)),
        session_id=session.id,
        log_level=session.state.log_level,
        source_ip=exchange.source_ip,
        caller=exchange.principal,
    )
    task = start_task(exchange, _notify_module(exchange, notification, ctx), "mcp-notify")
    exchange.endpoint.hub.add_background(session.key, task)


async def _notify_module(
    exchange: Exchange, notification: Notification, ctx: CallContext
) -> str | None:
    """Hand the notification to the module; returns the observation's error kind."""
    try:
        await exchange.tenant.call(notification.raw, ctx)
    except Exception as err:
        # Nobody awaits this task and a notification gets no reply: only its kind is kept
        # (the mapping logs an unexpected failure).
        return error_reply(err, stage=Stage.DISPATCH, era=Era.LEGACY).kind
    return None


def _standalone_stream(exchange: Exchange, session: Session) -> ResponseStream:
    return ResponseStream(
        persist=_persister(exchange, session, STANDALONE_STREAM_ID),
        prime=supports_priming(session.version),
        retry_ms=exchange.endpoint.settings.sse_retry_ms or None,
        pending=False,
    )


def _persister(exchange: Exchange, session: Session, stream_id: str) -> Persist:
    return partial(
        exchange.endpoint.services.sessions.append_event,
        exchange.tenant_name,
        session.id,
        stream_id,
    )


async def _forward(exchange: Exchange, session: Session, request: Request) -> McpResponse:
    # Random stream ids stay unique within a session across processes and restarts.
    stream_id = "r" + secrets.token_hex(8)
    stream = ResponseStream(
        persist=_persister(exchange, session, stream_id),
        prime=supports_priming(session.version),
        retry_ms=exchange.endpoint.settings.sse_retry_ms or None,
    )
    capabilities = session.state.client_capabilities
    # Modules read the client's capabilities from _meta in both eras.
    raw = with_client_capabilities(request.raw, capabilities)
    forwarded = Request(id=request.id, method=request.method, params=raw.get("params"), raw=raw)
    settings = exchange.endpoint.settings
    rounds = InputRounds(
        hub=exchange.endpoint.hub,
        session=session.key,
        capabilities=capabilities,
        negotiated_version=session.record.protocol_version,
        stream_id=stream_id,
        timeout_s=settings.server_request_timeout_s,
        max_rounds=settings.max_input_rounds,
    )
    keep_subscription = subscription_keeper(exchange, session.key, request)

    async def complete(reply: JsonObject, again: CallModule, stream: ResponseStream) -> JsonObject:
        # A handshake-era client cannot run InputRequiredResult rounds: the box runs them.
        if is_input_required(reply):
            reply = await drive_rounds(rounds, forwarded, stream, reply, again)
        if keep_subscription is not None:
            # In place before the client sees the answer (see mcp_legacy_state).
            reply = await keep_subscription(reply)
        return reply

    plan = CallPlan(
        era=Era.LEGACY,
        request=forwarded,
        protocol_version=session.version,
        log_filter=LogFilter.legacy(session.state.log_level),
        log_level=session.state.log_level,
        complete=complete,
        # A disconnect is not a cancellation: the client may resume with Last-Event-ID.
        cancel_on_disconnect=False,
        session_id=session.id,
    )
    sub = stream.subscribe()
    hub, key = exchange.endpoint.hub, session.key

    async def call() -> str | None:
        try:
            return await run_call(exchange, plan, stream)
        finally:
            # The call's own task, or the request's while the call had none (not registered,
            # so only the stream is forgotten).
            hub.call_done(key, request.id, stream_id, asyncio.current_task())

    # The stream first: the call may finish (and forget it) before start_in_place returns.
    hub.add_call(key, request.id, stream_id, stream)
    task = start_in_place(exchange, call(), "mcp-call")
    if task is not None:
        # Registered before the loop runs again: no cancellation can come before it.
        hub.call_task(key, request.id, task)
    return await answer(exchange, plan, stream, sub, task, session.headers)


# -- GET: the standalone stream, or a resumed one -----------------------------------------------
#
# Everything a stream holds (the standalone slot, a subscription) is taken inside the response
# body, which always runs its ``finally``: a response Quart never starts to send leaks nothing.
# The checks that need an HTTP status (409, 400) happen before, in the handler.


async def handle_get(exchange: Exchange, header_version: str | None) -> McpResponse:
    if not accepts(exchange.headers.get("accept"))[1]:
        raise NotAcceptable("Not acceptable: a GET stream needs Accept: text/event-stream")
    session = await load_session(exchange, header_version)
    last_event_id = exchange.headers.get(LAST_EVENT_ID_HEADER)
    if last_event_id:
        return await _resume(exchange, session, last_event_id)
    exchange.endpoint.hub.check_standalone_free(session.key)
    _check_stream_quota(exchange)
    return sse_response(_standalone_body(exchange, session, None, [], set()), session.headers)


def _check_stream_quota(exchange: Exchange) -> None:
    # Counted when the body attaches; a GET racing another past this check can exceed the
    # quota by the few streams that start at the same moment, never by more.
    tenant = exchange.tenant_name
    exchange.endpoint.services.admission.check_new_stream(
        tenant, exchange.endpoint.hub.open_streams(tenant)
    )


async def _resume(exchange: Exchange, session: Session, last_event_id: str) -> McpResponse:
    found = await exchange.endpoint.services.sessions.replay_events(
        exchange.tenant_name, session.id, last_event_id
    )
    if found is None:
        raise InvalidRequest(
            "Bad request: Last-Event-ID names no event of this session (it may have expired)"
        )
    stream_id, events = found
    replayed = [Frame(event_id=event_id, data=payload) for event_id, payload in events]
    seen = {last_event_id, *(event_id for event_id, _ in events)}
    if stream_id == STANDALONE_STREAM_ID:
        # A resumed standalone stream becomes the session's GET stream again.
        exchange.endpoint.hub.check_standalone_free(session.key)
        _check_stream_quota(exchange)
        body = _standalone_body(exchange, session, last_event_id, replayed, seen)
    else:
        body = _request_stream_body(exchange, session, stream_id, last_event_id, replayed, seen)
    return sse_response(body, session.headers)


async def _catch_up(
    exchange: Exchange, session: Session, resume_from: str, replayed: list[Frame], seen: set[str]
) -> list[Frame]:
    """Events persisted since the first replay: the reader subscribed only after it, so these
    reached neither; later ones arrive through the subscription (and duplicates are dropped)."""
    cursor = resume_from
    if replayed and replayed[-1].event_id is not None:
        cursor = replayed[-1].event_id
    again = await exchange.endpoint.services.sessions.replay_events(
        exchange.tenant_name, session.id, cursor
    )
    fresh = [Frame(event_id=i, data=p) for i, p in (again[1] if again else []) if i not in seen]
    seen.update(frame.event_id for frame in fresh if frame.event_id is not None)
    return fresh


async def _standalone_body(
    exchange: Exchange,
    session: Session,
    resume_from: str | None,
    replayed: list[Frame],
    seen: set[str],
) -> AsyncGenerator[bytes, None]:
    hub, key = exchange.endpoint.hub, session.key
    stream, sub = hub.attach_standalone(key, partial(_standalone_stream, exchange, session))
    observer = exchange.endpoint.services.observer
    observer.stream_opened(exchange.tenant_name)
    try:
        # Read after attaching: a subscription changed since this request loaded the session is
        # in the store now, and every later change updates the attached stream's mirror.
        record = await exchange.endpoint.services.sessions.get_session(
            exchange.tenant_name, session.id
        )
        if record is not None:
            subscribed = SessionState.from_json(record.state).subscriptions
            hub.set_subscriptions(key, frozenset(subscribed))
        if resume_from is not None:
            replayed = [*replayed, *await _catch_up(exchange, session, resume_from, replayed, seen)]
        else:
            await stream.prime()
        for frame in replayed:
            yield frame.encode()

        async def session_alive() -> bool:
            # The standalone stream has no natural end: when idle, make sure the session was
            # not ended elsewhere (another process, an administrator, the idle reaper).
            record = await exchange.endpoint.services.sessions.get_session(
                exchange.tenant_name, session.id
            )
            if record is None or record.ended:
                return False
            if (record.owner_box, record.epoch) != (session.record.owner_box, session.record.epoch):
                # The session moved since this stream began (docs/scale-out.md, "Sessions that
                # move"): what it emits may now go to another box's stream. Ending this one
                # makes the client resume with Last-Event-ID where the balancer sends it, from
                # the shared event log, missing nothing.
                return False
            try:
                await touch(exchange, record)  # an open GET stream is a session in use
            except SessionNotFound:
                return False  # ended between the read and the touch
            return True

        async for chunk in frame_stream(
            _deduplicated(sub, seen),
            keepalive_s=exchange.endpoint.settings.sse_keepalive_s,
            still_wanted=session_alive,
        ):
            yield chunk
    finally:
        hub.detach_standalone(key, sub)
        observer.stream_closed(exchange.tenant_name)


async def _request_stream_body(
    exchange: Exchange,
    session: Session,
    stream_id: str,
    resume_from: str,
    replayed: list[Frame],
    seen: set[str],
) -> AsyncGenerator[bytes, None]:
    live = exchange.endpoint.hub.live_stream(session.key, stream_id)
    sub = live.subscribe() if live is not None else None
    observer = exchange.endpoint.services.observer
    observer.stream_opened(exchange.tenant_name)
    try:
        if sub is not None:
            replayed = [*replayed, *await _catch_up(exchange, session, resume_from, replayed, seen)]
        for frame in replayed:
            yield frame.encode()
        if sub is None:
            # The call is not running in this process (finished, or elsewhere): what the store
            # had is all there is for now.
            return
        async for chunk in frame_stream(
            _deduplicated(sub, seen), keepalive_s=exchange.endpoint.settings.sse_keepalive_s
        ):
            yield chunk
    finally:
        if live is not None and sub is not None:
            live.unsubscribe(sub)
        observer.stream_closed(exchange.tenant_name)


def _deduplicated(sub: Subscription, seen: set[str]) -> Callable[[float], Awaitable[Frame | None]]:
    async def next_new(timeout_s: float) -> Frame | None:
        while True:
            frame = await sub.next(timeout_s)
            if frame is None or frame.event_id is None or frame.event_id not in seen:
                return frame

    return next_new


# -- DELETE ---------------------------------------------------------------------------------


async def handle_delete(exchange: Exchange, header_version: str | None) -> McpResponse:
    session = await load_session(exchange, header_version)
    await exchange.endpoint.services.sessions.end_session(exchange.tenant_name, session.id)
    await exchange.endpoint.hub.end_session(session.key)
    return accepted(session.headers, status=204)
