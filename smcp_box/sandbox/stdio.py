"""stdio tenants: an MCP server compiled to a WASI command, run one exchange per call.

Each call runs a fresh instance of the module from ``_start``, with the box's own WASI
(:mod:`.wasi`): stdin holds an ``initialize``, ``notifications/initialized`` and the call's
request; the exchange ends the moment the guest writes the reply to that request, and the
instance is dropped. Notifications the guest writes before it (progress, log messages) go to the
caller as they are written. So no guest ever waits on stdin between calls, and none can hold up
a reply by waiting for the next message: everything it reads is there, and when it asks for
more without having answered, the exchange fails at once (see :mod:`.wasi`). Fuel, the epoch
deadline and the memory limit apply from instantiation to the reply, as for a core module.

Why not a long-lived guest fed message by message: it would need a thread parked inside every
idle instance, its heap would outlive calls (the box's rule is that durable state lives in kv),
and a Go guest costs only ~0.2 ms to instantiate and ~0.6 ms to start and answer (see
docs/benchmarks.md), a small part of an HTTP request's cost.

Host imports: a stdio module may import the ``smcp`` functions that need no ``smcp_alloc``
(``log``, ``kv_set``, ``kv_delete``) and the caller-buffer variants ``kv_get_into``,
``kv_list_into`` and ``config_get_into`` (docs/abi.md), since a WASI command exports no allocator
the host could call while the guest is inside an import.
"""

from __future__ import annotations

import ctypes
import json
import time
from collections.abc import Callable
from typing import Any, cast

import wasmtime

from smcp_box.errors import (
    BadModuleReply,
    BoxError,
    ModuleRejected,
    ModuleTrapped,
    ParseError,
)
from smcp_box.protocol.jsonrpc import decode_json_text, parse_module_notification
from smcp_box.protocol.versions import LATEST_HANDSHAKE_VERSION

from . import native
from .abi import IMPORT_MODULE
from .faults import classify_trap, memory_exceeded, near_memory_limit
from .host import (
    CHECK_TICKS,
    EPOCH_CALLBACK,
    BlobHost,
    CallState,
    CancelToken,
    HostCalls,
    bind,
    blob_status,
    define_import,
    fail,
    read_string,
)
from .limits import MAX_TABLE_ELEMENTS, MAX_TABLES, CallOutcome, Limits
from .wasi import SIGNATURES, SOCKET_FUNCTIONS, WASI_MODULE, WasiState, clock_ns, define_wasi
from .wasi import signature as wasi_signature

EXPORT_START = "_start"
EXPORT_MEMORY = "memory"

Signature = tuple[tuple[str, ...], tuple[str, ...]]
_I32_4: Signature = (("i32", "i32", "i32", "i32"), ("i32",))

#: ``smcp`` imports a stdio module may use: core ones that return no buffer, and caller-buffer
#: variants of those that do.
STDIO_HOST_IMPORTS: dict[str, Signature] = {
    "log": (("i32", "i32", "i32", "i32"), ()),
    "kv_set": _I32_4,
    "kv_delete": (("i32", "i32"), ("i32",)),
    "kv_get_into": _I32_4,
    "kv_list_into": _I32_4,
    "config_get_into": _I32_4,
    # Blobs (docs/abi.md 2.8): the core imports that return no buffer, and caller-buffer
    # variants of blob_stat and blob_list (-1: absent; another negative: a status).
    "blob_open": (("i32", "i32", "i32", "i32", "i32"), ("i32",)),
    "blob_read": (("i32", "i32", "i32"), ("i32",)),
    "blob_write": (("i32", "i32", "i32"), ("i32",)),
    "blob_close": (("i32",), ("i32",)),
    "blob_delete": (("i32", "i32"), ("i32",)),
    "blob_stat_into": _I32_4,
    "blob_list_into": _I32_4,
}
#: Lines of the guest's stderr kept for an error message: the first ones (a Go panic or fatal
#: error says what happened there) and the last ones. All of it goes to the box's log.
STDERR_HEAD_LINES = 2
STDERR_TAIL_LINES = 2
#: The id of the box's own ``initialize`` in an exchange (a client's id is used as it is).
INIT_ID = "smcp-box/initialize"
#: Who the box says it is to a stdio server.
CLIENT_INFO = {"name": "smcp-box", "version": "stdio"}


class _Answered(BaseException):
    """The guest wrote the reply: stop it there (not an error; never leaves this module)."""


