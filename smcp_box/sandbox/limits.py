"""The value types of the sandbox: per-tenant limits, the outcome of a call, pool statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from smcp_box.errors import ConfigError
from smcp_box.seams import MIB

WASM_PAGE = 65536


@dataclass(frozen=True)
class Limits:
    """What one tenant's module may use. Every limit applies per instance or per call.

    The field names are the keys of a tenant.toml ``[limits]`` table, so that error messages can
    name the setting to raise.
    """

    #: Linear memory of one instance, in bytes. A ``memory.grow`` past it returns -1.
    memory_bytes: int = 128 * MIB
    #: Fuel (about one unit per wasm instruction) one call may burn. A trivial call costs ~40;
    #: 1e9 is a few hundred milliseconds to a second of straight-line compute.
    fuel: int = 1_000_000_000
    #: Wall-clock limit of one call, enforced by epoch interruption.
    timeout_s: float = 5.0
    #: Largest reply, and largest string a module may pass to a host import.
    max_reply_bytes: int = 4 * MIB
    #: Largest message the box passes into the module.
    max_message_bytes: int = 4 * MIB
    #: Warm instances kept per tenant between calls.
    max_instances: int = 4
    #: Calls one tenant may run at once; more wait ``queue_timeout_s``, then get TenantBusy.
    max_concurrent_calls: int = 4
    #: How long a call waits for one of the tenant's ``max_concurrent_calls`` slots.
    queue_timeout_s: float = 0.5
    #: Host-import calls one call may make (log, kv, notify … together).
    max_host_calls: int = 10_000
    #: Tables one instance may define (C, Rust and Zig emit one for indirect calls).
    max_tables: int = 1
    #: Elements of one table (8 bytes each).
    max_table_elements: int = 100_000

    def __post_init__(self) -> None:
        positive_ints = (
            "memory_bytes",
            "fuel",
            "max_reply_bytes",
            "max_message_bytes",
            "max_instances",
            "max_concurrent_calls",
            "max_host_calls",
            "max_tables",
            "max_table_elements",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"[limits].{name} must be a positive integer, not {value!r}")
        if self.memory_bytes < WASM_PAGE:
            raise ConfigError(f"[limits].memory_bytes must be at least one page ({WASM_PAGE})")
        for name in ("timeout_s", "queue_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"[limits].{name} must be a positive number, not {value!r}")


@dataclass(frozen=True)
class CallOutcome:
    """What one successful call produced and what it cost."""

    #: The reply text (valid UTF-8 and JSON), or "" when the module sent no reply.
    reply: str
    #: Fuel the call burned, including guest code run on behalf of host imports.
    fuel_used: int
    #: Wall-clock time of the call in the worker thread, excluding queueing.
    wall_s: float
    #: Linear-memory size of the instance when the call ended (memory never shrinks, so this is
    #: also the instance's peak).
    memory_bytes: int
    #: Host imports the module called.
    host_calls: int
    #: The reply parsed as JSON (None when there is no reply), so that callers need not parse it
    #: a second time.
    parsed: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one tenant's instance pool."""

    tenant: str
    module_sha256: str
    #: Idle instances ready for the next call.
    warm_instances: int
    #: Instances alive: warm ones plus those running a call.
    live_instances: int
    #: Calls running now.
    busy_calls: int
    #: Sum of the linear-memory sizes of the live instances, as of their last call.
    memory_bytes: int
    #: Calls finished, successful or not.
    calls: int
    #: Calls that failed; by error kind (``fuel``, ``timeout``, ``trap`` …) in ``errors_by_kind``.
    errors: int
    errors_by_kind: dict[str, int]
    #: Fuel burned by successful calls (a trapped call's fuel is not reported by wasmtime).
    fuel_used: int
    host_calls: int
    instances_created: int
    instances_discarded: int
    #: Calls turned away with TenantBusy.
    rejected_busy: int
    #: Calls answered inline on the event loop within the inline fuel budget.
    inline_calls: int = 0
    #: Inline attempts that ran out of the budget and were rerun in a worker.
    inline_fallbacks: int = 0
