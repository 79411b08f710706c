"""Runs durable tasks (the MCP tasks extension, docs/tasks.md): a tool call in the background,
its outcome in the store.

The web layer decides *whether* a tools/call becomes a task (the client negotiated the
extension, the tool declares ``execution.taskSupport``, the module asked to escalate); this
module does the rest: it records the task durably *before* its id is handed out, runs the
module call under the tenant's fuel and memory limits with the tool's longer wall clock,
records the result, the error or the input the module asks for, resumes it when the client
answers (tasks/update), and stops it on tasks/cancel.

Everything a task needs to continue is in the store, not in this object: after a restart a
task waiting for input resumes on the next tasks/update, and a task whose module call was
running is failed with a reason (:meth:`TaskRunner.recover`), never silently lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from smcp_box.config import SETTING_BOUNDS, TaskSettings
from smcp_box.errors import CALL_TIMEOUT, INTERNAL_ERROR, BoxError, CallTimeout, ConfigError
from smcp_box.protocol.tasks import TASK_META_KEY
from smcp_box.seams import CallContext, JsonObject, Principal
from smcp_box.store.tasks import TaskRecord, Tasks

logger = logging.getLogger("smcp_box.tasks")

#: The error of tasks left running by a previous run of the box.
INTERRUPTED_REASON: Final = (
    "the box stopped while this task was running (restart or crash), so its result is lost; "
    "call the tool again"
)
#: The only key of a tenant.toml ``[tools.NAME]`` table.
TOOL_KEYS: Final = frozenset({"task_timeout_s"})


class TaskTarget(Protocol):
    """What runs a task's module calls: a tenant runtime (tenancy/runtime.py WasmTenant)."""

    @property
    def name(self) -> str: ...

    async def call(
        self, message: JsonObject, ctx: CallContext, *, timeout_ms: int | None = None
    ) -> JsonObject | None: ...


@dataclass(frozen=True)
class TaskTerms:
    """The numbers one new task is created with."""

    ttl_ms: int
    poll_interval_ms: int
    #: The wall-clock limit of each module call of the task.
    timeout_s: int
    #: The tenant's ``max_open_tasks`` quota.
    max_open: int


def parse_tool_tables(raw: object) -> dict[str, int]:
    """tenant.toml ``[tools.NAME]`` tables: tool name -> ``task_timeout_s``, each within the
    bound of ``[tasks] max_timeout_s``; ConfigError naming the table otherwise."""
    if not isinstance(raw, dict):
        raise ConfigError("[tools] must be a table of [tools.NAME] tables")
    bound = SETTING_BOUNDS["tasks.max_timeout_s"]
    timeouts: dict[str, int] = {}
    for tool, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[tools.{tool}] must be a table")
        unknown = sorted(set(table) - TOOL_KEYS)
        if unknown:
            raise ConfigError(
                f"[tools.{tool}] has unknown key(s) {', '.join(unknown)} (known: task_timeout_s)"
            )
        if "task_timeout_s" not in table:
            continue
        value = table["task_timeout_s"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"[tools.{tool}] task_timeout_s = {value!r} is not an integer")
        problem = bound.problem(f"[tools.{tool}] task_timeout_s", value)
        if problem is not None:
            raise ConfigError(problem)
        timeouts[tool] = value
    return timeouts


def task_terms(
    settings: TaskSettings, timeouts: Mapping[str, int], tool: str, *, max_open: int
) -> TaskTerms:
    """The terms of a new task of ``tool``: its tenant.toml ``task_timeout_s`` (else the box's
    ``default_timeout_s``), which may not exceed ``[tasks] max_timeout_s``."""
    timeout_s = timeouts.get(tool, settings.default_timeout_s)
    if timeout_s > settings.max_timeout_s:
        raise ConfigError(
            f"[tools.{tool}] task_timeout_s = {timeout_s} is above the box's [tasks] "
            f"max_timeout_s ({settings.max_timeout_s}); lower it or raise the box's bound"
        )
    return TaskTerms(
        ttl_ms=settings.ttl_s * 1000,
        poll_interval_ms=settings.poll_interval_ms,
        timeout_s=timeout_s,
        max_open=max_open,
    )