# --- checking a module at load -------------------------------------------------------------------


def _signature(ty: wasmtime.FuncType) -> Signature:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def check_stdio_module(tenant: str, module: wasmtime.Module) -> None:
    """Raise ModuleRejected naming every import a stdio tenant may not have and every missing
    export: WASI preview 1 without sockets, the ``smcp`` imports of STDIO_HOST_IMPORTS."""
    problems: list[str] = []
    for imp in module.imports:
        name = imp.name or ""
        where = f"{imp.module}.{name}"
        expected: Signature | None = None
        if imp.module == WASI_MODULE and name in SOCKET_FUNCTIONS:
            problems.append(
                f"import {where} is a WASI socket function: stdio tenants have no network "
                "(build the server without networking)"
            )
            continue
        if imp.module == WASI_MODULE and name in SIGNATURES:
            expected = wasi_signature(name)
        elif imp.module == IMPORT_MODULE:
            expected = STDIO_HOST_IMPORTS.get(name)
        if expected is None:
            problems.append(f"import {where} is not allowed")
        elif not isinstance(imp.type, wasmtime.FuncType):
            problems.append(f"import {where} must be a function")
        elif _signature(imp.type) != expected:
            problems.append(f"import {where} has type {_signature(imp.type)}, expected {expected}")
    exports = {exp.name: exp.type for exp in module.exports}
    memory = exports.get(EXPORT_MEMORY)
    if not isinstance(memory, wasmtime.MemoryType) or memory.is_64 or memory.is_shared:
        problems.append(f"missing export {EXPORT_MEMORY!r} (a 32-bit unshared memory)")
    start = exports.get(EXPORT_START)
    if not isinstance(start, wasmtime.FuncType) or _signature(start) != ((), ()):
        problems.append(
            f"missing export {EXPORT_START!r} () -> () (build a WASI command, e.g. "
            "GOOS=wasip1 GOARCH=wasm go build)"
        )
    if problems:
        raise ModuleRejected(
            f"tenant {tenant!r}: the module is not a stdio tenant (a wasm32-wasip1 command): "
            + "; ".join(problems),
            data={"tenant": tenant, "problems": problems},
        )


# --- the caller-buffer imports -------------------------------------------------------------------


def _copy_out(state: CallState, ctx: int, name: str, data: bytes, out_ptr: int, cap: int) -> int:
    """Copy ``data`` to the guest's buffer if it fits; its length either way (the guest calls
    again with a larger buffer when the length exceeds its capacity)."""
    out_ptr &= 0xFFFF_FFFF
    cap &= 0xFFFF_FFFF
    if len(data) > state.limits.max_reply_bytes:
        raise fail(
            state,
            name,
            f"the value is {len(data)} bytes, over [limits].max_reply_bytes "
            f"({state.limits.max_reply_bytes})",
            BadModuleReply,
        )
    if len(data) <= cap and data:
        size = native.memory_data_size(ctx, state.mem_ref)
        if out_ptr + len(data) > size:
            raise fail(state, name, "the output buffer ends past the memory")
        ctypes.memmove(native.memory_data(ctx, state.mem_ref) + out_ptr, data, len(data))
    return len(data)


def _kv_get_into(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "kv_get_into", a[0].i32, a[1].i32, "key")
    value = host.kv_get(key)
    a[0].i32 = (
        -1
        if value is None
        else _copy_out(state, ctx, "kv_get_into", value.encode(), a[2].i32, a[3].i32)
    )


def _config_get_into(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "config_get_into", a[0].i32, a[1].i32, "key")
    value = host.config_get(key)
    a[0].i32 = (
        -1
        if value is None
        else _copy_out(state, ctx, "config_get_into", value.encode(), a[2].i32, a[3].i32)
    )


