"""Host imports: the ``smcp`` functions a module may call, and the per-call state they serve.

The imports are defined once per engine, in one Linker, as native callbacks that know nothing
of any tenant. Each call binds its :class:`CallState` (tenant, limits, the request's
:class:`HostCalls`, the instance's memory) to the worker thread that runs it; a callback finds
it there. That is sound because wasm calls are synchronous: a host import always runs on the
thread that entered the wasm that called it, and nothing else runs on that thread meanwhile.

A callback never lets a Python exception escape into wasmtime (ctypes would print and swallow
it). It records the first error on the state and returns a trap whose message names the import;
the call then raises that recorded error, not a generic trap.
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import wasmtime

from smcp_box.errors import (
    BadModuleReply,
    BlobHandleError,
    BlobNotFound,
    BlobQuotaExceeded,
    BoxError,
    InvalidBlobName,
    KvNotAnInteger,
    KvQuotaExceeded,
    ModuleTrapped,
    SandboxError,
    StoreError,
)
from smcp_box.protocol.jsonrpc import parse_module_notification
from smcp_box.seams import JsonObject

from . import native
from .abi import HOST_IMPORTS, IMPORT_MODULE, U32_MASK, pack_buffer
from .fair import Slot
from .faults import (
    call_cancelled,
    call_timeout,
    classify_trap,
    memory_exceeded,
    sandbox_closing,
)
from .limits import Limits

_T = TypeVar("_T")


class HostCalls(Protocol):
    """What a module can ask of the box during one call; one object per call.

    Methods are synchronous and run in the sandbox's worker thread, never on the event loop.
    Raising a :class:`smcp_box.errors.BoxError` fails the call with it, except from ``kv_set``,
    ``kv_delete``, ``kv_cas`` and ``kv_incr``, whose store errors become status codes for the
    module.
    """

    def log(self, level: str, message: str) -> None: ...

    def config_get(self, key: str) -> str | None: ...

    def kv_get(self, key: str) -> str | None: ...

    def kv_set(self, key: str, value: str) -> None:
        """Raise KvQuotaExceeded (module sees -1) or StoreError (module sees -2)."""
        ...

    def kv_delete(self, key: str) -> None: ...

    def kv_cas(self, key: str, expected: str | None, value: str) -> bool:
        """True if written. Raise KvQuotaExceeded (-1) or StoreError (-2)."""
        ...

    def kv_incr(self, key: str, delta: int) -> int:
        """The new value. Raise KvQuotaExceeded (-1), StoreError (-2) or KvNotAnInteger (-3)."""
        ...

    def kv_list(self, prefix: str) -> list[str]: ...

    def notify(self, message: JsonObject) -> None:
        """One notification for the caller's stream, already checked (and ``jsonrpc`` set) by
        :func:`smcp_box.protocol.jsonrpc.parse_module_notification`."""
        ...

    def time_now_ms(self) -> int: ...

    def random_bytes(self, length: int) -> bytes:
        """Exactly ``length`` bytes from a CSPRNG; BadModuleReply for a length out of range."""
        ...


@runtime_checkable
class BlobHost(Protocol):
    """The blob imports' side of a HostCalls (tenancy/blob_handles.py); a host without it
    fails a module's blob imports. Errors become the status codes of docs/abi.md 2.8:
    BlobQuotaExceeded -1, StoreError -2, BlobNotFound -3, InvalidBlobName -4, BlobHandleError
    -5."""

    def blob_open(self, name: str, mode: int, content_type: str) -> int: ...

    def blob_read(self, handle: int, size: int) -> bytes: ...

    def blob_write(self, handle: int, data: bytes) -> None: ...

    def blob_close(self, handle: int) -> None: ...

    def blob_stat(self, name: str) -> JsonObject | None: ...

    def blob_list(self, prefix: str) -> list[JsonObject]: ...

    def blob_delete(self, name: str) -> bool: ...


class CancelToken:
    """A flag any thread may raise to stop a running call.

    The call notices at its next host import or epoch tick (``tick_s``, 10 ms by default) and
    fails; its instance is then discarded like after any trap. Raising the flag is a plain
    attribute store, atomic under the GIL; it is only ever read by the thread running the wasm
    (its epoch callback and host imports), never by wasmtime from another thread, which is what
    makes this safe where changing the store's epoch deadline from another thread would not be.
    """

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


#: Epoch ticks between two looks at a running call (its cancel flags and its deadline). The
#: store's deadline is re-armed this far ahead each time, so a look costs one Python callback
#: per tick of a long call and nothing for a call shorter than a tick.
CHECK_TICKS = 1


class CallState:
    """Everything the host imports of one running call (or instantiation) need."""

    __slots__ = (
        "alloc_ref",
        "cancel",
        "deadline",
        "host",
        "host_calls",
        "limits",
        "mem_ref",
        "pending",
        "preemptions_seen",
        "shutdown",
        "tenant",
        "ticks_left",
    )

    def __init__(
        self,
        tenant: str,
        limits: Limits,
        host: HostCalls | None,
        mem_ref: Any,
        alloc_ref: Any,
        deadline: float,
        *,
        ticks: int = 0,
        cancel: CancelToken | None = None,
        shutdown: CancelToken | None = None,
    ) -> None:
        self.tenant = tenant
        self.limits = limits
        #: None while the module's start function runs: imports are refused then.
        self.host = host
        self.mem_ref = mem_ref
        self.alloc_ref = alloc_ref
        #: time.monotonic() after which a host import fails the call as timed out.
        self.deadline = deadline
        #: Epoch ticks the call may still run (its wall-clock limit, counted by the ticker).
        self.ticks_left = ticks
        #: :data:`preemptions` as of this call's last epoch check: an epoch the scheduler added
        #: to cut slices short is not a tick of the call's time.
        self.preemptions_seen = preemptions[0]
        #: Raised when the call's client cancelled it (the transport's task was cancelled).
        self.cancel = cancel
        #: Raised when the sandbox closes.
        self.shutdown = shutdown
        self.host_calls = 0
        #: The first error a host import hit; the call raises it.
        self.pending: BaseException | None = None

    def interruption(self) -> SandboxError | None:
        """Why the call must stop now, if it must (cancelled, shutting down, out of time)."""
        if self.cancel is not None and self.cancel.cancelled:
            return call_cancelled(self.tenant)
        if self.shutdown is not None and self.shutdown.cancelled:
            return sandbox_closing(self.tenant, self.limits)
        if time.monotonic() > self.deadline:
            return call_timeout(self.tenant, self.limits)
        return None


_current = threading.local()

#: Epoch increments made by the scheduler to end slices early (not by the ticker), process-wide:
#: a one-element list so that every engine's preempt hook can count into it.
preemptions = [0]


def bind(state: CallState | None) -> None:
    _current.state = state


#: Host imports at which an inline attempt (:func:`bind_speculation`) stops: kv and blob calls
#: wait on the event loop, which the attempt occupies, and have lasting effects a rerun would
#: repeat; ``sleep_ms`` would sleep on the loop itself.
SPECULATION_STOPS = frozenset(
    {"kv_get", "kv_set", "kv_delete", "kv_list", "kv_cas", "kv_incr"}
    | {"blob_open", "blob_read", "blob_write", "blob_close", "blob_stat", "blob_list"}
    | {"blob_delete", "sleep_ms"}
)


class SpeculationAbandoned(Exception):
    """An inline attempt reached an import in :data:`SPECULATION_STOPS`: nothing the import
    would do has happened, and the call is to be run again, whole, in a worker."""


def bind_speculation(speculative: bool) -> None:
    """Whether the wasm entered on this thread is an inline attempt on the event loop: its
    imports in :data:`SPECULATION_STOPS` then abandon the attempt instead of running."""
    _current.speculative = speculative


def bind_slot(slot: Slot | None) -> None:
    """The run slot the wasm on this thread holds (see :mod:`.fair`); its epoch checks give the
    slot up between slices when other calls wait."""
    _current.slot = slot


def leave_slot() -> Slot | None:
    """Give up this thread's run slot for a host import, which may wait (kv waits on the event
    loop and the database): a waiting call uses no processor, and the slot is another call's
    meanwhile. Returns the slot to :func:`rejoin_slot`, or None when none was held."""
    slot: Slot | None = getattr(_current, "slot", None)
    if slot is None or not slot.held:
        return None
    slot.release()
    return slot


def rejoin_slot(state: CallState, slot: Slot | None) -> None:
    """Take a run slot again after a host import, in turn behind the calls waiting."""
    if slot is not None and not slot.rejoin(_stopper(state), state.deadline):
        raise state.interruption() or call_timeout(state.tenant, state.limits)


def current_state() -> CallState | None:
    """The state bound to this thread by the wasm entry running on it, if any."""
    state: CallState | None = getattr(_current, "state", None)
    return state


def enter_import(state: CallState, name: str) -> HostCalls:
    """The checks every host import makes before it does anything, for core modules and
    components alike: counted against max_host_calls, refused during instantiation, and
    refused once the call is cancelled or out of time. Returns the call's host."""
    state.host_calls += 1
    host = state.host
    if host is None:
        raise fail(state, name, "host imports cannot be called from the start function")
    if state.host_calls > state.limits.max_host_calls:
        raise fail(
            state,
            name,
            f"more than {state.limits.max_host_calls} host calls in one call; raise "
            "[limits].max_host_calls in tenant.toml or make fewer calls",
        )
    interruption = state.interruption()
    if interruption is not None:
        raise interruption
    return host


