"""One module instance in its own Store, and one call on it.

Invariants:
- One Store per instance, so that discarding a broken instance frees everything it had and
  nothing of it can leak into the next call.
- An instance is used by one thread at a time (the pool hands it out exclusively).
- After any failure the instance is discarded by the caller: a trap can leave the guest's heap
  half-updated, and even a bad reply says the module is in a state we did not expect.
"""

from __future__ import annotations

import ctypes
import math
import time
from typing import Final, cast

import wasmtime

from smcp_box.errors import BadModuleReply, ModuleRejected, ModuleTrapped, ParseError, SandboxError
from smcp_box.protocol.jsonrpc import decode_json_text

from . import native
from .abi import EXPORT_ALLOC, EXPORT_HANDLE, EXPORT_MEMORY, U32_MASK, U64_MASK
from .faults import classify_trap, memory_exceeded
from .host import CHECK_TICKS, EPOCH_CALLBACK, CallState, CancelToken, HostCalls, bind
from .limits import MAX_TABLE_ELEMENTS, MAX_TABLES, CallOutcome, Limits

#: Memories at least this big give their pages back in steps before their store is dropped
#: (:func:`.native.release_pages`); smaller ones cost the unmap little.
RELEASE_PAGES_FROM: Final = 8 << 20


def deadline_ticks(timeout_s: float, tick_s: float) -> int:
    # The next tick may come right after the deadline is set, so one tick more than the
    # timeout guarantees the call at least its full timeout (and at most one tick more).
    return math.ceil(timeout_s / tick_s) + 1


