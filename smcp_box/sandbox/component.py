"""One component instance (the ``smcp:box`` world) in its own Store, and one call on it.

The same invariants as a core :class:`~.instance.Instance`: one Store per instance, one thread
at a time, discarded after any failure. The same limits too: fuel and the epoch callback are set
on the Store exactly as for a core module, and the store limiter allows one linear memory
(:data:`~.world.COMPONENT_MAX_MEMORIES`) of ``[limits].memory_mib``.

What differs, and why:

- Host functions are defined through wasmtime-py's component Linker (values arrive already
  lifted: strings, options, lists), not as raw core callbacks. They share the core path's
  per-call state and checks (:func:`~.host.enter_import`). They raise only ``WasmtimeError``,
  which wasmtime-py hands back to wasmtime as this call's error; any other exception would go
  through a process-wide slot that concurrent calls share.
- wasmtime-py 50 has no ``InstancePre`` for components and no way to read a component
  instance's memory from outside, so an instance is linked at instantiation, and the memory
  figure of a component call (receipts, metrics) is 0: unknown, not zero bytes.
- A component's runtime writes its panics and a Python traceback to WASI stderr; the instance
  keeps the tail of what it wrote during the call and a failed call's error quotes it.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

import wasmtime
import wasmtime.component as wc
from wasmtime.component import Variant

from smcp_box.errors import (
    BadModuleReply,
    ModuleRejected,
    ModuleTrapped,
)
from smcp_box.protocol.jsonrpc import parse_module_notification

from . import native
from .abi import HOST_IMPORTS
from .faults import call_timeout, fuel_exhausted, memory_exceeded, trap_summary
from .host import (
    CHECK_TICKS,
    EPOCH_CALLBACK,
    MAX_BLOB_IO_BYTES,
    BlobHost,
    CallState,
    CancelToken,
    HostCalls,
    bind,
    blob_status,
    current_state,
    enter_import,
    fail,
    kv_call,
    leave_slot,
    rejoin_slot,
    sleep_for,
)
from .instance import host_deadline, parse_reply, reply_too_large
from .limits import MAX_TABLE_ELEMENTS, CallOutcome, Limits
from .world import (
    COMPONENT_MAX_INSTANCES,
    COMPONENT_MAX_MEMORIES,
    COMPONENT_MAX_TABLES,
    EXPORT_HANDLE,
    HOST_FUNCTIONS,
    make_component_linker,
)

#: Bytes of a call's stdout and stderr kept for its error message.
OUTPUT_TAIL_BYTES = 4096


class _OutputTail:
    """The last :data:`OUTPUT_TAIL_BYTES` the guest wrote to stdout and stderr."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, chunk: bytes) -> None:
        self.data = (self.data + chunk)[-OUTPUT_TAIL_BYTES:]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


#: The last line of a Python traceback (``ValueError: boom``) or a JavaScript error.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*$")


