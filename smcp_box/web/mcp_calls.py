"""Forwarding one request to a tenant module, and answering it as JSON or as an SSE stream.

Shared by both eras, and era-blind: what differs is in the :class:`CallPlan` the era's module
builds. The call runs in its own task and writes into a
:class:`~smcp_box.web.streams.ResponseStream`; the HTTP handler waits until the stream is decided:

* the reply came first: a plain JSON response (nothing was persisted);
* a notification came first, or ``sse_keepalive_s`` passed in silence: an SSE stream carrying the
  request's notifications, then its reply, then the end of the stream (with keep-alive comments
  while the module is quiet).

What the eras decide (:class:`CallPlan`): how the module's first reply becomes the final one
(``complete``: the handshake era runs InputRequiredResult rounds with the client and records
subscriptions; 2026-07-28 stamps the result), and whether a client that goes away cancels the
call (``cancel_on_disconnect``: 2026-07-28, where closing the response *is* the cancellation;
in the handshake era the client may resume with ``Last-Event-ID`` and cancels with
``notifications/cancelled``).

The call owns the request's observation: :func:`start_task` finishes it when the call's task
ends, however it ends. :func:`start_in_place` runs the call's first step in the request's own
task and starts a task only for a call that has to wait (most calls never do, so they pay for
no task); it finishes the observation itself when the call ends in that step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from smcp_box.errors import BadModuleReply, QuotaExceeded
from smcp_box.protocol.error_replies import Stage, error_reply
from smcp_box.protocol.inputs import INPUT_ROUND_METHODS, is_input_required
from smcp_box.protocol.jsonrpc import Request
from smcp_box.protocol.loglevels import LogFilter
from smcp_box.protocol.subscriptions import is_tenant_event
from smcp_box.protocol.versions import Era
from smcp_box.seams import CallContext, JsonObject
from smcp_box.web.inline_start import Finished, start_inline
from smcp_box.web.mcp_context import (
    Exchange,
    McpResponse,
    audit_refusal,
    reply_response,
    sse_response,
)
from smcp_box.web.mcp_tasks import escalating_caller, task_caller
from smcp_box.web.sse import frame_stream
from smcp_box.web.streams import ResponseStream, StreamState, Subscription

#: Calls the module once more with a (re-built) request message and returns its checked reply.
CallModule = Callable[[JsonObject], Awaitable[JsonObject]]
#: The era's last step: from the module's first reply (and a way to call it again, and the
#: request's stream) to the reply the client gets.
Completion = Callable[[JsonObject, CallModule, ResponseStream], Awaitable[JsonObject]]

log = logging.getLogger("smcp_box.web.mcp")


@dataclass(frozen=True)
class CallPlan:
    """How to run and answer one forwarded request; built by the era's module."""

    #: Only for the error mapping: the status a JSON-RPC error of this request travels with.
    era: Era
    request: Request
    protocol_version: str
    log_filter: LogFilter
    #: The level passed on to the module in its CallContext (legacy: the session's).
    log_level: str | None
    complete: Completion
    cancel_on_disconnect: bool
    session_id: str | None = None


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
            await exchange.endpoint.events.publish(exchange.tenant_name, message)
        elif log_filter.allows(message):
            await stream.notify(message)

    return sink


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
                    exchange.endpoint.services, refusal, exchange.tenant_name, exchange.source_ip
                )
    if reply is None:
        # The runtime checked the reply (check_module_reply): a request always has one.
        raise BadModuleReply("The tenant module returned no reply to a request")
    return reply


async def _final_reply(exchange: Exchange, plan: CallPlan, stream: ResponseStream) -> JsonObject:
    request = plan.request

    async def once(message: JsonObject) -> JsonObject:
        return await _call_module(exchange, plan, message, stream)

    services = exchange.endpoint.services
    caller = task_caller(
        exchange.tenant,
        exchange.principal,
        exchange.source_ip,
        plan.protocol_version,
        services.auditor,
    )
    # Every round of the call may escalate into a task (docs/tasks.md, "Who decides").
    again = await escalating_caller(services.tasks, caller, request, once)
    reply = await again(request.raw)
    if is_input_required(reply) and request.method not in INPUT_ROUND_METHODS:
        raise BadModuleReply(
            f"The tenant module answered {request.method} with an InputRequiredResult, "
            f"which only {', '.join(sorted(INPUT_ROUND_METHODS))} may return"
        )
    return await plan.complete(reply, again, stream)