class TaskRunner:
    """Starts, resumes and cancels tasks; one per box, on the box's event loop."""

    def __init__(self, tasks: Tasks) -> None:
        self._tasks = tasks
        #: The module call of each task running in this process, by task id.
        self._running: dict[str, asyncio.Task[None]] = {}
        #: The tenant of each running task, by task id (to stop a removed tenant's calls).
        self._tenant_of: dict[str, str] = {}

    @property
    def running(self) -> int:
        """Tasks whose module call is running now."""
        return len(self._running)

    async def recover(self) -> int:
        """At startup, before serving: fail the tasks this box's previous run left running."""
        failed = await self.recover_for(self._tasks.box_id)
        if failed:
            logger.warning("failed %d task(s) left running by the previous run", failed)
        return failed

    async def recover_for(self, box_id: str) -> int:
        """Fail the tasks the box ``box_id`` left running: this box's own at start, or those
        of a box known to be gone (its heartbeat stopped), never a live box's."""
        return await self._tasks.recover_for(box_id, INTERRUPTED_REASON)

    async def start(
        self,
        target: TaskTarget,
        params: JsonObject,
        terms: TaskTerms,
        *,
        owner: str,
        caller: Principal | None = None,
        source_ip: str | None = None,
        protocol_version: str,
    ) -> TaskRecord:
        """Create a task for the tools/call ``params`` and start its module call.

        The task is committed to the store before this returns, so a tasks/get right after
        the CreateTaskResult finds it. Raises TaskQuotaExceeded past ``terms.max_open``.
        """
        tool = params.get("name")
        record = await self._tasks.create(
            target.name,
            owner,
            tool if isinstance(tool, str) else "",
            params,
            ttl_ms=terms.ttl_ms,
            poll_interval_ms=terms.poll_interval_ms,
            timeout_s=terms.timeout_s,
            max_open=terms.max_open,
        )
        ctx = _context(target.name, protocol_version, caller, source_ip)
        self._launch(target, record, params, ctx)
        return record

    async def update(
        self,
        target: TaskTarget,
        task_id: str,
        responses: Mapping[str, Any],
        *,
        owner: str,
        caller: Principal | None = None,
        source_ip: str | None = None,
        protocol_version: str,
    ) -> TaskRecord | None:
        """tasks/update: record ``responses``; once every pending input is answered, run the
        module's next round with them (and its requestState). None for an unknown task."""
        record = await self._tasks.answer_inputs(target.name, task_id, owner, responses)
        if (
            record is None
            or record.status != "working"
            or not record.input_responses
            or self._is_running(task_id)
        ):
            return record
        params: JsonObject = {**record.request, "inputResponses": record.input_responses}
        if record.request_state is not None:
            params["requestState"] = record.request_state
        else:
            params.pop("requestState", None)
        if not await self._tasks.resume(target.name, task_id):
            return record  # cancelled in between
        ctx = _context(target.name, protocol_version, caller, source_ip)
        self._launch(target, record, params, ctx)
        return record

    async def get(self, tenant: str, task_id: str, owner: str) -> TaskRecord | None:
        return await self._tasks.get(tenant, task_id, owner)

    async def cancel(self, tenant: str, task_id: str, owner: str) -> TaskRecord | None:
        """tasks/cancel: mark an open task cancelled and stop its module call (the wasm stops
        within an epoch tick). A finished task is left as it is. None for an unknown task."""
        record = await self._tasks.cancel(tenant, task_id, owner)
        running = self._running.get(task_id)
        if record is not None and record.status == "cancelled" and running is not None:
            running.cancel()
        return record

    def _is_running(self, task_id: str) -> bool:
        job = self._running.get(task_id)
        return job is not None and not job.done()

    async def purge_expired(self) -> int:
        return await self._tasks.purge_expired()

    async def settled(self, task_id: str) -> None:
        """Wait until the task's current module call (if any) has ended and been recorded."""
        running = self._running.get(task_id)
        if running is not None:
            await asyncio.wait({running})

    async def drop_tenant(self, tenant: str) -> int:
        """A removed tenant: stop its running task calls and delete all its tasks (results
        included); returns how many tasks were deleted."""
        jobs = [
            job
            for task_id, job in list(self._running.items())
            if self._tenant_of.get(task_id) == tenant
        ]
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.wait(jobs)
        return await self._tasks.delete_tenant(tenant)

    async def close(self) -> None:
        """Stop every running module call (box shutdown); their tasks fail with a reason."""
        running = list(self._running.values())
        for job in running:
            job.cancel()
        if running:
            await asyncio.wait(running)
        await self.recover_for(self._tasks.box_id)

    # --- one round -----------------------------------------------------------------------

    def _launch(
        self, target: TaskTarget, record: TaskRecord, params: JsonObject, ctx: CallContext
    ) -> None:
        job = asyncio.create_task(
            self._round(target, record, params, ctx), name=f"task {record.task_id}"
        )
        self._running[record.task_id] = job
        self._tenant_of[record.task_id] = record.tenant

        def forget(done: asyncio.Task[None]) -> None:
            if self._running.get(record.task_id) is done:
                del self._running[record.task_id]
                self._tenant_of.pop(record.task_id, None)

        job.add_done_callback(forget)

    async def _round(
        self, target: TaskTarget, record: TaskRecord, params: JsonObject, ctx: CallContext
    ) -> None:
        try:
            await self._call_and_record(target, record, params, ctx)
        except Exception:
            # Recording the outcome failed (the store is full or failing): the task stays
            # "working" until the next start fails it with INTERRUPTED_REASON; never silent.
            logger.exception("tenant %s: could not record task %s", record.tenant, record.task_id)

    async def _call_and_record(
        self, target: TaskTarget, record: TaskRecord, params: JsonObject, ctx: CallContext
    ) -> None:
        tenant, task_id = record.tenant, record.task_id
        meta = params.get("_meta")
        call_params: JsonObject = {
            **params,
            "_meta": {
                **(meta if isinstance(meta, dict) else {}),
                TASK_META_KEY: {"taskId": task_id},
            },
        }
        message: JsonObject = {
            "jsonrpc": "2.0",
            "id": f"task:{task_id}",
            "method": "tools/call",
            "params": call_params,
        }
        try:
            reply = await target.call(message, ctx, timeout_ms=int(record.timeout_s * 1000))
        except asyncio.CancelledError:
            # tasks/cancel (already recorded) or shutdown (close() records it).
            raise
        except CallTimeout:
            await self._tasks.fail(tenant, task_id, _timeout_error(record))
            return
        except BoxError as err:
            await self._tasks.fail(tenant, task_id, err.to_jsonrpc_error())
            return
        except Exception:
            logger.exception("tenant %s: task %s failed unexpectedly", tenant, task_id)
            await self._tasks.fail(
                tenant,
                task_id,
                {"code": INTERNAL_ERROR, "message": "the box failed running this task"},
            )
            return
        await self._record(record, reply)

    async def _record(self, record: TaskRecord, reply: JsonObject | None) -> None:
        tenant, task_id = record.tenant, record.task_id
        error = reply.get("error") if reply is not None else None
        result = reply.get("result") if reply is not None else None
        if isinstance(error, dict):
            await self._tasks.fail(tenant, task_id, error)
            return
        if not isinstance(result, dict):
            await self._tasks.fail(tenant, task_id, _bad_reply("it sent no result"))
            return
        kind = result.get("resultType")
        if kind == "input_required":
            requests = result.get("inputRequests")
            if not isinstance(requests, dict) or not requests:
                await self._tasks.fail(
                    tenant, task_id, _bad_reply("its input_required result has no inputRequests")
                )
                return
            await self._tasks.require_input(tenant, task_id, requests, result.get("requestState"))
            return
        if kind == "task":
            await self._tasks.fail(
                tenant,
                task_id,
                _bad_reply(f"it asked to become a task while running as one ({TASK_META_KEY})"),
            )
            return
        await self._tasks.complete(tenant, task_id, _inline_result(result))


