"""The scripted seams tests/web keeps where the real part cannot run in the test (see
``conftest.py`` for why each one), each held to its real counterpart by
``test_fakes_contract.py``. They record what they saw so tests can assert on it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smcp_box.errors import (
    AuthError,
    Forbidden,
    FuelExhausted,
    FuelQuotaExceeded,
    KvWriteRefused,
)
from smcp_box.protocol.jsonrpc import check_module_reply
from smcp_box.seams import (
    AuthMode,
    CallContext,
    JsonObject,
    ModuleDescription,
    Principal,
    TenantRuntime,
)
from tests.web.waiting import Changes

LEVELS = ("debug", "info", "notice", "warning", "error")

TOOLS: list[JsonObject] = [
    {
        "name": "echo",
        "description": "Echo the text back.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    {
        "name": "progress",
        "description": "Report progress in steps (holding after step hold_after), then finish.",
        "inputSchema": {
            "type": "object",
            "properties": {"steps": {"type": "integer"}, "hold_after": {"type": "integer"}},
        },
    },
    {
        "name": "log",
        "description": "Emit one log message per level, then finish.",
        "inputSchema": {"type": "object"},
    },
    {
        "name": "hold",
        "description": "Wait until the test releases this request (cancellable).",
        "inputSchema": {"type": "object"},
    },
    {"name": "fuel", "description": "Burn all fuel.", "inputSchema": {"type": "object"}},
]


def _text_result(text: str) -> JsonObject:
    return {"content": [{"type": "text", "text": text}], "isError": False}


class EchoRuntime:
    """A tenant whose module is Python: echoes, reports progress, logs, holds a call until the
    test releases it (or it is cancelled), runs out of fuel. It never sleeps: what it waits
    for, the test controls."""

    def __init__(self, name: str, *, enabled: bool = True, auth_mode: AuthMode = "api_key") -> None:
        self._name = name
        self._enabled = enabled
        self._auth_mode: AuthMode = auth_mode
        self.calls: list[tuple[JsonObject, CallContext]] = []
        self.notifications: list[JsonObject] = []
        self.cancelled: list[Any] = []
        self.started: dict[Any, asyncio.Event] = {}
        #: Requests of the ``hold`` tool wait on these until the test releases them.
        self.gates: dict[Any, asyncio.Event] = {}
        self.describe_calls = 0
        #: Noted on every call, notification, start and cancellation, for tests to wait on.
        self.changes = Changes()
        #: The tenant's [limits] max_message_bytes, as the transport reads it.
        self.max_request_bytes = 4 * 1024 * 1024

    @property
    def name(self) -> str:
        return self._name

    @property
    def auth_mode(self) -> AuthMode:
        return self._auth_mode

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def describe(self) -> ModuleDescription:
        self.describe_calls += 1
        return ModuleDescription(
            server_info={"name": f"{self._name}-echo", "version": "1.2.3"},
            capabilities={"tools": {"listChanged": False}},
            instructions=f"Tenant {self._name}: an echo server for tests.",
            tools=tuple(TOOLS),
        )

    def started_event(self, request_id: Any) -> asyncio.Event:
        return self.started.setdefault(request_id, asyncio.Event())

    def release(self, request_id: Any) -> None:
        """Let the ``hold`` request ``request_id`` finish."""
        self.gates.setdefault(request_id, asyncio.Event()).set()

    def _started(self, request_id: Any) -> None:
        self.started_event(request_id).set()
        self.changes.note()

    def _cancelled(self, request_id: Any) -> None:
        self.cancelled.append(request_id)
        self.changes.note()

    async def _hold(self, request_id: Any) -> None:
        """Wait until the test releases ``request_id``; a cancellation is recorded."""
        try:
            await self.gates.setdefault(request_id, asyncio.Event()).wait()
        except asyncio.CancelledError:
            self._cancelled(request_id)
            raise

    async def call(self, message: JsonObject, ctx: CallContext) -> JsonObject | None:
        self.calls.append((message, ctx))
        self.changes.note()
        if "id" not in message:
            self.notifications.append(message)
            self.changes.note()
            await ctx.notify(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": {"level": "info", "data": f"saw {message['method']}"},
                }
            )
            return None
        request_id = message["id"]
        self._started(request_id)
        method = message["method"]
        params = message.get("params") or {}
        if method == "tools/list":
            return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": TOOLS}}
        if method != "tools/call":
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32601, "message": f"Method not found: {method}"},
            }
        name = params.get("name")
        args = params.get("arguments") or {}
        token = (params.get("_meta") or {}).get("progressToken")
        if name == "echo":
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "result": _text_result(str(args.get("text"))),
            }
        if name == "progress":
            steps = int(args.get("steps", 3))
            for step in range(1, steps + 1):
                if token is not None:
                    await ctx.notify(
                        {
                            "jsonrpc": "2.0",
                            "method": "notifications/progress",
                            "params": {"progressToken": token, "progress": step, "total": steps},
                        }
                    )
                if step == args.get("hold_after"):
                    await self._hold(request_id)
            return {"jsonrpc": "2.0", "id": request_id, "result": _text_result(f"{steps} steps")}
        if name == "log":
            for level in LEVELS:
                await ctx.notify(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/message",
                        "params": {"level": level, "logger": "echo", "data": f"at {level}"},
                    }
                )
            return {"jsonrpc": "2.0", "id": request_id, "result": _text_result("logged")}
        if name == "hold":
            await self._hold(request_id)
            return {"jsonrpc": "2.0", "id": request_id, "result": _text_result("released")}
        if name == "fuel":
            raise FuelExhausted("Fuel exhausted: the call ran longer than its fuel allows")
        if name == "kv_refused":
            # What the real runtime notes when a kv quota refuses a write: the module gets -1
            # and answers anyway.
            ctx.refusals.append(
                KvWriteRefused("the tenant's kv_max_keys is reached", quota="kv_max_keys")
            )
            return {"jsonrpc": "2.0", "id": request_id, "result": _text_result("not saved")}
        if name == "fuel_quota":
            # What the real runtime raises once the tenant's fuel_per_minute is spent.
            raise FuelQuotaExceeded(
                "Quota exceeded: the tenant has burned its fuel_per_minute",
                quota="fuel_per_minute",
                retry_after=30,
            )
        if name == "crash":
            raise RuntimeError("a bug in the runtime, with internals: /secret/path")
        if name == "wrong_id":
            # The real runtime puts every reply through the box's one reply check.
            wrong = {"jsonrpc": "2.0", "id": "someone-else", "result": {}}
            return check_module_reply(wrong, request_id)
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": -32602, "message": f"Unknown tool: {name}"},
        }


class Directory:
    def __init__(self, *tenants: TenantRuntime, hosts: Mapping[str, str] | None = None) -> None:
        self.tenants = {t.name: t for t in tenants}
        #: host name -> tenant name, as tenant.toml ``hosts`` would give them.
        self.hosts = dict(hosts or {})

    def get(self, name: str) -> TenantRuntime | None:
        return self.tenants.get(name)

    def by_host(self, host: str) -> TenantRuntime | None:
        name = self.hosts.get(host)
        return self.tenants.get(name) if name is not None else None

    def names(self) -> list[str]:
        return sorted(self.tenants)


class TokenAuthenticator:
    """Bearer tokens: each names a tenant and a subject."""

    def __init__(self, tokens: Mapping[str, tuple[str, str]]) -> None:
        self.tokens = dict(tokens)
        #: The resource URL the transport passed with each call, in order.
        self.resources: list[str | None] = []

    async def authenticate(
        self,
        tenant: TenantRuntime,
        headers: Mapping[str, str],
        source_ip: str | None,
        resource: str | None = None,
    ) -> Principal:
        self.resources.append(resource)
        if tenant.auth_mode == "none":
            return Principal(tenant=tenant.name, subject="anonymous", method="none")
        value = headers.get("Authorization")
        if not value or not value.startswith("Bearer "):
            raise AuthError("Missing credential: send Authorization: Bearer <API key>")
        found = self.tokens.get(value.removeprefix("Bearer "))
        if found is None:
            raise AuthError("Invalid credential: the API key is unknown or revoked")
        owner, subject = found
        if subject == "suspended":
            raise Forbidden("Forbidden: this API key is suspended")
        if owner != tenant.name:
            raise AuthError("Invalid credential: the API key is not valid for this tenant")
        return Principal(tenant=owner, subject=subject, method="api_key", key_id=subject)


@dataclass
class RecordingObserver:
    observations: list[tuple[str, str, float, str | None]] = field(default_factory=list)
    open_streams: int = 0
    changes: Changes = field(default_factory=Changes)

    def observe(self, tenant: str, method: str, duration_s: float, error_kind: str | None) -> None:
        self.observations.append((tenant, method, duration_s, error_kind))
        self.changes.note()

    def stream_opened(self, tenant: str) -> None:
        self.open_streams += 1
        self.changes.note()

    def stream_closed(self, tenant: str) -> None:
        # As the live metrics do: a close without an open never makes the count negative.
        self.open_streams = max(0, self.open_streams - 1)
        self.changes.note()
