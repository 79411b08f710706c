"""Wire rules of the MCP tasks extension (SEP-2663; docs/tasks.md): negotiation, a tool's
task support, and the messages a task is shown in.

Pure functions over JSON values; the store's ``TaskRecord`` (or anything with the same
attributes, :class:`TaskView`) is what they render.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from smcp_box.errors import InvalidParams, MissingClientCapability
from smcp_box.protocol.modern import CLIENT_CAPABILITIES_META_KEY
from smcp_box.seams import JsonObject

TASKS_EXTENSION: Final = "io.modelcontextprotocol/tasks"
#: The box's ``params._meta`` key toward the module: ``{"escalate": "allowed"}`` on a call
#: that may become a task, ``{"taskId": id}`` on a task's own call.
TASK_META_KEY: Final = "smcp-box/task"
#: The v1 methods SEP-2663 removed: -32601.
REMOVED_METHODS: Final = frozenset({"tasks/result", "tasks/list"})
#: The methods of the extension, all gated on negotiation.
TASK_METHODS: Final = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
#: The answer to tasks/update and tasks/cancel: no task fields (SEP-2322 discriminator only).
ACK: Final[Mapping[str, str]] = {"resultType": "complete"}

TaskSupport = Literal["forbidden", "optional", "required"]


class TaskView(Protocol):
    """What rendering needs of a task (``smcp_box.store.tasks.TaskRecord`` has it)."""

    @property
    def task_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def updated_at(self) -> float: ...
    @property
    def ttl_ms(self) -> int: ...
    @property
    def poll_interval_ms(self) -> int: ...
    @property
    def input_requests(self) -> JsonObject: ...
    @property
    def result(self) -> JsonObject | None: ...
    @property
    def error(self) -> JsonObject | None: ...


def negotiated(params: Mapping[str, Any] | None) -> bool:
    """Whether the request declares the extension in
    ``_meta["io.modelcontextprotocol/clientCapabilities"].extensions`` (sent per request in the
    2026-07-28 era, injected from ``initialize`` for handshake-era sessions)."""
    meta = params.get("_meta") if params is not None else None
    capabilities = meta.get(CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    return isinstance(extensions, dict) and TASKS_EXTENSION in extensions


def missing_extension(what: str) -> MissingClientCapability:
    """-32021 with ``data.requiredCapabilities`` naming the extension (SEP-2575)."""
    return MissingClientCapability(
        f"{what} needs the {TASKS_EXTENSION} extension: declare it in the client's "
        "capabilities.extensions (or in this request's _meta clientCapabilities)",
        data={"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
    )


def tool_task_support(tool: Mapping[str, Any] | None) -> TaskSupport:
    """A tool definition's ``execution.taskSupport``; anything else counts as forbidden."""
    execution = tool.get("execution") if tool is not None else None
    support = execution.get("taskSupport") if isinstance(execution, dict) else None
    if support == "optional":
        return "optional"
    if support == "required":
        return "required"
    return "forbidden"


def advertises_tasks(tools: list[JsonObject]) -> bool:
    """Whether a module's tools/list has a tool that may run as a task, so that the server's
    capabilities list the extension."""
    return any(tool_task_support(tool) != "forbidden" for tool in tools)


def with_tasks_extension(capabilities: JsonObject) -> JsonObject:
    """Server capabilities plus ``extensions["io.modelcontextprotocol/tasks"] = {}`` (never the
    v1 ``capabilities.tasks`` slot, which is dropped if a module set it)."""
    merged = {k: v for k, v in capabilities.items() if k != "tasks"}
    extensions = merged.get("extensions")
    merged["extensions"] = {
        **(extensions if isinstance(extensions, dict) else {}),
        TASKS_EXTENSION: {},
    }
    return merged


def task_id_param(params: Mapping[str, Any] | None) -> str:
    """``params.taskId`` of tasks/get, tasks/update or tasks/cancel; -32602 otherwise."""
    task_id = params.get("taskId") if params is not None else None
    if not isinstance(task_id, str) or not task_id:
        raise InvalidParams("Invalid params: params.taskId must be the task's id (a string)")
    return task_id


def input_responses_param(params: Mapping[str, Any] | None) -> JsonObject:
    """``params.inputResponses`` of tasks/update (an object); -32602 otherwise."""
    responses = params.get("inputResponses") if params is not None else None
    if not isinstance(responses, dict):
        raise InvalidParams(
            "Invalid params: params.inputResponses must be an object mapping inputRequests keys "
            "to their results"
        )
    return responses


def unknown_task(task_id: str) -> InvalidParams:
    """The one answer for a task id that does not exist, expired or is another caller's."""
    return InvalidParams(f"Invalid params: no task {task_id!r} (unknown, expired or not yours)")


def iso8601(timestamp: float) -> str:
    """UTC with milliseconds, e.g. ``2026-07-28T10:30:00.123Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _task_fields(task: TaskView) -> JsonObject:
    return {
        "taskId": task.task_id,
        "status": task.status,
        "createdAt": iso8601(task.created_at),
        "lastUpdatedAt": iso8601(task.updated_at),
        "ttlMs": int(task.ttl_ms),
        "pollIntervalMs": int(task.poll_interval_ms),
    }


def create_task_result(task: TaskView) -> JsonObject:
    """The flat ``CreateTaskResult`` answering a tools/call that became a task."""
    return {"resultType": "task", **_task_fields(task)}


def detailed_task(task: TaskView) -> JsonObject:
    """The ``DetailedTask`` answering tasks/get: the outcome inlined by status, never a
    ``requestState``."""
    detailed: JsonObject = {"resultType": "complete", **_task_fields(task)}
    if task.status == "completed" and task.result is not None:
        detailed["result"] = task.result
    elif task.status == "failed" and task.error is not None:
        detailed["error"] = task.error
    elif task.status == "input_required":
        detailed["inputRequests"] = task.input_requests
    return detailed


# --- the sync phase of a tools/call (docs/tasks.md, "Who decides") -----------------------------


def may_escalate(params: Mapping[str, Any], tool: Mapping[str, Any] | None) -> bool:
    """Whether this tools/call may become a task: the tool declares task support and the
    request negotiated the extension. A ``required`` tool without negotiation is refused
    (-32021) before the module is called; a v1 ``task`` param changes nothing."""
    support = tool_task_support(tool)
    if support == "forbidden":
        return False
    if negotiated(params):
        return True
    if support == "required":
        name = tool.get("name") if tool is not None else None
        raise missing_extension(f"tool {name!r} (taskSupport: required)")
    return False


def with_escalation_allowed(params: JsonObject) -> JsonObject:
    """``params`` for the module's sync-phase call, telling it that it may escalate."""
    meta = params.get("_meta")
    merged = {**(meta if isinstance(meta, dict) else {}), TASK_META_KEY: {"escalate": "allowed"}}
    return {**params, "_meta": merged}


def is_escalation(result: object) -> bool:
    """Whether the module's result asks for the call to become a task."""
    return isinstance(result, dict) and result.get("resultType") == "task"
