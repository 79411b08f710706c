"""Forwarding one request to a tenant module, and answering it as JSON or as an SSE stream.

Both eras share this path. The call runs in its own task and writes into a
:class:`~smcp_box.web.streams.ResponseStream`; the HTTP handler waits until the stream is decided:

* the reply came first: a plain JSON response (nothing was persisted);
* a notification came first, or ``sse_keepalive_s`` passed in silence: an SSE stream carrying the
  request's notifications, then its reply, then the end of the stream (with keep-alive comments
  while the module is quiet).

Cancellation differs by era. 2026-07-28: closing the response *is* the cancellation, so when the
client goes away the call task is cancelled and nothing more is sent. Legacy: a disconnect is
not a cancellation (the client may resume with ``Last-Event-ID``), so the call keeps running and
persisting its events; ``notifications/cancelled`` cancels it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from smcp_box.errors import BadModuleReply, BoxError, QuotaExceeded
from smcp_box.protocol.inputs import INPUT_ROUND_METHODS, is_input_required
from smcp_box.protocol.jsonrpc import Request, error_response
from smcp_box.protocol.loglevels import LogFilter
from smcp_box.protocol.modern import finalize_result
from smcp_box.protocol.subscriptions import is_tenant_event
from smcp_box.protocol.versions import Era
from smcp_box.seams import CallContext, JsonObject
from smcp_box.web.mcp_context import Exchange, audit_refusal, reply_response, sse_response
from smcp_box.web.mcp_inputs import InputRounds, drive_rounds
from smcp_box.web.sse import frame_stream
from smcp_box.web.streams import ResponseStream, StreamState, Subscription

log = logging.getLogger("smcp_box.web.mcp")


@dataclass(frozen=True)
class CallPlan:
    """How to run and answer one forwarded request."""

    era: Era
    request: Request
    protocol_version: str
    log_filter: LogFilter
    #: The level passed on to the module in its CallContext (legacy: the session's).
    log_level: str | None
    session_id: str | None = None
    #: Legacy era: how to run InputRequiredResult rounds with the client (the modern client
    #: runs them itself, so there the result passes through).
    inputs: InputRounds | None = None
    #: Runs on the final reply before it is sent and may replace it (legacy bookkeeping such
    #: as resource subscriptions, which must be in place before the client sees the answer).
    after_reply: Callable[[JsonObject], Awaitable[JsonObject]] | None = None


def make_sink(
    exchange: Exchange, stream: ResponseStream, log_filter: LogFilter
) -> Callable[[JsonObject], Awaitable[None]]:
    """The ``ctx.notify`` a module's notifications go through.

    Tenant-wide events (list changes, resource updates) concern every subscriber of the tenant,
    not the request that happened to cause them: they go to the tenant's subscribers and never
    on the caller's stream (the spec forbids one message on several streams). The rest is the
    request's own: filtered by log level, then streamed.
    """

    async def sink(message: JsonObject) -> None:
        # Already checked once, where the module emitted it (parse_module_notification).
        if is_tenant_event(message):
            await exchange.events.publish(exchange.tenant_name, message)
        elif log_filter.allows(message):
            await stream.notify(message)

    return sink


async def _server_info(exchange: Exchange) -> JsonObject | None:
    try:
        return (await exchange.tenant.describe()).server_info
    except BoxError:
        # The stamp is a SHOULD and display-only: a failing describe must not fail the call.
        return None


async def _call_module(
    exchange: Exchange, plan: CallPlan, message: JsonObject, stream: ResponseStream
) -> JsonObject:
    """One call of the module with ``message`` (the request, or a later round of it)."""
    ctx = CallContext(
        tenant=exchange.tenant_name,
        protocol_version=plan.protocol_version,
        notify=make_sink(exchange, stream, plan.log_filter),
        session_id=plan.session_id,
        request_id=plan.request.id,
        log_level=plan.log_level,
        source_ip=exchange.source_ip,
        caller=exchange.principal,
    )
    try:
        reply = await exchange.tenant.call(message, ctx)
    finally:
        for refusal in ctx.refusals:
            # A kv write refused by a quota: the module got -1 and went on; the refusal is
            # counted (as this request's error kind) and audited like every other one.
            if isinstance(refusal, QuotaExceeded):
                exchange.observation.error_kind = refusal.kind
                await audit_refusal(
                    exchange.services, refusal, exchange.tenant_name, exchange.source_ip
                )
    if reply is None:
        # The runtime checked the reply (check_module_reply): a request always has one.
        raise BadModuleReply("The tenant module returned no reply to a request")
    return reply


async def _final_reply(exchange: Exchange, plan: CallPlan, stream: ResponseStream) -> JsonObject:
    request = plan.request
    reply = await _call_module(exchange, plan, request.raw, stream)
    if is_input_required(reply):
        if request.method not in INPUT_ROUND_METHODS:
            raise BadModuleReply(
                f"The tenant module answered {request.method} with an InputRequiredResult, "
                f"which only {', '.join(sorted(INPUT_ROUND_METHODS))} may return"
            )
        if plan.inputs is not None:

            async def again(message: JsonObject) -> JsonObject:
                return await _call_module(exchange, plan, message, stream)

            reply = await drive_rounds(plan.inputs, request, stream, reply, again)
    if "result" in reply and plan.era is Era.MODERN:
        info = await _server_info(exchange)
        reply["result"] = finalize_result(request.method, reply["result"], info)
    if plan.after_reply is not None:
        reply = await plan.after_reply(reply)
    return reply


async def run_call(exchange: Exchange, plan: CallPlan, stream: ResponseStream) -> None:
    """Call the module and put its reply (or the error it caused) on ``stream``."""
    request = plan.request
    error_kind: str | None = None
    try:
        try:
            reply = await _final_reply(exchange, plan, stream)
            if "error" in reply:
                error_kind = "rpc_error"
        except BoxError as err:
            reply = error_response(request.id, err)
            error_kind = err.kind
            if isinstance(err, QuotaExceeded):
                # A per-call quota (fuel_per_minute …): audited like the HTTP-level refusals.
                await audit_refusal(
                    exchange.services, err, exchange.tenant_name, exchange.source_ip
                )
        except Exception:
            log.exception("tenant %s failed a call to %s", exchange.tenant_name, request.method)
            reply = error_response(
                request.id, BoxError("Internal error: the call failed inside the box")
            )
            error_kind = "internal"
        await stream.finish(reply)
    except asyncio.CancelledError:
        error_kind = "cancelled"
        await stream.abandon()
        raise
    finally:
        exchange.observation.finish(error_kind)


def start_task(
    exchange: Exchange, coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """Run ``coro`` as the task that owns this exchange's observer record."""
    exchange.observation.deferred = True
    task = asyncio.create_task(coro, name=f"{name}:{exchange.tenant_name}")

    def cancelled_early(done: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never runs its own ``finally``.
        if done.cancelled():
            exchange.observation.finish("cancelled")

    task.add_done_callback(cancelled_early)
    return task


async def answer(
    exchange: Exchange,
    plan: CallPlan,
    stream: ResponseStream,
    sub: Subscription,
    task: asyncio.Task[None],
    headers: Mapping[str, str],
) -> Any:
    """Wait for the stream to be decided and build the HTTP response for it."""
    handed_off = False
    try:
        if not await stream.wait_decided(exchange.settings.sse_keepalive_s):
            await stream.commit()
        if stream.state is StreamState.JSON:
            assert stream.reply is not None
            return reply_response(plan.era, stream.reply, headers)
        handed_off = True
        return sse_response(_stream_body(exchange, plan, stream, sub, task), headers)
    finally:
        if not handed_off:
            stream.unsubscribe(sub)
            if plan.era is Era.MODERN:
                # The client went away before its answer: that is the cancellation.
                task.cancel()


async def _stream_body(
    exchange: Exchange,
    plan: CallPlan,
    stream: ResponseStream,
    sub: Subscription,
    task: asyncio.Task[None],
) -> AsyncIterator[bytes]:
    observer = exchange.services.observer
    observer.stream_opened(exchange.tenant_name)
    try:
        async for chunk in frame_stream(sub.next, keepalive_s=exchange.settings.sse_keepalive_s):
            yield chunk
    finally:
        stream.unsubscribe(sub)
        observer.stream_closed(exchange.tenant_name)
        if plan.era is Era.MODERN and not task.done():
            task.cancel()
