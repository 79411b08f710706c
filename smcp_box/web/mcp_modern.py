"""POST handling for protocol 2026-07-28: one stateless request per POST, no sessions.

The router has already checked Origin, tenant, credential, ``Accept``, ``Content-Type``, body size
and JSON syntax, and chosen this era. Here: notifications are acknowledged (202) and dropped (the
revision defines none a client sends over HTTP; cancelling is closing the response), responses are
refused (clients must not send them), and each request passes the envelope checks of
:mod:`smcp_box.protocol.modern` — and, for ``tools/call``, the ``Mcp-Param-*`` checks against
the tool's schema — before the box answers it (``server/discover``, ``subscriptions/listen``)
or forwards it to the module. ``Mcp-Session-Id`` and ``Last-Event-ID`` are ignored.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from smcp_box.errors import BoxError, InvalidRequest, MethodNotFound
from smcp_box.protocol.error_replies import Stage
from smcp_box.protocol.jsonrpc import Message, Notification, Request, result_response
from smcp_box.protocol.loglevels import LogFilter
from smcp_box.protocol.methods import Route, route_request
from smcp_box.protocol.modern import (
    check_notification_version,
    check_request,
    discover_result,
    finalize_result,
)
from smcp_box.protocol.params import check_mirrored_headers
from smcp_box.protocol.subscriptions import (
    SubscriptionFilter,
    acknowledgement,
    granted_filter,
    offers_subscriptions,
    parse_filter,
)
from smcp_box.protocol.versions import Era
from smcp_box.seams import JsonObject, ModuleDescription
from smcp_box.web.mcp_calls import CallModule, CallPlan, answer, run_call, start_in_place
from smcp_box.web.mcp_context import (
    Exchange,
    McpResponse,
    accepted,
    error_response,
    json_response,
    sse_response,
)
from smcp_box.web.mcp_tasks import HANDLED_METHODS, answer_task_method, task_caller
from smcp_box.web.sse import frame_stream
from smcp_box.web.streams import STANDALONE_BACKLOG, ResponseStream
from smcp_box.web.tenant_events import Listener


async def handle_post(
    exchange: Exchange, message: Message, header_version: str | None
) -> McpResponse:
    if isinstance(message, Notification):
        check_notification_version(header_version)
        return accepted()
    if not isinstance(message, Request):
        raise InvalidRequest(
            "Invalid request: clients must not send JSON-RPC responses in protocol 2026-07-28"
        )
    envelope = check_request(message, exchange.headers, exchange.headers.lines())
    if message.method in HANDLED_METHODS:
        return await _answer_task_method(exchange, message, envelope.protocol_version)
    if route_request(Era.MODERN, message.method) is Route.BOX:
        return await _answer_box_method(exchange, message)
    if message.method == "tools/call":
        try:
            await _check_param_headers(exchange, message)
        except Exception as err:
            return error_response(err, stage=Stage.DISPATCH, era=Era.MODERN, request_id=message.id)

    async def complete(
        reply: JsonObject, _again: CallModule, _stream: ResponseStream
    ) -> JsonObject:
        # An InputRequiredResult passes through: the client runs the rounds itself.
        if "result" in reply:
            info = await _server_info(exchange)
            reply["result"] = finalize_result(message.method, reply["result"], info)
        return reply

    plan = CallPlan(
        era=Era.MODERN,
        request=message,
        protocol_version=envelope.protocol_version,
        log_filter=LogFilter.modern(envelope.log_level),
        log_level=envelope.log_level,
        complete=complete,
        cancel_on_disconnect=True,
    )
    # No persistence and no priming: 2026-07-28 streams are not resumable.
    stream = ResponseStream(persist=None)
    sub = stream.subscribe()
    task = start_in_place(exchange, run_call(exchange, plan, stream), "mcp-call")
    return await answer(exchange, plan, stream, sub, task, {})


async def _answer_task_method(exchange: Exchange, request: Request, version: str) -> McpResponse:
    services = exchange.endpoint.services
    caller = task_caller(
        exchange.tenant, exchange.principal, exchange.source_ip, version, services.auditor
    )
    try:
        reply = await answer_task_method(services.tasks, caller, request)
    except Exception as err:
        return error_response(err, stage=Stage.DISPATCH, era=Era.MODERN, request_id=request.id)
    return json_response(reply)


async def _server_info(exchange: Exchange) -> JsonObject | None:
    try:
        return (await exchange.tenant.describe()).server_info
    except BoxError:
        # The stamp is a SHOULD and display-only: a failing describe must not fail the call.
        return None


async def _check_param_headers(exchange: Exchange, request: Request) -> None:
    """SEP-2243: the ``Mcp-Param-*`` headers of a tools/call must agree with its arguments
    wherever the tool's schema mirrors an argument into a header (HeaderMismatch, 400)."""
    params = request.params or {}
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str):
        return  # the module answers -32602 for a call without a tool name
    mirrored = await exchange.endpoint.schemas.mirrored_params(exchange.tenant, name)
    if not mirrored:
        return  # an unknown tool (the module says so), or one that mirrors nothing
    check_mirrored_headers(
        mirrored, arguments if isinstance(arguments, dict) else {}, exchange.headers.lines()
    )


async def _answer_box_method(exchange: Exchange, request: Request) -> McpResponse:
    try:
        description = await exchange.tenant.describe()
    except Exception as err:
        return error_response(err, stage=Stage.DISPATCH, era=Era.MODERN, request_id=request.id)
    if request.method == "subscriptions/listen":
        return _listen(exchange, request, description)
    result = discover_result(
        description.server_info, description.capabilities, description.instructions
    )
    return json_response(result_response(request.id, result))


def _listen(exchange: Exchange, request: Request, description: ModuleDescription) -> McpResponse:
    """``subscriptions/listen``: an SSE stream of the tenant notifications the client asked for
    and the tenant offers, opened by an acknowledgement; it lasts until the client closes it
    (or the box shuts down, which ends it with the listen request's result)."""
    capabilities = description.capabilities
    if not offers_subscriptions(capabilities):
        raise MethodNotFound(
            f"Method not found: tenant {exchange.tenant_name!r} declares no listChanged or "
            "subscribe capability, so there is nothing to listen to"
        )
    granted = granted_filter(parse_filter(request.params), capabilities)
    return sse_response(_listen_body(exchange, request, granted))


async def _listen_body(
    exchange: Exchange, request: Request, granted: SubscriptionFilter
) -> AsyncGenerator[bytes, None]:
    # Everything the stream holds is taken here, inside the body, whose ``finally`` always runs.
    stream = ResponseStream(persist=None, pending=False)
    # Bounded like a GET stream: a reader this far behind is cut off rather than buffered for.
    sub = stream.subscribe(STANDALONE_BACKLOG)
    await stream.notify(acknowledgement(granted, request.id))
    listener = Listener(
        tenant=exchange.tenant_name, listen_id=request.id, granted=granted, stream=stream
    )
    exchange.endpoint.events.add_listener(listener)
    observer = exchange.endpoint.services.observer
    observer.stream_opened(exchange.tenant_name)
    try:
        async for chunk in frame_stream(
            sub.next, keepalive_s=exchange.endpoint.settings.sse_keepalive_s
        ):
            yield chunk
    finally:
        exchange.endpoint.events.remove_listener(listener)
        stream.unsubscribe(sub)
        observer.stream_closed(exchange.tenant_name)
