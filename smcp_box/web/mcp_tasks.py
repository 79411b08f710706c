"""The tasks extension on the MCP endpoint (docs/tasks.md), for both eras.

Two seams into the request path:

* :func:`escalating_caller` wraps the module calls of a ``tools/call`` that may become a task:
  each call tells the module it may escalate, and a ``{"resultType": "task"}`` reply starts the
  task (durably, before its id is handed out) and is answered with the ``CreateTaskResult``.
  Every round of a call goes through it, so the escalation of an MRTR round carries that round's
  ``inputResponses``/``requestState`` into the task.
* :func:`answer_task_method` answers ``tasks/get``, ``tasks/update``, ``tasks/cancel`` (and
  -32601 for the removed ``tasks/result``, ``tasks/list``) without calling the module.

The protocol rules are :mod:`smcp_box.protocol.tasks`'s; the running is
:class:`~smcp_box.tenancy.tasks.TaskRunner`'s. A task is its credential subject's: another
subject's task id is answered like an unknown one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smcp_box.config import TaskSettings
from smcp_box.errors import BadModuleReply, MethodNotFound
from smcp_box.protocol.jsonrpc import Request, result_response
from smcp_box.protocol.tasks import (
    ACK,
    REMOVED_METHODS,
    TASK_METHODS,
    create_task_result,
    detailed_task,
    input_responses_param,
    is_escalation,
    may_escalate,
    missing_extension,
    negotiated,
    task_id_param,
    unknown_task,
    with_escalation_allowed,
)
from smcp_box.seams import Auditor, JsonObject, Principal
from smcp_box.store.tasks import TaskRecord
from smcp_box.tenancy.runtime import WasmTenant
from smcp_box.tenancy.tasks import TaskRunner, task_terms

#: Calls the module with one message (a round of the request) and returns its reply.
ModuleCall = Callable[[JsonObject], Awaitable[JsonObject]]

#: The methods this module answers instead of the tenant module.
HANDLED_METHODS = TASK_METHODS | REMOVED_METHODS


@dataclass(frozen=True)
class TaskService:
    """What the endpoint needs to run tasks: the box's runner and its ``[tasks]`` settings."""

    runner: TaskRunner
    settings: TaskSettings


@dataclass(frozen=True)
class TaskCaller:
    """Who asks, as a task records it."""

    tenant: WasmTenant
    principal: Principal
    source_ip: str | None
    protocol_version: str
    auditor: Auditor


def _tool_definition(tools: tuple[JsonObject, ...] | None, name: object) -> JsonObject | None:
    for tool in tools or ():
        if tool.get("name") == name:
            return tool
    return None


async def escalating_caller(
    service: TaskService | None,
    caller: TaskCaller | None,
    request: Request,
    call: ModuleCall,
) -> ModuleCall:
    """``call`` for the rounds of ``request``, made able to escalate into a task when the
    request is a ``tools/call`` of a task-supporting tool that negotiated the extension.

    Raises -32021 for a ``required`` tool without negotiation (before the module is called).
    A module that answers ``resultType: "task"`` where it was not allowed to is a bad reply.
    """
    params = request.params if isinstance(request.params, dict) else {}
    allowed = False
    if request.method == "tools/call" and service is not None and caller is not None:
        description = await caller.tenant.describe()
        tool = _tool_definition(description.tools, params.get("name"))
        allowed = may_escalate(params, tool)

    async def round_call(message: JsonObject) -> JsonObject:
        round_params = message.get("params")
        if allowed and isinstance(round_params, dict):
            message = {**message, "params": with_escalation_allowed(round_params)}
        reply = await call(message)
        if not is_escalation(reply.get("result")):
            return reply
        if not allowed or service is None or caller is None:
            raise BadModuleReply(
                f"The tenant module answered {request.method} with resultType 'task', but this "
                "call may not become a task (the tool declares no execution.taskSupport or the "
                "client did not negotiate the tasks extension)"
            )
        task_params = message.get("params")
        record = await _start(
            service, caller, task_params if isinstance(task_params, dict) else params
        )
        return result_response(request.id, create_task_result(record))

    return round_call


async def _start(service: TaskService, caller: TaskCaller, params: JsonObject) -> TaskRecord:
    # The task's own calls get {"taskId": …} in place of the escalation flag.
    tool = params.get("name")
    terms = task_terms(
        service.settings,
        caller.tenant.manifest.task_timeouts,
        tool if isinstance(tool, str) else "",
        max_open=caller.tenant.policy.quotas.max_open_tasks,
    )
    record = await service.runner.start(
        caller.tenant,
        params,
        terms,
        owner=caller.principal.subject,
        caller=caller.principal,
        source_ip=caller.source_ip,
        protocol_version=caller.protocol_version,
    )
    await caller.auditor.record(
        "task.created",
        tenant=caller.tenant.name,
        actor=caller.principal.subject,
        source_ip=caller.source_ip,
        outcome="ok",
        detail={"task": record.task_id[:8], "tool": record.tool},
    )
    return record


async def answer_task_method(
    service: TaskService | None, caller: TaskCaller | None, request: Request
) -> JsonObject:
    """The JSON-RPC response to a tasks method; raises the error to map otherwise."""
    if request.method in REMOVED_METHODS:
        raise MethodNotFound(
            f"Method not found: {request.method} was removed by the tasks extension (SEP-2663); "
            "tasks/get returns the result inline"
        )
    params: Mapping[str, Any] = request.params if isinstance(request.params, dict) else {}
    if service is None or caller is None:
        raise MethodNotFound(f"Method not found: this box runs no tasks ({request.method})")
    # Negotiation is checked before the id is looked at (an un-negotiated caller learns nothing).
    if not negotiated(params):
        raise missing_extension(request.method)
    task_id = task_id_param(params)
    tenant, owner = caller.tenant, caller.principal.subject
    runner = service.runner
    if request.method == "tasks/get":
        record = await runner.get(tenant.name, task_id, owner)
        if record is None:
            raise unknown_task(task_id)
        return result_response(request.id, detailed_task(record))
    if request.method == "tasks/update":
        responses = input_responses_param(params)
        record = await runner.update(
            tenant,
            task_id,
            responses,
            owner=owner,
            caller=caller.principal,
            source_ip=caller.source_ip,
            protocol_version=caller.protocol_version,
        )
    else:
        record = await runner.cancel(tenant.name, task_id, owner)
        if record is not None:
            await caller.auditor.record(
                "task.cancelled",
                tenant=tenant.name,
                actor=owner,
                source_ip=caller.source_ip,
                outcome="ok",
                detail={"task": task_id[:8], "tool": record.tool, "status": record.status},
            )
    if record is None:
        raise unknown_task(task_id)
    return result_response(request.id, dict(ACK))


def task_caller(
    tenant: object,
    principal: Principal,
    source_ip: str | None,
    protocol_version: str,
    auditor: Auditor,
) -> TaskCaller | None:
    """The caller record when the tenant can run tasks (a wasm tenant runtime)."""
    if not isinstance(tenant, WasmTenant):
        return None
    return TaskCaller(tenant, principal, source_ip, protocol_version, auditor)