def fail(state: CallState, name: str, detail: str, cls: type[BoxError] = ModuleTrapped) -> BoxError:
    """The error a host import raises: names the tenant and the import."""
    return cls(
        f"tenant {state.tenant!r}: {name}: {detail}", data={"tenant": state.tenant, "import": name}
    )


def read_string(state: CallState, ctx: int, name: str, ptr: int, length: int, what: str) -> str:
    ptr &= U32_MASK
    length &= U32_MASK
    if length > state.limits.max_reply_bytes:
        raise fail(
            state,
            name,
            f"the {what} is {length} bytes, over [limits].max_reply_bytes "
            f"({state.limits.max_reply_bytes})",
            BadModuleReply,
        )
    size = native.memory_data_size(ctx, state.mem_ref)
    if ptr + length > size:
        raise fail(
            state,
            name,
            f"pointer out of bounds (the {what} at {ptr} with length {length} ends past the "
            f"{size}-byte memory)",
        )
    if length == 0:
        return ""
    raw = ctypes.string_at(native.memory_data(ctx, state.mem_ref) + ptr, length)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(state, name, f"the {what} is not valid UTF-8", BadModuleReply) from None


def _check_span(state: CallState, ctx: int, name: str, ptr: int, length: int, what: str) -> None:
    """Fail the call (-32054) unless [ptr, ptr + length) lies inside the module's memory: for
    buffers the host writes into at a place the module chose."""
    size = native.memory_data_size(ctx, state.mem_ref)
    if ptr + length > size:
        raise fail(
            state,
            name,
            f"the {what} at {ptr} with length {length} ends past the {size}-byte memory",
            BadModuleReply,
        )


