"""The value types of the sandbox: per-tenant limits, the outcome of a call, pool statistics."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from smcp_box.config import SandboxSettings, check_limit
from smcp_box.errors import ConfigError
from smcp_box.seams import MIB

WASM_PAGE = 65536
#: Tables one instance may define (C, Rust and Zig emit one for indirect calls). Structural,
#: not a tenant's limit: no module the box accepts needs more.
MAX_TABLES = 1
#: Elements of one table (8 bytes each).
MAX_TABLE_ELEMENTS = 100_000

#: The box defaults, the one source of every limit's default.
_DEFAULTS = SandboxSettings()


@dataclass(frozen=True)
class Limits:
    """What one tenant's module may use. Every limit applies per instance or per call.

    The field names, units and bounds are the tenant.toml ``[limits]`` keys
    (:data:`smcp_box.config.LIMITS`), so that every message can name the setting to raise; the
    defaults are the box's ``[sandbox]`` defaults.
    """

    #: Linear memory of one instance, in MiB. A ``memory.grow`` past it returns -1.
    memory_mib: int = _DEFAULTS.memory_mib
    #: Fuel (about one unit per wasm instruction) one call may burn. A trivial call costs ~40;
    #: 1e9 is a few hundred milliseconds to a second of straight-line compute.
    fuel: int = _DEFAULTS.fuel
    #: Wall-clock limit of one call in milliseconds, enforced by epoch interruption.
    timeout_ms: int = _DEFAULTS.timeout_ms
    #: Largest reply, and largest string a module may pass to a host import, in bytes.
    max_reply_bytes: int = _DEFAULTS.max_reply_bytes
    #: Largest message the box passes into the module, in bytes.
    max_message_bytes: int = _DEFAULTS.max_message_bytes
    #: Warm instances kept per tenant between calls.
    max_instances: int = _DEFAULTS.max_instances
    #: Instances made when the module loads, ready for the first calls (at most max_instances).
    warm_instances: int = _DEFAULTS.warm_instances
    #: Calls one tenant may run at once; more wait ``queue_timeout_ms``, then get TenantBusy.
    max_concurrent_calls: int = _DEFAULTS.max_concurrent_calls
    #: How long a call waits for one of the tenant's ``max_concurrent_calls`` slots, in ms.
    queue_timeout_ms: int = _DEFAULTS.queue_timeout_ms
    #: Host-import calls one call may make (log, kv, notify … together).
    max_host_calls: int = _DEFAULTS.max_host_calls

    def __post_init__(self) -> None:
        for item in fields(self):
            check_limit(item.name, getattr(self, item.name))
        if self.warm_instances > self.max_instances:
            raise ConfigError(
                f"warm_instances = {self.warm_instances} is more than max_instances = "
                f"{self.max_instances}: the pool keeps at most max_instances; lower "
                "[limits].warm_instances or raise [limits].max_instances"
            )

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> Limits:
        """The limits ``settings`` (a box's ``[sandbox]`` section) gives every tenant."""
        return cls(**{item.name: getattr(settings, item.name) for item in fields(cls)})

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000.0

    @property
    def queue_timeout_s(self) -> float:
        return self.queue_timeout_ms / 1000.0


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
    #: Inline attempts that ran out of the budget, or reached a kv, blob or sleep import, and
    #: were rerun in a worker.
    inline_fallbacks: int = 0