def _kv_list_into(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    prefix = read_string(state, ctx, "kv_list_into", a[0].i32, a[1].i32, "prefix")
    encoded = json.dumps(host.kv_list(prefix), ensure_ascii=False, separators=(",", ":")).encode()
    a[0].i32 = _copy_out(state, ctx, "kv_list_into", encoded, a[2].i32, a[3].i32)


def _blob_json_into(name: str, answer: Callable[[BlobHost, str], object]) -> Any:
    def impl(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
        if not isinstance(host, BlobHost):
            raise fail(state, name, "blob storage is not available to this call")
        text = read_string(state, ctx, name, a[0].i32, a[1].i32, "name or prefix")
        status, value = blob_status(lambda: answer(host, text))
        if status:
            a[0].i32 = status
        elif value is None:
            a[0].i32 = -1
        else:
            encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
            a[0].i32 = _copy_out(state, ctx, name, encoded, a[2].i32, a[3].i32)

    return impl


_INTO_IMPLS = {
    "blob_stat_into": _blob_json_into("blob_stat_into", lambda host, n: host.blob_stat(n)),
    "blob_list_into": _blob_json_into("blob_list_into", lambda host, p: host.blob_list(p)),
    "kv_get_into": _kv_get_into,
    "kv_list_into": _kv_list_into,
    "config_get_into": _config_get_into,
}


def make_stdio_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """A Linker with the box's WASI and the ``smcp`` imports a stdio module may use."""
    linker = wasmtime.Linker(engine)
    define_wasi(linker)
    for name, sig in STDIO_HOST_IMPORTS.items():
        define_import(linker, name, sig, _INTO_IMPLS.get(name))
    return linker


# --- one exchange --------------------------------------------------------------------------------


class Exchange:
    """The guest's stdio during one call: the input it reads, and what its output means."""

    def __init__(
        self, tenant: str, limits: Limits, host: HostCalls, messages: list[Any], request_id: Any
    ) -> None:
        self.tenant = tenant
        self.limits = limits
        self.host = host
        self.argv = [tenant.encode()]
        self.request_id = request_id
        self._stdin = bytearray(
            b"".join(json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in messages)
        )
        self._out = bytearray()
        self._err = bytearray()
        #: The first lines of the guest's stderr (where runtimes print why they died) and the
        #: latest ones, for error messages.
        self.stderr_head: list[str] = []
        self.stderr_tail: list[str] = []
        self.reply = ""
        self.parsed: Any = None

    # GuestStdio

    def read_stdin(self, limit: int) -> bytes:
        data = bytes(self._stdin[:limit])
        del self._stdin[:limit]
        return data

    def stdin_pending(self) -> int:
        return len(self._stdin)

    def now_ns(self, clock_id: int) -> int:
        return clock_ns(clock_id, self.host.time_now_ms)

    def idle(self) -> BoxError:
        return BadModuleReply(
            f"tenant {self.tenant!r}: the stdio server read the request (id "
            f"{json.dumps(self.request_id)}) and waits for more input without answering it; "
            "it must write one JSON-RPC response line per request" + self._stderr_said(),
            data={"tenant": self.tenant},
        )

    def exited(self, code: int) -> BoxError:
        return ModuleTrapped(
            f"tenant {self.tenant!r}: the stdio server exited with status {code} without "
            f"answering the request (id {json.dumps(self.request_id)})" + self._stderr_said(),
            data={"tenant": self.tenant, "exit_code": code},
        )

    def write(self, fd: int, data: bytes) -> None:
        buffer = self._out if fd == 1 else self._err
        buffer += data
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if fd == 1:
                self._stdout_line(line)
            else:
                self._stderr_line(line)
        if len(buffer) > self.limits.max_reply_bytes:
            raise BadModuleReply(
                f"tenant {self.tenant!r}: the stdio server wrote a line of more than "
                f"{self.limits.max_reply_bytes} bytes ([limits].max_reply_bytes)",
                data={"tenant": self.tenant},
            )

    # output

    def _stderr_said(self) -> str:
        if not self.stderr_head:
            return ""
        lines = self.stderr_head + (["…", *self.stderr_tail] if self.stderr_tail else [])
        return f"; its stderr: {' | '.join(lines)}"

    def _stderr_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r").strip()
        self.host.log("info", f"stderr: {line}")
        if not line:
            return
        if len(self.stderr_head) < STDERR_HEAD_LINES:
            self.stderr_head.append(line[:200])
        else:
            self.stderr_tail = [*self.stderr_tail, line[:200]][-STDERR_TAIL_LINES:]

    def _garbage(self, raw: bytes, why: str) -> BadModuleReply:
        shown = raw[:80].decode("utf-8", "replace")
        return BadModuleReply(
            f"tenant {self.tenant!r}: the stdio server wrote a line that is not a JSON-RPC "
            f"message ({why}): {shown!r}; stdout must carry only MCP messages, one per line "
            "(log to stderr)",
            data={"tenant": self.tenant},
        )

    def _stdout_line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            text = raw.decode("utf-8")
            message = decode_json_text(text)
        except (UnicodeDecodeError, ParseError):
            raise self._garbage(raw, "not JSON") from None
        if not isinstance(message, dict):
            raise self._garbage(raw, "not an object")
        if "method" in message and "id" not in message:
            try:
                notification = parse_module_notification(text)
            except BadModuleReply as exc:
                raise self._garbage(raw, exc.message) from None
            self.host.notify(notification)
        elif "method" in message:
            self._answer_server_request(message)
        elif "id" in message and ("result" in message or "error" in message):
            self._response(message, text)
        else:
            raise self._garbage(raw, "neither a request, a notification nor a response")

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        # The box passes no server-to-client requests on for stdio tenants; answering here keeps
        # a server that asks (roots/list, sampling …) from waiting forever.
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        if message.get("method") == "ping":
            answer["result"] = {}
        else:
            answer["error"] = {
                "code": -32601,
                "message": "smcp-box does not pass server-to-client requests of stdio tenants on",
            }
        self._stdin += json.dumps(answer, separators=(",", ":")).encode() + b"\n"

    def _response(self, message: dict[str, Any], text: str) -> None:
        answered = message["id"]
        if answered == self.request_id and not isinstance(answered, bool):
            self.reply, self.parsed = text, message
            raise _Answered()
        if answered == INIT_ID:
            error = message.get("error")
            if isinstance(error, dict):
                raise BadModuleReply(
                    f"tenant {self.tenant!r}: the stdio server refused the box's initialize: "
                    f"{error.get('message')}",
                    data={"tenant": self.tenant},
                )
            return
        raise BadModuleReply(
            f"tenant {self.tenant!r}: the stdio server answered request id "
            f"{json.dumps(answered)}, which it was never sent",
            data={"tenant": self.tenant},
        )


def exchange_messages(message: dict[str, Any]) -> list[Any]:
    """What the guest reads for ``message``: the request alone when it is the client's
    ``initialize``, else the box's handshake first."""
    if message.get("method") == "initialize":
        return [message]
    return [
        {
            "jsonrpc": "2.0",
            "id": INIT_ID,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        message,
    ]


class StdioInstance:
    """Runs exchanges of one stdio module; holds nothing of a guest between calls.

    The pool treats it as an instance: it is cheap, and every call makes (and drops) its own
    wasm instance and Store, so nothing of one call can leak into the next.
    """

    __slots__ = ("_engine", "_pre", "calls", "memory_bytes")

    def __init__(self, engine: wasmtime.Engine, pre: wasmtime.InstancePre) -> None:
        self._engine = engine
        self._pre = pre
        self.calls = 0
        #: Linear memory the last exchange ended with.
        self.memory_bytes = 0

    def close(self) -> None:
        return None

    def call(
        self,
        tenant: str,
        limits: Limits,
        ticks: int,
        message: bytes,
        host: HostCalls,
        *,
        cancel: CancelToken | None = None,
        shutdown: CancelToken | None = None,
    ) -> CallOutcome:
        started = time.perf_counter()
        self.calls += 1
        request = json.loads(message)
        if not isinstance(request, dict) or "id" not in request:
            # A notification has nobody to answer and no session to change: each exchange
            # starts a fresh guest, so there is nothing to run it for.
            return CallOutcome("", 0, time.perf_counter() - started, self.memory_bytes, 0)
        exchange = Exchange(tenant, limits, host, exchange_messages(request), request["id"])
        store = wasmtime.Store(self._engine)
        try:
            return self._run(store, exchange, limits, ticks, cancel, shutdown, started)
        finally:
            store.close()

    def _run(
        self,
        store: wasmtime.Store,
        exchange: Exchange,
        limits: Limits,
        ticks: int,
        cancel: CancelToken | None,
        shutdown: CancelToken | None,
        started: float,
    ) -> CallOutcome:
        tenant = exchange.tenant
        store.set_limits(
            memory_size=limits.memory_bytes,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=1,
            tables=MAX_TABLES,
            memories=1,
        )
        native.set_epoch_callback(store, EPOCH_CALLBACK)
        ctx = native.store_context(store)
        memory = native.MemoryRef()
        # No host until the exports are resolved: an import called by a start function fails
        # (the memory it would touch is not known yet).
        state = WasiState(
            tenant,
            limits,
            None,
            ctypes.byref(memory),
            None,
            time.monotonic() + limits.timeout_s,
            ticks=ticks,
            cancel=cancel,
            shutdown=shutdown,
            stdio=exchange,
        )
        error = native.set_fuel(ctx, limits.fuel)
        if error:  # pragma: no cover - only fails when the engine does not consume fuel
            raise RuntimeError(native.take_error(error))
        native.set_epoch_deadline(ctx, CHECK_TICKS)
        instance = native.InstanceRef()
        trap = native.TrapPtr()
        bind(state)
        try:
            error = native.instance_pre_instantiate(
                native.address(self._pre.ptr()), ctx, ctypes.byref(instance), ctypes.byref(trap)
            )
            if error or trap:
                raise self._failure(state, ctx, memory, error, trap, instantiating=True)
            start = native.FuncRef()
            _export(ctx, instance, EXPORT_MEMORY, native.EXTERN_MEMORY, "memory", memory)
            _export(ctx, instance, EXPORT_START, native.EXTERN_FUNC, "func", start)
            state.host = exchange.host
            buf = (native.ValRaw * 1)()
            error = native.func_call_unchecked(ctx, ctypes.byref(start), buf, 0, ctypes.byref(trap))
            answered = isinstance(state.pending, _Answered)
            if not answered:
                if not error and not trap and state.pending is None:
                    state.pending = exchange.exited(0)
                failure = self._failure(state, ctx, memory, error, trap, instantiating=False)
                raise _out_of_memory(failure, tenant, limits, self.memory_bytes)
            # The guest was stopped inside fd_write by design: free that trap.
            if trap:
                native.take_trap(trap)
            elif error:
                native.take_error(error)
            self.memory_bytes = int(native.memory_data_size(ctx, ctypes.byref(memory)))
            fuel = ctypes.c_uint64()
            native.get_fuel(ctx, ctypes.byref(fuel))
        finally:
            bind(None)
        return CallOutcome(
            reply=exchange.reply,
            fuel_used=limits.fuel - fuel.value,
            wall_s=time.perf_counter() - started,
            memory_bytes=self.memory_bytes,
            host_calls=state.host_calls,
            parsed=exchange.parsed,
        )

    def _failure(
        self,
        state: CallState,
        ctx: int,
        memory: Any,
        error: int | None,
        trap: Any,
        *,
        instantiating: bool,
    ) -> BaseException:
        message = native.take_error(error) if error else ""
        wrapped = native.take_trap(trap) if trap else None
        size = int(native.memory_data_size(ctx, ctypes.byref(memory))) if not instantiating else 0
        self.memory_bytes = size
        if state.pending is not None:
            return state.pending
        if wrapped is not None:
            return classify_trap(
                state.tenant, state.limits, wrapped.trap_code, wrapped.message, size
            )
        if instantiating:
            return ModuleRejected(
                f"tenant {state.tenant!r}: the module cannot be instantiated under its limits: "
                f"{message}",
                data={"tenant": state.tenant},
            )
        return ModuleTrapped(
            f"tenant {state.tenant!r}: the call failed: {message}", data={"tenant": state.tenant}
        )


def _out_of_memory(
    failure: BaseException, tenant: str, limits: Limits, memory_bytes: int
) -> BaseException:
    """A guest that exits with its memory at the limit ran out of it: its runtime saw a
    ``memory.grow`` fail and gave up (Go prints "fatal error: out of memory" and exits 2)."""
    if not isinstance(failure, ModuleTrapped) or not near_memory_limit(limits, memory_bytes):
        return failure
    if failure.data is None or "exit_code" not in failure.data:
        return failure
    return memory_exceeded(
        tenant,
        limits,
        memory_bytes,
        f"the stdio server exited with status {failure.data['exit_code']}",
    )


def _export(
    ctx: int, instance: Any, name: str, kind: int, field: str, target: ctypes.Structure
) -> None:
    item = native.ExternRef()
    raw = name.encode()
    found = native.instance_export_get(
        ctx, ctypes.byref(instance), raw, len(raw), ctypes.byref(item)
    )
    if not found or cast(int, item.kind) != kind:  # pragma: no cover - checked at load
        raise ModuleRejected(f"the module instance lacks its {name!r} export")
    ctypes.memmove(
        ctypes.byref(target), ctypes.byref(getattr(item.of, field)), ctypes.sizeof(target)
    )


__all__ = [
    "STDIO_HOST_IMPORTS",
    "Exchange",
    "StdioInstance",
    "check_stdio_module",
    "make_stdio_linker",
]