def _inline_result(result: JsonObject) -> JsonObject:
    """The CallToolResult as tasks/get inlines it: no resultType (the envelope has its own)
    and no v1 related-task ``_meta`` (the taskId is at the envelope's root)."""
    inline = {k: v for k, v in result.items() if k != "resultType"}
    meta = inline.get("_meta")
    if isinstance(meta, dict) and "io.modelcontextprotocol/related-task" in meta:
        trimmed = {k: v for k, v in meta.items() if k != "io.modelcontextprotocol/related-task"}
        if trimmed:
            inline["_meta"] = trimmed
        else:
            del inline["_meta"]
    return inline


def _timeout_error(record: TaskRecord) -> JsonObject:
    return {
        "code": CALL_TIMEOUT,
        "message": (
            f"tenant {record.tenant!r}: the task's call of {record.tool!r} did not finish "
            f"within its wall-clock limit of {record.timeout_s:g} s; raise task_timeout_s in "
            f"tenant.toml [tools.{record.tool}] (at most the box's [tasks] max_timeout_s)"
        ),
        "data": {"tenant": record.tenant, "limit_s": record.timeout_s},
    }


def _bad_reply(why: str) -> JsonObject:
    return {
        "code": INTERNAL_ERROR,
        "message": f"the module's reply to the task is not valid: {why}",
    }


def _context(
    tenant: str, protocol_version: str, caller: Principal | None, source_ip: str | None
) -> CallContext:
    # A task outlives the request that started it: notifications the module sends while it
    # runs have no stream to go to, and are dropped (tasks/get is how the client learns).
    async def drop(_message: JsonObject) -> None:
        return None

    return CallContext(
        tenant, protocol_version, drop, caller=caller, source_ip=source_ip, request_id=None
    )