def guest_cause(output: str) -> str:
    """The line of a guest's stderr that says why it failed: the exception of a traceback,
    else the panic message of its runtime or the message above a JavaScript stack, else its
    last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line
    for before, line in itertools.pairwise(lines):
        if " panicked at " in before:
            return line
        if line == "Stack:":
            # SpiderMonkey (componentize-js) prints an uncaught error's message, then its stack.
            return before
    return lines[-1] if lines else ""


# --- the host functions --------------------------------------------------------------------
# Each takes (state, host, *the WIT function's arguments) and returns its WIT result.


def _check_text(state: CallState, name: str, text: str, what: str) -> str:
    limit = state.limits.max_reply_bytes
    if len(text) * 4 > limit and len(text.encode("utf-8")) > limit:
        raise fail(
            state,
            name,
            f"the {what} is over [limits].max_reply_bytes ({limit} bytes)",
            BadModuleReply,
        )
    return text


def _log(state: CallState, host: HostCalls, level: str, message: str) -> None:
    host.log(
        _check_text(state, "log", level, "level"), _check_text(state, "log", message, "message")
    )


def _config_get(state: CallState, host: HostCalls, key: str) -> str | None:
    return host.config_get(_check_text(state, "config-get", key, "key"))


def _kv_get(state: CallState, host: HostCalls, key: str) -> str | None:
    return host.kv_get(_check_text(state, "kv-get", key, "key"))


#: The WIT ``kv-error`` case of each status code of the core ABI (docs/abi.md 2.3).
_KV_ERRORS = {-1: "quota-exceeded", -2: "storage-failure", -3: "not-an-integer"}


def _kv_set(state: CallState, host: HostCalls, key: str, value: str) -> str | None:
    _check_text(state, "kv-set", key, "key")
    return _KV_ERRORS.get(kv_call(lambda: host.kv_set(key, value))[0])


def _kv_delete(state: CallState, host: HostCalls, key: str) -> str | None:
    _check_text(state, "kv-delete", key, "key")
    return _KV_ERRORS.get(kv_call(lambda: host.kv_delete(key))[0])


def _kv_cas(
    state: CallState, host: HostCalls, key: str, expected: str | None, value: str
) -> bool | str:
    _check_text(state, "kv-cas", key, "key")
    status, written = kv_call(lambda: host.kv_cas(key, expected, value))
    return _KV_ERRORS[status] if status else bool(written)


def _kv_incr(state: CallState, host: HostCalls, key: str, delta: int) -> int | str:
    _check_text(state, "kv-incr", key, "key")
    status, total = kv_call(lambda: host.kv_incr(key, delta))
    return _KV_ERRORS[status] if status or total is None else total


def _random_bytes(state: CallState, host: HostCalls, length: int) -> bytes:
    try:
        return host.random_bytes(length)
    except BadModuleReply as exc:
        raise fail(state, "random-bytes", exc.message, BadModuleReply) from None


def _kv_list(state: CallState, host: HostCalls, prefix: str) -> list[str]:
    return list(host.kv_list(_check_text(state, "kv-list", prefix, "prefix")))


def _sleep_ms(state: CallState, host: HostCalls, ms: int) -> None:
    sleep_for(state, "sleep-ms", ms)


def _notify(state: CallState, host: HostCalls, text: str) -> None:
    try:
        message = parse_module_notification(_check_text(state, "notify", text, "notification"))
    except BadModuleReply as exc:
        raise fail(state, "notify", exc.message, BadModuleReply) from None
    host.notify(message)


def _time_now_ms(state: CallState, host: HostCalls) -> int:
    return max(0, int(host.time_now_ms()))


#: The WIT ``blob-error`` case of each status code of the core ABI (docs/abi.md 2.8).
_BLOB_ERRORS = {
    -1: "quota-exceeded",
    -2: "storage-failure",
    -3: "not-found",
    -4: "invalid-name",
    -5: "bad-handle",
}


def _blobs(state: CallState, name: str, host: HostCalls) -> BlobHost:
    if not isinstance(host, BlobHost):
        raise fail(state, name, "blob storage is not available to this call")
    return host


def _blob_open(
    state: CallState, host: HostCalls, name: str, write: bool, content_type: str
) -> int | str:
    blobs = _blobs(state, "blob-open", host)
    _check_text(state, "blob-open", name, "name")
    status, handle = blob_status(lambda: blobs.blob_open(name, int(write), content_type))
    return _BLOB_ERRORS[status] if status or handle is None else handle


def _blob_read(state: CallState, host: HostCalls, handle: int, size: int) -> bytes | str:
    blobs = _blobs(state, "blob-read", host)
    if size > MAX_BLOB_IO_BYTES:
        raise fail(state, "blob-read", f"at most {MAX_BLOB_IO_BYTES} bytes a call", BadModuleReply)
    status, data = blob_status(lambda: blobs.blob_read(handle, size))
    return _BLOB_ERRORS[status] if status else bytes(data or b"")


def _blob_write(state: CallState, host: HostCalls, handle: int, data: bytes) -> str | None:
    blobs = _blobs(state, "blob-write", host)
    if len(data) > MAX_BLOB_IO_BYTES:
        raise fail(state, "blob-write", f"at most {MAX_BLOB_IO_BYTES} bytes a call", BadModuleReply)
    return _BLOB_ERRORS.get(blob_status(lambda: blobs.blob_write(handle, bytes(data)))[0])


def _blob_close(state: CallState, host: HostCalls, handle: int) -> str | None:
    blobs = _blobs(state, "blob-close", host)
    return _BLOB_ERRORS.get(blob_status(lambda: blobs.blob_close(handle))[0])


def _blob_stat(state: CallState, host: HostCalls, name: str) -> Variant:
    blobs = _blobs(state, "blob-stat", host)
    _check_text(state, "blob-stat", name, "name")
    status, info = blob_status(lambda: blobs.blob_stat(name))
    if status:
        return Variant("err", _BLOB_ERRORS[status])
    return Variant("ok", None if info is None else json.dumps(info, separators=(",", ":")))


def _blob_list(state: CallState, host: HostCalls, prefix: str) -> Variant:
    blobs = _blobs(state, "blob-list", host)
    _check_text(state, "blob-list", prefix, "prefix")
    status, infos = blob_status(lambda: blobs.blob_list(prefix))
    if status:
        return Variant("err", _BLOB_ERRORS[status])
    return Variant("ok", json.dumps(infos or [], separators=(",", ":")))


def _blob_delete(state: CallState, host: HostCalls, name: str) -> bool | str:
    blobs = _blobs(state, "blob-delete", host)
    _check_text(state, "blob-delete", name, "name")
    status, deleted = blob_status(lambda: blobs.blob_delete(name))
    return _BLOB_ERRORS[status] if status else bool(deleted)


_IMPLS: dict[str, Any] = {
    "log": _log,
    "config-get": _config_get,
    "kv-get": _kv_get,
    "kv-set": _kv_set,
    "kv-delete": _kv_delete,
    "kv-list": _kv_list,
    "notify": _notify,
    "time-now-ms": _time_now_ms,
    "kv-cas": _kv_cas,
    "kv-incr": _kv_incr,
    "random-bytes": _random_bytes,
    "blob-open": _blob_open,
    "blob-read": _blob_read,
    "blob-write": _blob_write,
    "blob-close": _blob_close,
    "blob-stat": _blob_stat,
    "blob-list": _blob_list,
    "blob-delete": _blob_delete,
    "sleep-ms": _sleep_ms,
}
assert tuple(_IMPLS) == HOST_FUNCTIONS, "every function of the world needs an implementation"
assert {name.replace("-", "_") for name in _IMPLS} == set(HOST_IMPORTS), "the world mirrors the ABI"


def _entry(name: str, impl: Any) -> Any:
    def entry(_store: Any, *args: Any) -> Any:
        state = current_state()
        if state is None:  # pragma: no cover - every wasm entry binds a state first
            raise wasmtime.WasmtimeError(f"{name}: called with no call in progress")
        try:
            host = enter_import(state, name)
            slot = leave_slot()
            try:
                return impl(state, host, *args)
            finally:
                rejoin_slot(state, slot)
        except BaseException as exc:  # only WasmtimeError may go back into wasmtime
            if state.pending is None:
                state.pending = exc
            raise wasmtime.WasmtimeError(f"{name}: {exc}") from None

    return entry


def make_linker(engine: wasmtime.Engine) -> wc.Linker:
    """The component Linker of a sandbox: WASI preview 2 and the world's host interface."""
    return make_component_linker(
        engine, {name: _entry(name, impl) for name, impl in _IMPLS.items()}
    )