def write_buffer(state: CallState, ctx: int, name: str, data: bytes) -> int:
    """Copy ``data`` into a buffer the module allocates; return it packed as ``ptr << 32 | len``."""
    length = len(data)
    if length == 0:
        return 0
    if length > state.limits.memory_bytes:
        raise memory_exceeded(
            state.tenant,
            state.limits,
            native.memory_data_size(ctx, state.mem_ref),
            f"{name} could not pass back {length} bytes",
        )
    buf = (native.ValRaw * 2)()
    buf[0].i32 = length
    trap = native.TrapPtr()
    error = native.func_call_unchecked(ctx, state.alloc_ref, buf, 2, ctypes.byref(trap))
    if trap:
        wrapped = native.take_trap(trap)
        raise classify_trap(
            state.tenant,
            state.limits,
            wrapped.trap_code,
            wrapped.message,
            native.memory_data_size(ctx, state.mem_ref),
        )
    if error:
        # Only a host import called from inside smcp_alloc can fail this way; its own error
        # is already pending and wins.
        raise fail(state, name, f"smcp_alloc failed: {native.take_error(error)}")
    ptr = buf[0].i32 & U32_MASK
    size = native.memory_data_size(ctx, state.mem_ref)
    if ptr == 0:
        raise memory_exceeded(
            state.tenant, state.limits, size, f"smcp_alloc({length}) for {name} returned 0"
        )
    if ptr + length > size:
        raise fail(state, name, f"smcp_alloc returned a buffer out of bounds ({ptr}+{length})")
    # The memory may have grown (and moved) inside smcp_alloc: fetch its base only now.
    ctypes.memmove(native.memory_data(ctx, state.mem_ref) + ptr, data, length)
    return pack_buffer(ptr, length)