async def run_call(exchange: Exchange, plan: CallPlan, stream: ResponseStream) -> str | None:
    """Call the module and put its reply (or the error it caused) on ``stream``; returns the
    observation's error kind."""
    request = plan.request
    try:
        try:
            reply = await _final_reply(exchange, plan, stream)
            error_kind = "rpc_error" if "error" in reply else None
        except Exception as err:
            failed = error_reply(err, stage=Stage.DISPATCH, era=plan.era, request_id=request.id)
            reply, error_kind = failed.body, failed.kind
            if isinstance(err, QuotaExceeded):
                # A per-call quota (fuel_per_minute …): audited like the HTTP-level refusals.
                await audit_refusal(
                    exchange.endpoint.services, err, exchange.tenant_name, exchange.source_ip
                )
        await stream.finish(reply)
    except asyncio.CancelledError:
        await stream.abandon()
        raise
    return error_kind


def start_task(
    exchange: Exchange, coro: Coroutine[Any, Any, str | None], name: str
) -> asyncio.Task[str | None]:
    """Run ``coro`` (which returns the request's error kind, None for success) as the task
    that owns this exchange's observer record: the record is finished when the task ends,
    with "cancelled" when it was cancelled (even before its first step)."""
    exchange.observation.hand_over()
    task = asyncio.create_task(coro, name=f"{name}:{exchange.tenant_name}")
    task.add_done_callback(_finisher(exchange))
    return task


def start_in_place(
    exchange: Exchange, coro: Coroutine[Any, Any, str | None], name: str
) -> asyncio.Task[str | None] | None:
    """:func:`start_task`, but the call's first step runs here, in the request's own task:
    None when the call finished in it (an inline module call never waits on the loop), else
    the task that continues it. Only for a call that holds no timeout across a wait (see
    :mod:`smcp_box.web.inline_start`)."""
    observation = exchange.observation
    observation.hand_over()
    try:
        started = start_inline(coro, name=f"{name}:{exchange.tenant_name}")
    except asyncio.CancelledError:
        observation.finish("cancelled")
        raise
    except BaseException:
        # Call coroutines map their errors; one that escapes is a bug: the router's 500.
        observation.finish("internal")
        raise
    if isinstance(started, Finished):
        observation.finish(started.result)
        return None
    started.add_done_callback(_finisher(exchange))
    return started


def _finisher(exchange: Exchange) -> Callable[[asyncio.Task[str | None]], None]:
    observation = exchange.observation

    def finished(done: asyncio.Task[str | None]) -> None:
        if done.cancelled():
            observation.finish("cancelled")
        elif done.exception() is not None:
            # Call tasks map their errors; one that escapes is a bug, logged by asyncio.
            observation.finish("internal")
        else:
            observation.finish(done.result())

    return finished


async def answer(
    exchange: Exchange,
    plan: CallPlan,
    stream: ResponseStream,
    sub: Subscription,
    task: asyncio.Task[str | None] | None,
    headers: Mapping[str, str],
) -> McpResponse:
    """Wait for the stream to be decided and build the HTTP response for it. ``task`` runs
    the call; None when the call has already finished (its stream is decided)."""
    handed_off = False
    try:
        if not await stream.wait_decided(exchange.endpoint.settings.sse_keepalive_s):
            await stream.commit()
        if stream.state is StreamState.JSON:
            assert stream.reply is not None
            return reply_response(plan.era, stream.reply, headers)
        handed_off = True
        return sse_response(_stream_body(exchange, plan, stream, sub, task), headers)
    finally:
        if not handed_off:
            stream.unsubscribe(sub)
            if plan.cancel_on_disconnect and task is not None:
                # The client went away before its answer: that is the cancellation.
                task.cancel()


async def _stream_body(
    exchange: Exchange,
    plan: CallPlan,
    stream: ResponseStream,
    sub: Subscription,
    task: asyncio.Task[str | None] | None,
) -> AsyncGenerator[bytes, None]:
    observer = exchange.endpoint.services.observer
    observer.stream_opened(exchange.tenant_name)
    try:
        async for chunk in frame_stream(
            sub.next, keepalive_s=exchange.endpoint.settings.sse_keepalive_s
        ):
            yield chunk
    finally:
        stream.unsubscribe(sub)
        observer.stream_closed(exchange.tenant_name)
        if plan.cancel_on_disconnect and task is not None and not task.done():
            task.cancel()