# --- the instance --------------------------------------------------------------------------


class ComponentInstance:
    """A live component instance and its ``handle`` export."""

    __slots__ = ("calls", "ctx", "handle", "memory_bytes", "output", "store")

    def __init__(
        self,
        engine: wasmtime.Engine,
        linker: wc.Linker,
        component: wc.Component,
        tenant: str,
        limits: Limits,
        ticks: int,
    ) -> None:
        store = wasmtime.Store(engine)
        store.set_limits(
            memory_size=limits.memory_bytes,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=COMPONENT_MAX_INSTANCES,
            tables=COMPONENT_MAX_TABLES,
            memories=COMPONENT_MAX_MEMORIES,
        )
        self.output = _OutputTail()
        # No preopens, no network, no environment, no arguments, empty stdin (WasiConfig's
        # defaults); stdout and stderr go to the tail, never to the box's own streams.
        wasi = wasmtime.WasiConfig()
        wasi.stdout_custom = self.output.write
        wasi.stderr_custom = self.output.write
        store.set_wasi(wasi)
        native.set_epoch_callback(store, EPOCH_CALLBACK)
        self.store = store
        self.ctx = native.store_context(store)
        self.calls = 0
        #: Unknown for a component (see the module doc); kept for the pool's statistics.
        self.memory_bytes = 0
        state = CallState(tenant, limits, None, None, None, host_deadline(limits), ticks=ticks)
        self._arm(limits)
        bind(state)
        try:
            instance = linker.instantiate(store, component)
            handle = instance.get_func(store, EXPORT_HANDLE)
        except wasmtime.WasmtimeError as exc:
            self.close()
            raise self._instantiation_failure(state, str(exc)) from None
        finally:
            bind(None)
        if handle is None:  # pragma: no cover - world.check_component verified the export
            self.close()
            raise ModuleRejected(f"tenant {tenant!r}: the component lacks its 'handle' export")
        self.handle = handle

    def _instantiation_failure(self, state: CallState, message: str) -> BaseException:
        if state.pending is not None:
            return state.pending
        if "resource limit exceeded" in message or "matching implementation" in message:
            # A link or limit failure: the component cannot run here at all.
            return ModuleRejected(
                f"tenant {state.tenant!r}: the component cannot be instantiated under its "
                f"limits or linked to the smcp:box world: {trap_summary(message)}",
                data={"tenant": state.tenant},
            )
        return self._failure(state, message)

    def _arm(self, limits: Limits) -> None:
        error = native.set_fuel(self.ctx, limits.fuel)
        if error:  # pragma: no cover - only fails when the engine does not consume fuel
            raise RuntimeError(native.take_error(error))
        native.set_epoch_deadline(self.ctx, CHECK_TICKS)

    def _failure(self, state: CallState, message: str) -> BaseException:
        if state.pending is not None:
            return state.pending
        tenant, limits = state.tenant, state.limits
        if "all fuel consumed" in message:
            return fuel_exhausted(tenant, limits)
        if "wasm trap: interrupt" in message:
            return call_timeout(tenant, limits)
        said = self.output.text().strip()
        if "MemoryError" in said or "out of memory" in said.lower():
            # The guest's allocator failed to grow the memory past the limit and its runtime
            # said so before aborting: the limit, not a bug, ended the call.
            return memory_exceeded(
                tenant, limits, limits.memory_bytes, "the component ran out of memory"
            )
        cause = guest_cause(said)
        return ModuleTrapped(
            f"tenant {tenant!r}: the component trapped: {trap_summary(message)}"
            + (f"; it reported: {cause[:500]}" if cause else ""),
            data={"tenant": tenant},
        )

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
        """Run one message through ``handle``. Any exception means: discard this instance."""
        started = time.perf_counter()
        state = CallState(
            tenant,
            limits,
            host,
            None,
            None,
            host_deadline(limits),
            ticks=ticks,
            cancel=cancel,
            shutdown=shutdown,
        )
        self._arm(limits)
        self.calls += 1
        self.output.data = b""
        # The pool encoded the message from a str: it is valid UTF-8.
        text = message.decode("utf-8")
        bind(state)
        try:
            try:
                reply = self.handle(self.store, text)
                self.handle.post_return(self.store)
            except wasmtime.WasmtimeError as exc:
                raise self._failure(state, str(exc)) from None
            if state.pending is not None:
                raise state.pending
            fuel_left = self.store.get_fuel()
        finally:
            bind(None)
        if not isinstance(reply, str):  # pragma: no cover - the export's type was checked
            raise BadModuleReply(f"tenant {tenant!r}: handle did not return a string")
        parsed: object = None
        if reply:
            if len(reply) * 4 > limits.max_reply_bytes:
                size = len(reply.encode("utf-8"))
                if size > limits.max_reply_bytes:
                    raise reply_too_large(tenant, limits, size)
            parsed = parse_reply(tenant, reply)
        return CallOutcome(
            reply=reply,
            fuel_used=limits.fuel - fuel_left,
            wall_s=time.perf_counter() - started,
            memory_bytes=self.memory_bytes,
            host_calls=state.host_calls,
            parsed=parsed,
        )

    def close(self) -> None:
        self.store.close()