# --- the imports -------------------------------------------------------------------------------
# Each takes (state, host, guest memory context, raw argument/result slots).

Impl = Callable[[CallState, HostCalls, int, Any], None]


def _log(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    level = read_string(state, ctx, "log", a[0].i32, a[1].i32, "level")
    message = read_string(state, ctx, "log", a[2].i32, a[3].i32, "message")
    host.log(level, message)


def _optional(state: CallState, ctx: int, name: str, value: str | None, a: Any) -> None:
    a[0].i64 = -1 if value is None else write_buffer(state, ctx, name, value.encode("utf-8"))


def _config_get(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "config_get", a[0].i32, a[1].i32, "key")
    _optional(state, ctx, "config_get", host.config_get(key), a)


def _kv_get(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "kv_get", a[0].i32, a[1].i32, "key")
    _optional(state, ctx, "kv_get", host.kv_get(key), a)


def _kv_list(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    prefix = read_string(state, ctx, "kv_list", a[0].i32, a[1].i32, "prefix")
    keys = host.kv_list(prefix)
    encoded = json.dumps(list(keys), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    a[0].i64 = write_buffer(state, ctx, "kv_list", encoded)


def kv_call(call: Callable[[], _T]) -> tuple[int, _T | None]:
    """(status, result) of a kv import's store call: the status codes of docs/abi.md 2.3."""
    try:
        return 0, call()
    except KvQuotaExceeded:
        return -1, None
    except StoreError:
        return -2, None
    except KvNotAnInteger:
        return -3, None


def _kv_set(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "kv_set", a[0].i32, a[1].i32, "key")
    value = read_string(state, ctx, "kv_set", a[2].i32, a[3].i32, "value")
    a[0].i32 = kv_call(lambda: host.kv_set(key, value))[0]


def _kv_delete(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "kv_delete", a[0].i32, a[1].i32, "key")
    a[0].i32 = kv_call(lambda: host.kv_delete(key))[0]


def _kv_cas(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "kv_cas", a[0].i32, a[1].i32, "key")
    # An expected length of -1 means "only if absent"; any other value is a string.
    expected = (
        None
        if a[3].i32 == -1
        else read_string(state, ctx, "kv_cas", a[2].i32, a[3].i32, "expected value")
    )
    value = read_string(state, ctx, "kv_cas", a[4].i32, a[5].i32, "value")
    status, written = kv_call(lambda: host.kv_cas(key, expected, value))
    a[0].i32 = status or int(bool(written))


def _kv_incr(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    key = read_string(state, ctx, "kv_incr", a[0].i32, a[1].i32, "key")
    delta, out_ptr = a[2].i64, a[3].i32 & U32_MASK
    # Checked before the store is asked, so a bad pointer fails the call with nothing stored.
    _check_span(state, ctx, "kv_incr", out_ptr, 8, "result buffer")
    status, total = kv_call(lambda: host.kv_incr(key, delta))
    if total is not None:
        out = total.to_bytes(8, "little", signed=True)
        ctypes.memmove(native.memory_data(ctx, state.mem_ref) + out_ptr, out, 8)
    a[0].i32 = status


def _random_bytes(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    ptr, length = a[0].i32 & U32_MASK, a[1].i32 & U32_MASK
    _check_span(state, ctx, "random_bytes", ptr, length, "buffer")
    try:
        data = host.random_bytes(length)
    except BadModuleReply as exc:
        raise fail(state, "random_bytes", exc.message, BadModuleReply) from None
    if len(data) != length:  # pragma: no cover - a HostCalls bug, not the module's
        raise SandboxError(f"random_bytes: the host gave {len(data)} bytes, not {length}")
    ctypes.memmove(native.memory_data(ctx, state.mem_ref) + ptr, data, length)
    a[0].i32 = 0


def _notify(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    text = read_string(state, ctx, "notify", a[0].i32, a[1].i32, "notification")
    try:
        message = parse_module_notification(text)
    except BadModuleReply as exc:
        raise fail(state, "notify", exc.message, BadModuleReply) from None
    host.notify(message)


def _time_now_ms(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    a[0].i64 = int(host.time_now_ms())


#: Longest single sleep between two looks at a sleeping call's deadline and cancel flags.
SLEEP_SLICE_S = 0.05


def sleep_for(state: CallState, name: str, ms: int) -> None:
    """``sleep_ms``: wait ``ms`` milliseconds in the host. The import's entry already gave the
    run slot up, so a sleeping call uses no processor; it still ends at its deadline (-32052)
    or when cancelled, which the epoch ticker cannot notice while the guest is out of wasm."""
    if ms < 0:
        raise fail(state, name, f"the duration must not be negative (got {ms} ms)")
    wake_at = time.monotonic() + ms / 1000
    while True:
        interruption = state.interruption()
        if interruption is not None:
            raise interruption
        left = wake_at - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, SLEEP_SLICE_S, max(state.deadline - time.monotonic(), 0.0)))


def _sleep_ms(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    sleep_for(state, "sleep_ms", int(a[0].i64))


# --- blobs (docs/abi.md 2.8) ---------------------------------------------------------------

#: The most bytes one blob_read or blob_write moves; a module loops for more.
MAX_BLOB_IO_BYTES = 1024 * 1024


def _blob_host(state: CallState, name: str, host: HostCalls) -> BlobHost:
    if not isinstance(host, BlobHost):
        raise fail(state, name, "blob storage is not available to this call")
    return host


def blob_status(call: Callable[[], _T]) -> tuple[int, _T | None]:
    """(status, result) of a blob import's host call: 0 or a negative code of docs/abi.md."""
    try:
        return 0, call()
    except BlobQuotaExceeded:
        return -1, None
    except BlobNotFound:
        return -3, None
    except InvalidBlobName:
        return -4, None
    except BlobHandleError:
        return -5, None
    except StoreError:
        return -2, None


def _blob_open(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_open", host)
    name = read_string(state, ctx, "blob_open", a[0].i32, a[1].i32, "name")
    content_type = read_string(state, ctx, "blob_open", a[3].i32, a[4].i32, "content type")
    mode = a[2].i32
    status, handle = blob_status(lambda: blobs.blob_open(name, mode, content_type))
    a[0].i32 = status or int(handle or 0)


def _io_span(state: CallState, ctx: int, name: str, ptr: int, length: int) -> tuple[int, int]:
    ptr, length = ptr & U32_MASK, length & U32_MASK
    if length > MAX_BLOB_IO_BYTES:
        raise fail(
            state, name, f"{length} bytes in one call; at most {MAX_BLOB_IO_BYTES}", BadModuleReply
        )
    _check_span(state, ctx, name, ptr, length, "buffer")
    return ptr, length


def _blob_read(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_read", host)
    handle = a[0].i32
    ptr, length = _io_span(state, ctx, "blob_read", a[1].i32, a[2].i32)
    status, data = blob_status(lambda: blobs.blob_read(handle, length))
    if data:
        ctypes.memmove(native.memory_data(ctx, state.mem_ref) + ptr, data, len(data))
    a[0].i32 = status or len(data or b"")


def _blob_write(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_write", host)
    handle = a[0].i32
    ptr, length = _io_span(state, ctx, "blob_write", a[1].i32, a[2].i32)
    data = ctypes.string_at(native.memory_data(ctx, state.mem_ref) + ptr, length)
    a[0].i32 = blob_status(lambda: blobs.blob_write(handle, data))[0]


def _blob_close(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_close", host)
    handle = a[0].i32
    a[0].i32 = blob_status(lambda: blobs.blob_close(handle))[0]


def _blob_stat(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_stat", host)
    name = read_string(state, ctx, "blob_stat", a[0].i32, a[1].i32, "name")
    status, info = blob_status(lambda: blobs.blob_stat(name))
    if status:
        a[0].i64 = status
    elif info is None:
        a[0].i64 = -1  # absent, as for config_get and kv_get
    else:
        a[0].i64 = write_buffer(state, ctx, "blob_stat", _json_bytes(info))


def _blob_list(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_list", host)
    prefix = read_string(state, ctx, "blob_list", a[0].i32, a[1].i32, "prefix")
    status, infos = blob_status(lambda: blobs.blob_list(prefix))
    a[0].i64 = status or write_buffer(state, ctx, "blob_list", _json_bytes(infos or []))


def _blob_delete(state: CallState, host: HostCalls, ctx: int, a: Any) -> None:
    blobs = _blob_host(state, "blob_delete", host)
    name = read_string(state, ctx, "blob_delete", a[0].i32, a[1].i32, "name")
    status, deleted = blob_status(lambda: blobs.blob_delete(name))
    a[0].i32 = status or int(bool(deleted))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_IMPLS: dict[str, Impl] = {
    "log": _log,
    "config_get": _config_get,
    "kv_get": _kv_get,
    "kv_set": _kv_set,
    "kv_delete": _kv_delete,
    "kv_list": _kv_list,
    "notify": _notify,
    "time_now_ms": _time_now_ms,
    "kv_cas": _kv_cas,
    "kv_incr": _kv_incr,
    "random_bytes": _random_bytes,
    "blob_open": _blob_open,
    "blob_read": _blob_read,
    "blob_write": _blob_write,
    "blob_close": _blob_close,
    "blob_stat": _blob_stat,
    "blob_list": _blob_list,
    "blob_delete": _blob_delete,
    "sleep_ms": _sleep_ms,
}
assert set(_IMPLS) == set(HOST_IMPORTS), "every ABI import needs an implementation"


def _callback(name: str, impl: Impl) -> Any:
    def entry(env: int | None, caller: int, args: Any, nargs: int) -> int:
        state: CallState | None = getattr(_current, "state", None)
        if state is None:  # pragma: no cover - every wasm entry binds a state first
            return native.new_trap(f"{name}: called with no call in progress")
        try:
            if name in SPECULATION_STOPS and getattr(_current, "speculative", False):
                # Before the import counts or does anything: the rerun starts from scratch.
                raise SpeculationAbandoned(name)
            host = enter_import(state, name)
            slot = leave_slot()
            try:
                impl(state, host, native.caller_context(caller), args)
            finally:
                rejoin_slot(state, slot)
            return 0
        except BaseException as exc:  # nothing may escape into wasmtime
            if state.pending is None:
                state.pending = exc
            return native.new_trap(f"{name}: {exc}")

    return native.HostCallback(entry)


#: The native callbacks must outlive every Linker that uses them: keep them for the process.
_CALLBACKS: dict[str, Any] = {name: _callback(name, impl) for name, impl in _IMPLS.items()}


def _stopper(state: CallState) -> Callable[[], bool]:
    return lambda: state.interruption() is not None


def _on_epoch(context: int, env: int, delta: Any, kind: Any) -> int:
    """wasmtime reached the running store's epoch deadline: stop the call, or look again in
    ``CHECK_TICKS`` ticks. Runs on the thread running the wasm; never raises into wasmtime."""
    state: CallState | None = getattr(_current, "state", None)
    try:
        if state is None:  # pragma: no cover - every wasm entry binds a state first
            return native.new_error("epoch deadline reached with no call in progress")
        if state.preemptions_seen == preemptions[0]:
            state.ticks_left -= CHECK_TICKS
        else:
            # Possibly an added epoch, not a tick: the wall-clock check below still holds.
            state.preemptions_seen = preemptions[0]
        interruption = state.interruption()
        if interruption is None and state.ticks_left <= 0:
            interruption = call_timeout(state.tenant, state.limits)
        slot: Slot | None = getattr(_current, "slot", None)
        # Blocks (the wasm paused) while other calls have their turn.
        if (
            interruption is None
            and slot is not None
            and not slot.yield_if_waited(_stopper(state), state.deadline)
        ):
            interruption = state.interruption()
        if interruption is not None:
            if state.pending is None:
                state.pending = interruption
            return native.new_error(interruption.message)
        delta[0] = CHECK_TICKS
        kind[0] = native.UPDATE_DEADLINE_CONTINUE
        return 0
    except BaseException as exc:  # pragma: no cover - nothing may escape into wasmtime
        if state is not None and state.pending is None:
            state.pending = exc
        return native.new_error(f"epoch check failed: {exc}")


#: One native callback for every store, kept for the process like the import callbacks.
EPOCH_CALLBACK: Any = native.EpochCallback(_on_epoch)


def _valtype(name: str) -> wasmtime.ValType:
    return wasmtime.ValType.i32() if name == "i32" else wasmtime.ValType.i64()


def define_import(
    linker: wasmtime.Linker,
    name: str,
    signature: tuple[tuple[str, ...], tuple[str, ...]],
    impl: Impl | None = None,
) -> None:
    """Define ``smcp.name`` in ``linker``: the ABI's own import, or ``impl`` under the same
    rules (host-call budget, deadline, errors recorded on the call's state)."""
    callback = _CALLBACKS.get(name) if impl is None else _EXTRA_CALLBACKS.get(name)
    if callback is None:
        if impl is None:
            raise KeyError(name)
        callback = _EXTRA_CALLBACKS.setdefault(name, _callback(name, impl))
    params, results = signature
    ty = wasmtime.FuncType([_valtype(p) for p in params], [_valtype(r) for r in results])
    native.define_host_func(linker, IMPORT_MODULE, name, ty, callback)


#: Callbacks of imports other kinds of module add (see :func:`define_import`), kept like
#: ``_CALLBACKS`` for the process.
_EXTRA_CALLBACKS: dict[str, Any] = {}


def make_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """A Linker defining exactly the ABI's imports, nothing else (no WASI)."""
    linker = wasmtime.Linker(engine)
    for name, (params, results) in HOST_IMPORTS.items():
        ty = wasmtime.FuncType([_valtype(p) for p in params], [_valtype(r) for r in results])
        native.define_host_func(linker, IMPORT_MODULE, name, ty, _CALLBACKS[name])
    return linker
