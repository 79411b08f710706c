"""A tenant as the transport sees it: its manifest, its loaded module, and calls into it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from smcp_box.config import QuotaSettings
from smcp_box.errors import FuelExhausted, SandboxError, ToolBlocked, ToolNotApproved
from smcp_box.logs import request_id_var
from smcp_box.protocol.jsonrpc import check_module_reply, encode_json
from smcp_box.protocol.tasks import advertises_tasks, with_tasks_extension
from smcp_box.sandbox import CallOutcome, Sandbox, TenantModule, inline_eligible
from smcp_box.seams import Auditor, AuthMode, CallContext, JsonObject, ModuleDescription
from smcp_box.store import KvQuota
from smcp_box.store.blobs import Blobs
from smcp_box.tenancy.approvals import OthersView, PendingChange
from smcp_box.tenancy.baselines import TenantBaselines
from smcp_box.tenancy.blob_handles import BlobHandles
from smcp_box.tenancy.blob_resources import answer as answer_blob_resources
from smcp_box.tenancy.blob_resources import with_blob_capability
from smcp_box.tenancy.describe import ask_runtime, describe_module
from smcp_box.tenancy.hostcalls import BlobAccess, KeyValueStore, StoreHostCalls
from smcp_box.tenancy.manifest import TenantManifest
from smcp_box.tenancy.quotas import FuelWindow, TenantPolicy, blob_quotas, resolve_quotas
from smcp_box.tenancy.secrets import TenantSecrets
from smcp_box.vetting.definitions import tool_name_set
from smcp_box.vetting.report import VetReport
from smcp_box.vetting.signatures import SignatureCheck

logger = logging.getLogger("smcp_box.tenant")

#: The list methods answered from the approved definitions while a change is pending, and
#: the kind (result key) each lists.
_HELD_LISTS: Final = {
    "prompts/list": "prompts",
    "resources/templates/list": "resourceTemplates",
    "resources/list": "resources",
}

#: Where a tools/call result carries its receipt when the tenant's manifest says
#: ``receipts = true`` (an MCP ``_meta`` key under the box's own prefix).
RECEIPT_META_KEY: Final = "smcp-box/receipt"


@dataclass
class CallStats:
    calls: int = 0
    errors: int = 0
    fuel_used: int = 0


class WasmTenant:
    """Implements the transport's TenantRuntime protocol over the sandbox."""

    def __init__(
        self,
        manifest: TenantManifest,
        module: TenantModule,
        *,
        sandbox: Sandbox,
        kv: KeyValueStore,
        clock: Callable[[], float],
        enabled: bool = True,
        inline_fuel: int = 0,
        auditor: Auditor | None = None,
        description: ModuleDescription | None = None,
        policy: TenantPolicy | None = None,
        secrets: TenantSecrets | None = None,
        blobs: Blobs | None = None,
    ) -> None:
        self.manifest = manifest
        #: The box's blob store (None: blob imports fail with status -2).
        self.blobs = blobs
        #: Where config_get finds the admin's secrets (over the manifest's [config]).
        self.secrets = secrets or TenantSecrets()
        self.module = module
        self._sandbox = sandbox
        self._kv = kv
        self._clock = clock
        self._enabled = enabled
        #: Fuel budget of the inline attempt (``[sandbox].inline_fuel``); 0 never runs inline.
        self._inline_fuel = inline_fuel
        #: Receives a row per tools/call (with its receipt) and per limit hit; None audits nothing.
        self.auditor = auditor
        #: The module's warm-up answer, when the loader already has it (vetting makes the same
        #: calls); else the first describe() makes them.
        self._description = description
        self._description_lock = asyncio.Lock()
        #: The module's description and what is advertised for it (see _advertised).
        self._advertised_cache: tuple[ModuleDescription, ModuleDescription] | None = None
        self.stats = CallStats()
        #: Quotas and allowed networks (tenant.toml over the box's ``[quotas]``).
        self.policy = policy or TenantPolicy(resolve_quotas(QuotaSettings(), {}))
        # The store's views of the policy's kv and blob quotas, made once (every call uses them).
        quotas = self.policy.quotas
        self._kv_quota = KvQuota(
            max_keys=quotas.kv_max_keys, max_total_bytes=quotas.kv_max_total_bytes
        )
        self._blob_quotas = blob_quotas(quotas)
        #: Fuel burned over the last minute, against ``fuel_per_minute``.
        self.fuel_window = FuelWindow()
        #: Vetting's verdict on the module served (pin, findings), set by the loader.
        self.vet_report: VetReport | None = None
        #: The publisher signature's verdict, set by the loader.
        self.signature: SignatureCheck | None = None
        #: The approved tool definitions served instead of the module's changed ones (None:
        #: the module's own are approved), with the change awaiting approval.
        self.served_tools: tuple[JsonObject, ...] | None = None
        self._served_names: frozenset[str] = frozenset()
        #: Likewise the approved prompts, resource templates and static resources by kind
        #: (a kind absent is the module's own: never approved, or not covered).
        self.served_others: OthersView | None = None
        self.definitions_pending: PendingChange | None = None
        #: Per-tool behaviour baselines (shared by every tenant; set by the loader) and whether
        #: a far-off call blocks its tool (tenant.toml / box ``[vetting] baseline = "block"``).
        self.baselines: TenantBaselines | None = None
        self.baseline_block = False
        #: The description whose tool names were last computed, and those names.
        self._listed_names: tuple[ModuleDescription, frozenset[str]] | None = None

    def hold_to_definitions(
        self,
        served: tuple[JsonObject, ...] | None,
        pending: PendingChange | None,
        others: OthersView | None = None,
    ) -> None:
        """Serve ``served`` (approved definitions) instead of the module's tool list, and
        ``others`` instead of its prompts and resources, or the module's own with None."""
        self.served_others = others
        self.served_tools = served
        self._served_names = tool_name_set(served) if served is not None else frozenset()
        self.definitions_pending = pending

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def auth_mode(self) -> AuthMode:
        return self.manifest.auth

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def max_request_bytes(self) -> int:
        return self.module.limits.max_message_bytes

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled

    def missing_secrets(self) -> list[str]:
        """The tenant.toml ``secrets`` with no value set on the box (``smcp-box secret set``)."""
        return self.secrets.missing(self.name, self.manifest.secrets)

    @property
    def known_description(self) -> ModuleDescription | None:
        """The description if it is already known, without making any call."""
        return None if self._description is None else self._advertised(self._description)

    async def describe(self) -> ModuleDescription:
        """The module's description, with the approved tools in place of its own while they
        are held to (what clients are told the tools are)."""
        described = await self._module_description()
        if self.served_tools is not None:
            described = replace(described, tools=self.served_tools)
        others = self.served_others
        if not others:
            return described
        return replace(
            described,
            prompts=others.get("prompts", described.prompts),
            resource_templates=others.get("resourceTemplates", described.resource_templates),
            resources=others.get("resources", described.resources),
        )

    async def _module_description(self) -> ModuleDescription:
        # The description depends only on the module, so one warm-up initialize per module
        # serves every session and every server/discover until the module is replaced.
        if self._description is None:
            async with self._description_lock:
                if self._description is None:
                    self._description = await self._warm_up()
        return self._advertised(self._description)

    def _advertised(self, description: ModuleDescription) -> ModuleDescription:
        """What the box says the tenant offers: the module's description, plus the blob
        resources the box serves itself (tenancy/blob_resources.py) and the tasks extension
        when a tool may run as a task. Made once per module description (callers may rely on
        getting the same object while the module is unchanged)."""
        cached = self._advertised_cache
        if cached is not None and cached[0] is description:
            return cached[1]
        advertised = self._advertise(description)
        self._advertised_cache = (description, advertised)
        return advertised

    def _advertise(self, description: ModuleDescription) -> ModuleDescription:
        if self.manifest.blob_resources and self.blobs is not None:
            description = with_blob_capability(description)
        if advertises_tasks(list(description.tools or ())):
            # A tool that may run as a task: the server offers the extension (docs/tasks.md).
            description = replace(
                description, capabilities=with_tasks_extension(description.capabilities)
            )
        return description

    async def _warm_up(self) -> ModuleDescription:
        # The same calls and rules as vetting (which usually supplied the description already);
        # a failure is not cached, so the next describe() asks again.
        # The module's own description: the approved definitions held to are applied on top.
        return await describe_module(ask_runtime(_ModuleOnly(self)), tenant=self.name)

    async def call(
        self, message: JsonObject, ctx: CallContext, *, timeout_ms: int | None = None
    ) -> JsonObject | None:
        """Forward ``message`` to the module (the TenantRuntime seam), unless approvals or a
        baseline block answer instead, or it is about blob resources, which the box answers
        itself. ``timeout_ms`` replaces the module's wall-clock limit for this call: a task's
        longer one (tenancy/tasks.py)."""
        held = self._held_reply(message)
        if held is not None:
            return held
        if self.manifest.blob_resources and self.blobs is not None:
            # Blob resources are the box's to answer; anything else reaches the module.
            return await answer_blob_resources(
                self.blobs,
                self.name,
                message,
                lambda m: self._call_module(m, ctx, timeout_ms=timeout_ms),
                max_read_bytes=self.policy.quotas.blob_resource_max_bytes,
            )
        return await self._call_module(message, ctx, timeout_ms=timeout_ms)

    async def _call_module(
        self, message: JsonObject, ctx: CallContext, *, timeout_ms: int | None = None
    ) -> JsonObject | None:
        """The module's own answer (no approved definitions in its place)."""
        host = StoreHostCalls(
            loop=asyncio.get_running_loop(),
            kv=self._kv,
            tenant=self.name,
            config=self.secrets.config_for(self.name, self.manifest.config),
            ctx=ctx,
            clock=self._clock,
            logger=logger,
            kv_quota=self._kv_quota,
            blobs=self._blob_access(),
        )
        budget = self.policy.quotas.fuel_per_minute
        # Checked before the call: a call already running finishes under its own fuel limit.
        self.fuel_window.check(self._clock(), budget, self.name)
        self.stats.calls += 1
        started = time.perf_counter()
        try:
            outcome = await self._execute(message, ctx, host, timeout_ms)
            self.stats.fuel_used += outcome.fuel_used
            self.fuel_window.charge(self._clock(), outcome.fuel_used)
            ctx.receipt.update(
                fuel=outcome.fuel_used,
                wall_ms=round(outcome.wall_s * 1000, 3),
                memory_bytes=outcome.memory_bytes,
                host_calls=outcome.host_calls,
            )
            reply = _check_reply(outcome, message)
        except SandboxError as err:
            self.stats.errors += 1
            if isinstance(err, FuelExhausted):
                # A call stopped by its fuel limit burned all of it.
                self.fuel_window.charge(self._clock(), self.module.limits.fuel)
            await self._audit_limit(message, ctx, err, time.perf_counter() - started)
            raise
        except Exception:
            self.stats.errors += 1
            raise
        finally:
            await host.release()
        if message.get("method") == "tools/call":
            await self._audit_tool_call(message, ctx, reply)
            await self._judge_baseline(message, ctx, outcome, host)
            if self.manifest.receipts and reply is not None:
                _attach_receipt(reply, ctx.receipt)
        return reply

    def _module_tool_names(self) -> frozenset[str]:
        """Names of the tools the module lists (empty until its description is known)."""
        described = self._description
        if described is None:
            return frozenset()
        if self._listed_names is None or self._listed_names[0] is not described:
            self._listed_names = (described, tool_name_set(described.tools or ()))
        return self._listed_names[1]

    def _held_reply(self, message: JsonObject) -> JsonObject | None:
        """The box's own answer when approvals or baselines decide instead of the module:
        ``tools/list`` of approved definitions; None lets the module answer. Raises for a
        tools/call the approved definitions or a baseline block refuse."""
        method = message.get("method")
        if method == "tools/list" and self.served_tools is not None and "id" in message:
            # One page: the approved set is what was reviewed, whatever paging the module does.
            tools = [dict(tool) for tool in self.served_tools]
            return {"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}}
        if method in _HELD_LISTS and self.served_others is not None and "id" in message:
            kind = _HELD_LISTS[method]
            if kind in self.served_others:
                items = [dict(item) for item in self.served_others[kind]]
                return {"jsonrpc": "2.0", "id": message["id"], "result": {kind: items}}
        if method == "prompts/get":
            self._check_prompt(_tool_name(message))
            return None
        if method != "tools/call":
            return None
        tool = _tool_name(message)
        if self.served_tools is not None and tool not in self._served_names:
            raise ToolNotApproved(
                f"tenant {self.name!r} has no approved tool {tool!r}: its module's tool "
                "definitions changed and await an admin's approval (smcp-box tenant approve "
                f"{self.name}); until then only the approved tools can be called",
                data={"tenant": self.name, "tool": tool},
            )
        if tool is not None and self.baselines and self.baselines.is_blocked(self.name, tool):
            raise ToolBlocked(
                f"tenant {self.name!r}: tool {tool!r} is blocked because a call behaved far "
                "outside its baseline; an admin unblocks it with smcp-box tenant "
                f"baseline-reset {self.name} {tool}",
                data={"tenant": self.name, "tool": tool},
            )
        return None

    def _check_prompt(self, prompt: str | None) -> None:
        approved = (self.served_others or {}).get("prompts")
        if approved is None or prompt in {item.get("name") for item in approved}:
            return
        raise ToolNotApproved(
            f"tenant {self.name!r} has no approved prompt {prompt!r}: its module's prompt "
            "definitions changed and await an admin's approval (smcp-box tenant approve "
            f"{self.name}); until then only the approved prompts can be got",
            data={"tenant": self.name, "prompt": prompt},
        )

    async def _judge_baseline(
        self, message: JsonObject, ctx: CallContext, outcome: CallOutcome, host: StoreHostCalls
    ) -> None:
        tool = _tool_name(message)
        # Only tools the module lists get a profile: a client cannot grow the table at will.
        if self.baselines is None or tool is None or tool not in self._module_tool_names():
            return
        figures = {
            "fuel": float(outcome.fuel_used),
            "wall_ms": outcome.wall_s * 1000,
            "memory_bytes": float(outcome.memory_bytes),
            "kv_reads": float(host.counts.kv_reads),
            "kv_writes": float(host.counts.kv_writes),
            "notifications": float(host.counts.notifications),
            "reply_bytes": float(len(outcome.reply.encode("utf-8", "surrogatepass"))),
        }
        flag = self.baselines.observe(
            self.name, tool, figures, self._clock(), block=self.baseline_block
        )
        if flag is None:
            return
        logger.warning(
            "tenant %s: tool %s: a call far outside its baseline: %s%s",
            self.name,
            tool,
            "; ".join(d.describe() for d in flag.deviations),
            " (the tool is now blocked)" if flag.blocked else "",
        )
        if not flag.audit or self.auditor is None:
            return
        try:
            await self.auditor.record(
                "tool.baseline_flag",
                tenant=self.name,
                actor=_actor(ctx),
                source_ip=ctx.source_ip,
                outcome="blocked" if flag.blocked else "flagged",
                detail={
                    "tool": tool,
                    "request_id": request_id_var.get(),
                    "flags": flag.flags_since_last_audit,
                    "deviations": [
                        {
                            "figure": d.figure,
                            "value": d.value,
                            "mean": d.mean,
                            "threshold": d.threshold,
                        }
                        for d in flag.deviations
                    ],
                },
            )
        except Exception:
            logger.exception("tenant %s: could not audit a baseline flag", self.name)

    def _blob_access(self) -> BlobAccess | None:
        blobs = self.blobs
        if blobs is None:
            return None
        quotas = self._blob_quotas
        return lambda wait: BlobHandles(blobs, self.name, quotas, wait)

    async def _execute(
        self,
        message: JsonObject,
        ctx: CallContext,
        host: StoreHostCalls,
        timeout_ms: int | None,
    ) -> CallOutcome:
        """Run the call inline on the loop when it is short and safe to, else in a worker.

        The inline attempt's notifications are held back and sent only once it is known to have
        finished, so an attempt that is abandoned and rerun never shows the client anything twice.
        """
        text = encode_json(message).decode("utf-8")
        # A call with its own wall-clock limit (a task's) is long by design: never inline.
        if timeout_ms is None and self._inline_fuel > 0 and inline_eligible(self.module):
            host.hold_effects()
            try:
                outcome = self._sandbox.call_inline(
                    self.module,
                    text,
                    host,
                    fuel_budget=self._inline_fuel,
                    kind=_call_kind(message),
                )
            except BaseException:
                host.release_held(finished=True)  # it ended (failed) here: nothing reruns it
                raise
            # An abandoned attempt's notifications and logs are dropped: the rerun makes them.
            held = host.release_held(finished=outcome is not None)
            if outcome is None:
                host.counts.clear()
            else:
                for notification in held:
                    await ctx.notify(notification)
                return outcome
        return await self._sandbox.call(self.module, text, host, timeout_ms=timeout_ms)

    # --- audit rows: one per tools/call (with its receipt) and one per limit hit -----------

    async def _audit_tool_call(
        self, message: JsonObject, ctx: CallContext, reply: JsonObject | None
    ) -> None:
        if self.auditor is None:
            return
        result = reply.get("result") if reply is not None else None
        if reply is None or "error" in reply:
            outcome = "rpc_error"
        elif isinstance(result, dict) and result.get("isError") is True:
            outcome = "tool_error"
        else:
            outcome = "ok"
        try:
            await self.auditor.record(
                "tool.call",
                tenant=self.name,
                actor=_actor(ctx),
                source_ip=ctx.source_ip,
                outcome=outcome,
                detail={
                    "tool": _tool_name(message),
                    "request_id": request_id_var.get(),
                    "receipt": dict(ctx.receipt),
                },
            )
        except Exception:
            # The module already answered; losing its audit row is logged, not sent back.
            logger.exception("tenant %s: could not audit a tool call", self.name)

    async def _audit_limit(
        self, message: JsonObject, ctx: CallContext, err: SandboxError, elapsed_s: float
    ) -> None:
        if self.auditor is None:
            return
        # wasmtime reports no figures for a call it stopped: the wall time is the box's own
        # measurement (queueing included) and fuel is known only when fuel is what ran out.
        receipt: dict[str, Any] = {"wall_ms": round(elapsed_s * 1000, 3)}
        if isinstance(err, FuelExhausted):
            receipt["fuel"] = self.module.limits.fuel
        receipt.update(ctx.receipt)
        detail: JsonObject = {
            "limit": err.kind,
            "method": message.get("method"),
            "message": err.message,
            "request_id": request_id_var.get(),
            "receipt": receipt,
        }
        if message.get("method") == "tools/call":
            detail["tool"] = _tool_name(message)
        try:
            await self.auditor.record(
                "limit.hit",
                tenant=self.name,
                actor=_actor(ctx),
                source_ip=ctx.source_ip,
                outcome="error",
                detail=detail,
            )
        except Exception:
            # The limit error is what the caller must see; an audit failure is only logged.
            logger.exception("tenant %s: could not audit a limit hit", self.name)


class _ModuleOnly:
    """A tenant seen as its module alone, for the box's own describe calls."""

    def __init__(self, tenant: WasmTenant) -> None:
        self._tenant = tenant
        self.name = tenant.name
        self.auth_mode = tenant.auth_mode
        self.enabled = tenant.enabled
        self.max_request_bytes = tenant.max_request_bytes

    async def describe(self) -> ModuleDescription:
        return await self._tenant.describe()

    async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
        return await self._tenant._call_module(message, ctx)


def _call_kind(message: JsonObject) -> str:
    """What inline attempts back off by: the method, and the tool for a tools/call (one tool
    using kv must not send the tenant's other tools to workers)."""
    method = message.get("method")
    name = _tool_name(message) if method == "tools/call" else None
    return f"{method}:{name}" if name is not None else str(method)


def _tool_name(message: JsonObject) -> str | None:
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return name if isinstance(name, str) else None


def _attach_receipt(reply: JsonObject, receipt: dict[str, Any]) -> None:
    result = reply.get("result")
    if not isinstance(result, dict):
        return
    meta = result.get("_meta")
    result["_meta"] = {**(meta if isinstance(meta, dict) else {}), RECEIPT_META_KEY: dict(receipt)}


def _check_reply(outcome: CallOutcome, message: JsonObject) -> JsonObject | None:
    """The module's reply to ``message``, through the box's one reply check; None for a
    notification, whose reply (if the module wrote one) has nobody to go to."""
    if "id" not in message:
        return None
    return check_module_reply(outcome.parsed if outcome.reply else None, message["id"])


def _actor(ctx: CallContext) -> str:
    """The audit row's actor: the caller's subject, or "system" for the box's own calls."""
    return ctx.caller.subject if ctx.caller is not None else "system"
