"""A tenant as the transport sees it: its manifest, its loaded module, and calls into it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smcp_box import __version__
from smcp_box.errors import BadModuleReply
from smcp_box.sandbox import Sandbox, TenantModule
from smcp_box.tenancy.hostcalls import KeyValueStore, StoreHostCalls
from smcp_box.tenancy.manifest import TenantManifest
from smcp_box.web.services import AuthMode, CallContext, JsonObject, ModuleDescription

logger = logging.getLogger("smcp_box.tenant")

#: The protocol version the box offers a module in its warm-up initialize. Modules answer with
#: their capabilities; the box negotiates the client's version itself.
WARMUP_PROTOCOL_VERSION = "2025-11-25"


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
    ) -> None:
        self.manifest = manifest
        self.module = module
        self._sandbox = sandbox
        self._kv = kv
        self._clock = clock
        self._enabled = enabled
        self._description: ModuleDescription | None = None
        self._description_lock = asyncio.Lock()
        self.stats = CallStats()

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def auth_mode(self) -> AuthMode:
        return self.manifest.auth

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled

    async def describe(self) -> ModuleDescription:
        # The description depends only on the module, so one warm-up initialize per module
        # serves every session and every server/discover until the module is replaced.
        if self._description is not None:
            return self._description
        async with self._description_lock:
            if self._description is None:
                self._description = await self._warm_up()
            return self._description

    async def _warm_up(self) -> ModuleDescription:
        async def drop(_: JsonObject) -> None:
            return None

        ctx = CallContext(tenant=self.name, protocol_version=WARMUP_PROTOCOL_VERSION, notify=drop)
        request = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": WARMUP_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "smcp-box", "version": __version__},
            },
        }
        reply = await self.call(request, ctx)
        result = reply.get("result") if reply else None
        if not isinstance(result, dict):
            raise BadModuleReply(
                f"tenant {self.name!r}: the module did not answer initialize with a result"
            )
        server_info = result.get("serverInfo")
        capabilities = result.get("capabilities")
        instructions = result.get("instructions")
        if not isinstance(server_info, dict) or not isinstance(capabilities, dict):
            raise BadModuleReply(
                f"tenant {self.name!r}: initialize result lacks serverInfo or capabilities"
            )
        return ModuleDescription(
            server_info=server_info,
            capabilities=capabilities,
            instructions=instructions if isinstance(instructions, str) else None,
        )

    async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
        host = StoreHostCalls(
            loop=asyncio.get_running_loop(),
            kv=self._kv,
            tenant=self.name,
            config=self.manifest.config,
            ctx=ctx,
            clock=self._clock,
            logger=logger,
        )
        self.stats.calls += 1
        try:
            outcome = await self._sandbox.call(
                self.module, json.dumps(message, separators=(",", ":")), host
            )
        except Exception:
            self.stats.errors += 1
            raise
        self.stats.fuel_used += outcome.fuel_used
        ctx.receipt.update(
            fuel=outcome.fuel_used,
            wall_ms=round(outcome.wall_s * 1000, 3),
            memory_bytes=outcome.memory_bytes,
            host_calls=outcome.host_calls,
        )
        return _parse_reply(self.name, outcome.reply, message)


def _parse_reply(tenant: str, reply: str, message: JsonObject) -> JsonObject | None:
    is_request = "id" in message
    if not reply:
        if is_request:
            raise BadModuleReply(f"tenant {tenant!r}: the module sent no reply to a request")
        return None
    try:
        parsed: Any = json.loads(reply)
    except ValueError:
        raise BadModuleReply(f"tenant {tenant!r}: the module's reply is not valid JSON") from None
    if not isinstance(parsed, dict) or ("result" in parsed) == ("error" in parsed):
        raise BadModuleReply(
            f"tenant {tenant!r}: the module's reply is not a JSON-RPC response object"
        )
    if not is_request:
        return None
    if parsed.get("id") != message.get("id"):
        raise BadModuleReply(f"tenant {tenant!r}: the module's reply has the wrong id")
    parsed["jsonrpc"] = "2.0"
    return dict(parsed)
