"""Per-tenant instance pools and the per-tenant concurrency gate.

A pool keeps up to ``max_instances`` idle instances warm; a call takes one (or instantiates a
fresh one when none is idle), and gives it back only if the call succeeded. The gate admits at
most ``max_concurrent_calls`` calls of the tenant at once, which also bounds how many instances
(and so how much memory) the tenant can have alive.

Both are shared by the event loop(s) that submit calls and the worker threads that run them,
so they use thread locks, never asyncio primitives bound to one loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from smcp_box.errors import FuelExhausted, SandboxError, TenantBusy

from .fair import FairScheduler, Slot
from .faults import call_cancelled, call_timeout, sandbox_closing
from .host import CancelToken, HostCalls, SpeculationAbandoned, bind_slot, bind_speculation
from .instance import deadline_ticks
from .limits import CallOutcome, Limits, PoolStats


@dataclass(frozen=True, eq=False)
class TenantModule:
    """A loaded module of one tenant: the handle callers pass to ``Sandbox.call``.

    Compared by identity: a handle stays tied to the pool it was loaded into, and after the
    tenant is reloaded or unloaded the old handle is refused.
    """

    tenant: str
    sha256: str
    limits: Limits
    #: True when the compiled code came from the on-disk cache (no compilation).
    cache_hit: bool
    #: Names of the ``smcp`` host functions the module imports (core ABI names, also for a
    #: component: ``kv-get`` is ``kv_get``).
    imports: frozenset[str] = frozenset()
    #: How the module is run, tenant.toml's ``kind``: "core" for an smcp-v1 core module,
    #: "component" for an ``smcp:box`` component, "stdio" for a WASI command.
    kind: str = "core"


class PooledInstance(Protocol):
    """What the pool needs of an instance: a core :class:`~.instance.Instance`, a
    :class:`~.component.ComponentInstance` or a :class:`~.stdio.StdioInstance`."""

    #: Memory as of the instance's last call (0 when unknown).
    memory_bytes: int

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
    ) -> CallOutcome: ...

    def close(self) -> None: ...


#: Makes one instance: (tenant, limits, deadline ticks) -> a live instance, or raises.
Spawn = Callable[[str, Limits, int], PooledInstance]


class _Waiter:
    __slots__ = ("granted", "wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.granted = False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Gate:
    """A FIFO counting semaphore usable from any event loop and from plain threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    def _try_take_locked(self) -> bool:
        # Newcomers queue behind waiters, so a steady stream cannot starve them.
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return True
        return False

    async def acquire(self, wait_s: float) -> bool:
        """Take a slot, waiting up to ``wait_s``; False when none came free in time."""
        with self._lock:
            if self._try_take_locked():
                return True
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                loop.call_soon_threadsafe(_resolve, future)

            waiter = _Waiter(wake)
            self._waiters.append(waiter)
        try:
            await asyncio.wait({future}, timeout=wait_s)
        except BaseException:
            self._abandon(waiter)
            raise
        return self._settle(waiter)

    def try_acquire(self) -> bool:
        """Take a slot only if one is free now."""
        with self._lock:
            return self._try_take_locked()

    def acquire_blocking(self, wait_s: float) -> bool:
        with self._lock:
            if self._try_take_locked():
                return True
            event = threading.Event()
            waiter = _Waiter(event.set)
            self._waiters.append(waiter)
        event.wait(wait_s)
        return self._settle(waiter)

    def _settle(self, waiter: _Waiter) -> bool:
        with self._lock:
            if waiter.granted:
                return True
            self._waiters.remove(waiter)
            return False

    def _abandon(self, waiter: _Waiter) -> None:
        """A cancelled waiter: pass on a slot it was granted meanwhile, else leave the queue."""
        with self._lock:
            if waiter.granted:
                self._release_locked()
            else:
                self._waiters.remove(waiter)

    def release(self) -> None:
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        # Hand the slot straight to the oldest waiter (in_use stays the same).
        while self._waiters:
            waiter = self._waiters.popleft()
            try:
                waiter.wake()
            except RuntimeError:
                continue  # its event loop is closed: nobody waits there any more
            waiter.granted = True
            return
        self.in_use -= 1


class InlineBackoff:
    """How many of a tenant's next inline attempts to skip: per kind of call (the caller names
    it: the tool), after an attempt of that kind was abandoned, and for the whole tenant after
    an attempt was heavy on the event loop. Not thread-safe: inline attempts run on the loop."""

    #: Kinds remembered at most: the names come from clients, so the table is bounded (when
    #: full it starts again, which costs each kind one more attempt).
    MAX_KINDS = 256

    __slots__ = ("_by_kind", "_tenant")

    def __init__(self) -> None:
        self._tenant = 0
        self._by_kind: dict[str, int] = {}

    def skip(self, kind: str) -> bool:
        """Whether to skip this attempt (counting it against the backoff)."""
        if self._tenant > 0:
            self._tenant -= 1
            return True
        left = self._by_kind.get(kind)
        if left is None:
            return False
        if left <= 1:
            del self._by_kind[kind]
        else:
            self._by_kind[kind] = left - 1
        return True

    def for_kind(self, kind: str, calls: int) -> None:
        if kind not in self._by_kind and len(self._by_kind) >= self.MAX_KINDS:
            self._by_kind.clear()
        self._by_kind[kind] = max(self._by_kind.get(kind, 0), calls)

    def tenant_wide(self, calls: int) -> None:
        self._tenant = max(self._tenant, calls)


