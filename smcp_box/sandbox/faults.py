"""Turning what went wrong inside a module into the box's errors, with messages that say what to do.

Every error here names the tenant and, where a limit was hit, the ``[limits]`` key of its
tenant.toml to raise.
"""

from __future__ import annotations

import re

import wasmtime

from smcp_box.errors import (
    CallCancelled,
    CallTimeout,
    FuelExhausted,
    MemoryLimitExceeded,
    ModuleTrapped,
    SandboxError,
)
from smcp_box.seams import MIB

from .limits import Limits


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB"


def fuel_exhausted(tenant: str, limits: Limits) -> FuelExhausted:
    return FuelExhausted(
        f"tenant {tenant!r} used its fuel budget of {limits.fuel} units; raise [limits].fuel "
        "in tenant.toml or make the tool cheaper",
        data={"tenant": tenant, "limit": limits.fuel},
    )


def call_timeout(tenant: str, limits: Limits) -> CallTimeout:
    return CallTimeout(
        f"tenant {tenant!r}: the call did not finish within its wall-clock limit of "
        f"{limits.timeout_ms} ms; raise [limits].timeout_ms in tenant.toml or make the "
        "tool faster",
        data={"tenant": tenant, "limit_s": limits.timeout_s},
    )


def call_cancelled(tenant: str) -> CallCancelled:
    return CallCancelled(
        f"tenant {tenant!r}: the call was stopped because its client cancelled the request",
        data={"tenant": tenant},
    )


def sandbox_closing(tenant: str, limits: Limits) -> CallTimeout:
    return CallTimeout(
        f"tenant {tenant!r}: the call was stopped because the box is shutting down",
        data={"tenant": tenant, "limit_s": limits.timeout_s},
    )


def memory_exceeded(
    tenant: str, limits: Limits, memory_bytes: int, what: str
) -> MemoryLimitExceeded:
    return MemoryLimitExceeded(
        f"tenant {tenant!r}: {what} with its memory at {_mib(memory_bytes)} of its limit of "
        f"{_mib(limits.memory_bytes)}; raise [limits].memory_mib in tenant.toml or make the "
        "module use less memory",
        data={"tenant": tenant, "limit": limits.memory_bytes, "memory_bytes": memory_bytes},
    )


def near_memory_limit(limits: Limits, memory_bytes: int) -> bool:
    """Whether a failed ``memory.grow`` is the likely cause of a trap at this memory size.

    wasmtime's store limiter makes ``memory.grow`` return -1 without telling the host, and
    guests react in their own way (an allocator returns NULL, Rust aborts with ``unreachable``).
    A trap while the memory is within an eighth of the limit (at least 1 MiB) is taken as
    "ran out of memory"; a trap far below the limit, say after one huge allocation was refused,
    stays a ModuleTrapped whose message shows the memory size so the reader can tell.
    """
    margin = max(limits.memory_bytes // 8, MIB)
    return memory_bytes + margin > limits.memory_bytes


def trap_summary(message: str) -> str:
    """The cause of a wasmtime trap message, without the wasm backtrace.

    wasmtime formats a trap as a backtrace, then "Caused by:" and one or more numbered causes,
    the last of which reads "wasm trap: <what>".
    """
    _, found, causes = message.partition("Caused by:")
    if not found:
        lines = message.strip().splitlines()
        return lines[0] if lines else "unknown trap"
    trap = ""
    details = []
    for line in causes.strip().splitlines():
        line = re.sub(r"^\s*\d+:\s*", "", line).strip()
        if line.startswith("wasm trap:"):
            trap = line[len("wasm trap:") :].strip()
        elif line:
            details.append(line)
    if not trap:
        return "; ".join(details) or "unknown trap"
    return f"{trap} ({'; '.join(details)})" if details else trap


def classify_trap(
    tenant: str, limits: Limits, code: wasmtime.TrapCode | None, message: str, memory_bytes: int
) -> SandboxError:
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return fuel_exhausted(tenant, limits)
    if code == wasmtime.TrapCode.INTERRUPT:
        return call_timeout(tenant, limits)
    summary = trap_summary(message)
    data = {"tenant": tenant, "trap": code.name if code else None}
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return ModuleTrapped(
            f"tenant {tenant!r}: the module overflowed its stack (recursion too deep): {summary}",
            data=data,
        )
    if near_memory_limit(limits, memory_bytes):
        return memory_exceeded(tenant, limits, memory_bytes, f"the module trapped ({summary})")
    return ModuleTrapped(
        f"tenant {tenant!r}: the module trapped: {summary}; memory in use "
        f"{_mib(memory_bytes)} of {_mib(limits.memory_bytes)}",
        data=data,
    )