class Instance:
    """A live instance with its exports resolved to raw handles for the unchecked call path."""

    __slots__ = (
        "alloc",
        "alloc_ref",
        "buf",
        "calls",
        "ctx",
        "exported",
        "fuel",
        "fuel_ref",
        "handle",
        "handle_ref",
        "instance",
        "mem_ref",
        "memory",
        "memory_bytes",
        "store",
        "trap",
        "trap_ref",
    )

    def __init__(
        self,
        engine: wasmtime.Engine,
        pre: wasmtime.InstancePre,
        tenant: str,
        limits: Limits,
        ticks: int,
    ) -> None:
        store = wasmtime.Store(engine)
        # memory_size bounds each memory, not their sum: allow exactly one memory and one
        # instance per store so that the per-memory limit is the instance's limit.
        store.set_limits(
            memory_size=limits.memory_bytes,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=1,
            tables=MAX_TABLES,
            memories=1,
        )
        self.store = store
        # Wall-clock limits and cancellation are checked by this callback on each tick the call
        # runs (host.CHECK_TICKS), instead of one trap at a far deadline: it is how a call is
        # stopped early from outside (see host.CancelToken).
        native.set_epoch_callback(store, EPOCH_CALLBACK)
        self.ctx = native.store_context(store)
        self.calls = 0
        self.memory_bytes = 0
        #: Whether ``memory`` refers to the instance's memory (it stays zeroed until then).
        self.exported = False
        self.instance = native.InstanceRef()
        self.memory = native.MemoryRef()
        self.alloc = native.FuncRef()
        self.handle = native.FuncRef()
        self.mem_ref = ctypes.byref(self.memory)
        self.alloc_ref = ctypes.byref(self.alloc)
        self.handle_ref = ctypes.byref(self.handle)
        self.buf = (native.ValRaw * 2)()
        self.trap = native.TrapPtr()
        self.trap_ref = ctypes.byref(self.trap)
        self.fuel = ctypes.c_uint64()
        self.fuel_ref = ctypes.byref(self.fuel)
        self._instantiate(pre, tenant, limits, ticks)

    def _instantiate(
        self, pre: wasmtime.InstancePre, tenant: str, limits: Limits, ticks: int
    ) -> None:
        # A start function runs here, under the same fuel and wall-clock limits as a call.
        state = CallState(
            tenant, limits, None, self.mem_ref, self.alloc_ref, host_deadline(limits), ticks=ticks
        )
        self._arm(limits)
        bind(state)
        try:
            error = native.instance_pre_instantiate(
                native.address(pre.ptr()), self.ctx, ctypes.byref(self.instance), self.trap_ref
            )
        finally:
            bind(None)
        if state.pending is not None or self.trap or error:
            failure: BaseException
            if error and not self.trap and state.pending is None:
                # An error without a trap is a link or resource-limit failure, e.g. a memory
                # or table whose minimum exceeds the tenant's limits: the module cannot run.
                failure = ModuleRejected(
                    f"tenant {tenant!r}: the module cannot be instantiated under its limits: "
                    f"{native.take_error(error)}",
                    data={"tenant": tenant},
                )
            else:
                failure = self._failure(state, error, memory_bytes=0)
            self.close()
            raise failure
        self._export(EXPORT_MEMORY, native.EXTERN_MEMORY, "memory", self.memory)
        self._export(EXPORT_ALLOC, native.EXTERN_FUNC, "func", self.alloc)
        self._export(EXPORT_HANDLE, native.EXTERN_FUNC, "func", self.handle)
        self.exported = True
        self.memory_bytes = native.memory_data_size(self.ctx, self.mem_ref)

    def _export(self, name: str, kind: int, field: str, target: ctypes.Structure) -> None:
        item = native.ExternRef()
        raw = name.encode()
        found = native.instance_export_get(
            self.ctx, ctypes.byref(self.instance), raw, len(raw), ctypes.byref(item)
        )
        # abi.check_module verified the exports at load time; this cannot fail for a module
        # that passed it.
        if not found or cast(int, item.kind) != kind:  # pragma: no cover
            raise ModuleRejected(f"the module instance lacks its {name!r} export")
        ctypes.memmove(
            ctypes.byref(target), ctypes.byref(getattr(item.of, field)), ctypes.sizeof(target)
        )

    def _arm(self, limits: Limits) -> None:
        error = native.set_fuel(self.ctx, limits.fuel)
        if error:  # pragma: no cover - only fails when the engine does not consume fuel
            raise RuntimeError(native.take_error(error))
        native.set_epoch_deadline(self.ctx, CHECK_TICKS)

    def _failure(
        self, state: CallState, error: int | None, memory_bytes: int
    ) -> SandboxError | BaseException:
        """The error to raise for a failed wasm entry; frees the native error and trap."""
        message = native.take_error(error) if error else ""
        trap = native.take_trap(self.trap) if self.trap else None
        if state.pending is not None:
            return state.pending
        if trap is not None:
            return classify_trap(
                state.tenant, state.limits, trap.trap_code, trap.message, memory_bytes
            )
        return ModuleTrapped(
            f"tenant {state.tenant!r}: the call failed: {message}", data={"tenant": state.tenant}
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
        """Run one message through ``smcp_handle``. Any exception means: discard this instance.

        ``ticks`` is the call's wall-clock limit in epoch ticks, :func:`deadline_ticks` of the
        timeout. Raising ``cancel`` (or ``shutdown``) from another thread stops the call within
        a tick: it fails with CallCancelled (CallTimeout).
        """
        started = time.perf_counter()
        ctx, buf, mem_ref = self.ctx, self.buf, self.mem_ref
        state = CallState(
            tenant,
            limits,
            host,
            mem_ref,
            self.alloc_ref,
            host_deadline(limits),
            ticks=ticks,
            cancel=cancel,
            shutdown=shutdown,
        )
        self._arm(limits)
        self.calls += 1
        bind(state)
        try:
            length = len(message)
            ptr = 0
            if length:
                buf[0].i32 = length
                error = native.func_call_unchecked(ctx, self.alloc_ref, buf, 2, self.trap_ref)
                if error or self.trap or state.pending is not None:
                    raise self._failure(state, error, self._memory_size())
                ptr = buf[0].i32 & U32_MASK
                size = native.memory_data_size(ctx, mem_ref)
                if ptr == 0:
                    raise memory_exceeded(
                        tenant, limits, size, f"smcp_alloc({length}) for the message returned 0"
                    )
                if ptr + length > size:
                    raise BadModuleReply(
                        f"tenant {tenant!r}: smcp_alloc returned a buffer out of bounds "
                        f"({ptr}+{length} past the {size}-byte memory)",
                        data={"tenant": tenant},
                    )
                ctypes.memmove(native.memory_data(ctx, mem_ref) + ptr, message, length)
            buf[0].i32 = ptr
            buf[1].i32 = length
            error = native.func_call_unchecked(ctx, self.handle_ref, buf, 2, self.trap_ref)
            if error or self.trap or state.pending is not None:
                raise self._failure(state, error, self._memory_size())
            packed = buf[0].i64 & U64_MASK
            self.memory_bytes = native.memory_data_size(ctx, mem_ref)
            reply, parsed = self._read_reply(tenant, limits, packed >> 32, packed & U32_MASK)
            native.get_fuel(ctx, self.fuel_ref)
        finally:
            bind(None)
        return CallOutcome(
            reply=reply,
            fuel_used=limits.fuel - self.fuel.value,
            wall_s=time.perf_counter() - started,
            memory_bytes=self.memory_bytes,
            host_calls=state.host_calls,
            parsed=parsed,
        )

    def _read_reply(self, tenant: str, limits: Limits, ptr: int, length: int) -> tuple[str, object]:
        if length == 0:
            return "", None
        data = {"tenant": tenant}
        if length > limits.max_reply_bytes:
            raise reply_too_large(tenant, limits, length)
        size = self.memory_bytes
        if ptr + length > size:
            raise BadModuleReply(
                f"tenant {tenant!r}: the reply pointer is out of bounds ({ptr}+{length} past the "
                f"{size}-byte memory)",
                data=data,
            )
        raw = ctypes.string_at(native.memory_data(self.ctx, self.mem_ref) + ptr, length)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadModuleReply(
                f"tenant {tenant!r}: the reply is not valid UTF-8", data=data
            ) from None
        return text, parse_reply(tenant, text)

    def _memory_size(self) -> int:
        # Also kept for the pool's statistics: memory never shrinks, so this is the peak.
        self.memory_bytes = int(native.memory_data_size(self.ctx, self.mem_ref))
        return self.memory_bytes

    def close(self) -> None:
        if self.exported:
            # Once only: the memory handle means nothing after the store is gone.
            self.exported = False
            size = int(native.memory_data_size(self.ctx, self.mem_ref))
            base = native.memory_data(self.ctx, self.mem_ref)
            if base and size >= RELEASE_PAGES_FROM:
                native.release_pages(base, size)
        self.store.close()


def parse_reply(tenant: str, text: str) -> object:
    """The reply parsed with the protocol's strict JSON rules (core modules and components)."""
    try:
        # A lone surrogate or NaN in a reply would otherwise fail later, wherever the reply is
        # encoded again.
        return decode_json_text(text)
    except ParseError as exc:
        raise BadModuleReply(
            f"tenant {tenant!r}: the reply is not valid JSON ({exc.message})",
            data={"tenant": tenant},
        ) from None


def reply_too_large(tenant: str, limits: Limits, length: int) -> BadModuleReply:
    return BadModuleReply(
        f"tenant {tenant!r}: the reply is {length} bytes, over [limits].max_reply_bytes "
        f"({limits.max_reply_bytes}); raise it in tenant.toml or send less",
        data={"tenant": tenant, "quota": "max_reply_bytes"},
    )


def host_deadline(limits: Limits) -> float:
    return time.monotonic() + limits.timeout_s