class TenantPool:
    """The warm instances, gate and counters of one loaded module of one tenant."""

    def __init__(
        self,
        module: TenantModule,
        spawn: Spawn,
        tick_s: float,
        *,
        keepalive: object = None,
        shutdown: CancelToken | None = None,
        scheduler: FairScheduler | None = None,
    ) -> None:
        self.module = module
        #: Shares the processor between tenants (worker calls only; None: no run slots).
        self.scheduler = scheduler
        self.keepalive = keepalive
        #: Raised when the sandbox closes: every running call stops within a tick.
        self.shutdown = shutdown
        self.tenant = module.tenant
        self.limits = module.limits
        self.gate = Gate(module.limits.max_concurrent_calls)
        self._spawn = spawn
        self._tick_s = tick_s
        self._ticks = deadline_ticks(module.limits.timeout_s, tick_s)
        self._lock = threading.Lock()
        #: The limits of the last inline budget, kept: building a Limits checks every field,
        #: which cost more than the inline call it bounds (the budget rarely changes).
        self._inline_limits: Limits | None = None
        self._idle: list[PooledInstance] = []
        self._live: set[PooledInstance] = set()
        self._closed = False
        self._calls = 0
        self._errors: Counter[str] = Counter()
        self._fuel_used = 0
        self._host_calls = 0
        self._created = 0
        self._discarded = 0
        self._rejected_busy = 0
        #: Inline attempts to skip (used from the event loop only, like the attempts).
        self.inline_backoff = InlineBackoff()
        self._inline_calls = 0
        self._inline_fallbacks = 0

    # --- instances ---------------------------------------------------------------------------

    def _new_instance(self) -> PooledInstance:
        instance = self._spawn(self.tenant, self.limits, self._ticks)
        with self._lock:
            self._live.add(instance)
            self._created += 1
        return instance

    def _take(self) -> PooledInstance:
        with self._lock:
            if self._idle:
                return self._idle.pop()  # the most recently used: its pages are warmest
        return self._new_instance()

    def _give_back(self, instance: PooledInstance, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self.limits.max_instances:
                self._idle.append(instance)
                return
            self._live.discard(instance)
            self._discarded += 1
        instance.close()

    def prime(self) -> None:
        """Make one instance now, kept warm if the pool keeps any: raises what instantiating
        raises, so a module that cannot be instantiated fails where it is loaded."""
        self._give_back(self._new_instance(), healthy=True)

    def warm_up(self, count: int) -> int:
        """Instantiate until ``count`` (at most max_instances) instances are idle."""
        target = min(count, self.limits.max_instances)
        while True:
            with self._lock:
                if self._closed or len(self._idle) >= target:
                    return len(self._idle)
            instance = self._new_instance()
            self._give_back(instance, healthy=True)

    # --- calls -------------------------------------------------------------------------------

    def run(
        self,
        message: bytes,
        host: HostCalls,
        cancel: CancelToken | None = None,
        timeout_ms: int | None = None,
    ) -> CallOutcome:
        """One call, in the calling (worker) thread. The caller holds a gate slot; raising
        ``cancel`` from another thread stops the call within a tick (CallCancelled).
        ``timeout_ms`` replaces the module's wall-clock limit for this call (a task's longer
        one); fuel and memory stay the module's."""
        limits = self.limits
        if timeout_ms is not None:
            limits = replace(limits, timeout_ms=timeout_ms)
        outcome = self._run(message, host, limits, final=True, cancel=cancel)
        assert outcome is not None  # a final call raises instead of giving up
        return outcome

    def run_inline(self, message: bytes, host: HostCalls, fuel_budget: int) -> CallOutcome | None:
        """A speculative call in the calling thread (the event loop's) on a small fuel budget.

        Returns None when the budget ran out before the module answered: the caller then runs
        the message again in a worker with the tenant's full limits. That is only sound for
        modules whose host imports have no lasting effects (the caller checks), and whose
        notifications the caller buffers until the call is known to have finished. Any other
        failure is final, exactly as in ``run``: a module fails the same way on the same input.
        The caller holds a gate slot.
        """
        final = fuel_budget >= self.limits.fuel
        limits = self.limits if final else self._limits_for_budget(fuel_budget)
        return self._run(message, host, limits, final=final, inline=True)

    def _limits_for_budget(self, fuel_budget: int) -> Limits:
        limits = self._inline_limits
        if limits is None or limits.fuel != fuel_budget:
            limits = self._inline_limits = replace(self.limits, fuel=fuel_budget)
        return limits

    def _run(
        self,
        message: bytes,
        host: HostCalls,
        limits: Limits,
        *,
        final: bool,
        inline: bool = False,
        cancel: CancelToken | None = None,
    ) -> CallOutcome | None:
        # An inline call runs on the event loop within a small fuel budget: it takes no slot.
        slot = None if inline or self.scheduler is None else self._wait_for_slot(limits, cancel)
        bind_speculation(inline)
        try:
            return self._run_in_slot(message, host, limits, final, inline, cancel)
        finally:
            bind_speculation(False)
            if slot is not None:
                bind_slot(None)
                slot.release()

    def _wait_for_slot(self, limits: Limits, cancel: CancelToken | None) -> Slot:
        """A run slot for this call (see :mod:`.fair`), bound to this thread. Waiting ends with
        the call's errors: cancelled, the sandbox closing, or its timeout passed waiting."""
        assert self.scheduler is not None
        deadline = time.monotonic() + limits.timeout_s

        def stopped() -> bool:
            return (
                (cancel is not None and cancel.cancelled)
                or (self.shutdown is not None and self.shutdown.cancelled)
                or time.monotonic() > deadline
            )

        slot = self.scheduler.slot(self.tenant)
        if not slot.acquire(stopped, deadline):
            failure: SandboxError
            if cancel is not None and cancel.cancelled:
                failure = call_cancelled(self.tenant)
            elif self.shutdown is not None and self.shutdown.cancelled:
                failure = sandbox_closing(self.tenant, limits)
            else:
                failure = call_timeout(self.tenant, limits)
            self._count_failure(failure)
            raise failure
        bind_slot(slot)
        return slot

    def _run_in_slot(
        self,
        message: bytes,
        host: HostCalls,
        limits: Limits,
        final: bool,
        inline: bool,
        cancel: CancelToken | None,
    ) -> CallOutcome | None:
        try:
            instance = self._take()
        except SandboxError as exc:
            self._count_failure(exc)
            raise
        healthy = False
        try:
            ticks = (
                self._ticks
                if limits.timeout_ms == self.limits.timeout_ms
                else deadline_ticks(limits.timeout_s, self._tick_s)
            )
            outcome = instance.call(
                self.tenant,
                limits,
                ticks,
                message,
                host,
                cancel=cancel,
                shutdown=self.shutdown,
            )
            healthy = True
        except FuelExhausted as exc:
            if final:
                self._count_failure(exc)
                raise
            with self._lock:
                self._inline_fallbacks += 1
            return None
        except SpeculationAbandoned:
            # The attempt reached an import it may not make on the loop; the instance, stopped
            # mid-call, is discarded like any other that did not finish.
            with self._lock:
                self._inline_fallbacks += 1
            return None
        except SandboxError as exc:
            self._count_failure(exc)
            raise
        except BaseException:
            self._count_failure(None)
            raise
        finally:
            self._give_back(instance, healthy)
        with self._lock:
            self._calls += 1
            self._inline_calls += inline
            self._fuel_used += outcome.fuel_used
            self._host_calls += outcome.host_calls
        return outcome

    def _count_failure(self, exc: BaseException | None) -> None:
        with self._lock:
            self._calls += 1
            self._errors[exc.kind if isinstance(exc, SandboxError) else "internal"] += 1
            if isinstance(exc, FuelExhausted):
                self._fuel_used += self.limits.fuel

    def busy(self) -> TenantBusy:
        with self._lock:
            self._rejected_busy += 1
        return TenantBusy(
            f"tenant {self.tenant!r} is busy: {self.limits.max_concurrent_calls} calls are "
            f"already running and none finished within {self.limits.queue_timeout_ms} ms; retry "
            "shortly, or raise [limits].max_concurrent_calls or [limits].queue_timeout_ms in "
            "tenant.toml",
            data={"tenant": self.tenant, "limit": self.limits.max_concurrent_calls},
        )

    def close(self) -> None:
        """Drop the idle instances now; busy ones are dropped when their call ends."""
        with self._lock:
            self._closed = True
            victims, self._idle = self._idle, []
            for instance in victims:
                self._live.discard(instance)
                self._discarded += 1
        for instance in victims:
            instance.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                tenant=self.tenant,
                module_sha256=self.module.sha256,
                warm_instances=len(self._idle),
                live_instances=len(self._live),
                busy_calls=self.gate.in_use,
                # memory_bytes is updated by the thread that owns the instance, at the end of
                # each call; reading an int attribute is atomic, and reading the live memory of
                # a store another thread is running would not be.
                memory_bytes=sum(instance.memory_bytes for instance in self._live),
                calls=self._calls,
                errors=sum(self._errors.values()),
                errors_by_kind=dict(self._errors),
                fuel_used=self._fuel_used,
                host_calls=self._host_calls,
                instances_created=self._created,
                instances_discarded=self._discarded,
                rejected_busy=self._rejected_busy,
                inline_calls=self._inline_calls,
                inline_fallbacks=self._inline_fallbacks,
            )
