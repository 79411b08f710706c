"""POST handling for protocol 2026-07-28: one stateless request per POST, no sessions.

The router has already checked Origin, tenant, credential, ``Accept``, ``Content-Type``, body size
and JSON syntax, and chosen this era. Here: notifications are acknowledged (202) and dropped (the
revision defines none a client sends over HTTP; cancelling is closing the response), responses are
refused (clients must not send them), and each request passes the envelope checks of
:mod:`smcp_box.protocol.modern` before the box answers it (``server/discover``) or
forwards it to the module. ``Mcp-Session-Id`` and ``Last-Event-ID`` are ignored.
"""

from __future__ import annotations

from typing import Any

from smcp_box.errors import InvalidRequest, SandboxError
from smcp_box.protocol.jsonrpc import Message, Notification, Request, result_response
from smcp_box.protocol.loglevels import LogFilter
from smcp_box.protocol.methods import Route, route_request
from smcp_box.protocol.modern import (
    check_notification_version,
    check_request,
    discover_result,
)
from smcp_box.protocol.versions import Era
from smcp_box.web.mcp_calls import CallPlan, answer, run_call, start_task
from smcp_box.web.mcp_context import Exchange, accepted, json_response, rpc_error
from smcp_box.web.streams import ResponseStream


async def handle_post(exchange: Exchange, message: Message, header_version: str | None) -> Any:
    if isinstance(message, Notification):
        check_notification_version(header_version)
        return accepted()
    if not isinstance(message, Request):
        raise InvalidRequest(
            "Invalid request: clients must not send JSON-RPC responses in protocol 2026-07-28"
        )
    envelope = check_request(message, exchange.headers, exchange.headers.lines())
    if route_request(Era.MODERN, message.method) is Route.BOX:
        return await _answer_box_method(exchange, message)

    plan = CallPlan(
        era=Era.MODERN,
        request=message,
        protocol_version=envelope.protocol_version,
        log_filter=LogFilter.modern(envelope.log_level),
        log_level=envelope.log_level,
    )
    # No persistence and no priming: 2026-07-28 streams are not resumable.
    stream = ResponseStream(persist=None)
    sub = stream.subscribe()
    task = start_task(exchange, run_call(exchange, plan, stream), "mcp-call")
    return await answer(exchange, plan, stream, sub, task, {})


async def _answer_box_method(exchange: Exchange, request: Request) -> Any:
    try:
        description = await exchange.tenant.describe()
    except SandboxError as err:
        return rpc_error(Era.MODERN, request.id, err)
    # server/discover is the only method the box answers itself in this era.
    result = discover_result(
        description.server_info, description.capabilities, description.instructions
    )
    return json_response(result_response(request.id, result))
