"""Fair CPU scheduling across tenants: run slots, a fair queue, time slices, long-call priority.

Why: wasm runs without the GIL (every wasmtime call is a ctypes ``CDLL`` call), so each worker
thread running a call is a thread the kernel schedules on its own. One tenant at its
``max_concurrent_calls`` with spinning calls would otherwise put that many runnable threads
against every other tenant's calls and the event loop: on 2 cores, 8 spinning calls took ~8/9
of the processor and raised another tenant's p99 up to 20x.

How:

- **Run slots.** At most ``slots`` calls run wasm at once, box-wide (``[sandbox] cpu_slots``,
  default one per core), and one tenant holds at most ``tenant_cap`` of them (default all but
  one): another tenant's call then finds a slot free at once instead of waiting for a running
  call's next epoch check, which a long ``memory.grow`` or an instantiation can delay by tens
  of milliseconds. A call waits for its slot in its worker thread before it takes an instance,
  so instantiating counts too; a call waiting in a host import (kv) gives its slot up
  meanwhile (:func:`.host.leave_slot`).
- **A fair queue.** Waiting calls queue per tenant; a free slot goes to the waiting tenant
  served least recently, so a tenant with 8 waiting calls and one with 1 take turns, not 8:1,
  and a tenant whose long calls keep queueing again (slice after slice) goes behind every
  tenant that waits.
- **Time slices.** A running call meets its epoch callback every tick (``[sandbox] tick_ms``,
  10 ms by default). While other calls wait, it gives its slot to the next in turn and queues
  again (:meth:`Slot.yield_if_waited`), blocking in the callback, which pauses its wasm where it
  is. When a call of a tenant with no slot
  arrives and none is free, the scheduler ends the running slices now (``preempt``: an epoch
  increment, not counted against any call's timeout) instead of waiting out the tick.
- **Long-call priority.** A call running longer than ``demote_after_s`` runs at nice
  :data:`LONG_CALL_NICE` until it ends, so short calls and the event loop win a contended core;
  only where the priority can be set back (:func:`can_restore_priority`).

A call's own limits are unchanged: its wall-clock timeout keeps counting while it waits for a
slot, so a starved call still ends. Fuel per second was rejected: it would stop a long call
rather than share the processor, and charge a call for its neighbours' load.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

#: How long a queued call sleeps between looks at its cancel flags (it is woken at once when
#: granted a slot, and at its deadline; this only bounds how late it notices a cancellation).
#: Each look takes the GIL: with a tenant's calls queued at its cap, looks every 50 ms were
#: ~140 wake-ups a second competing with the event loop and other tenants' calls.
_WAIT_SLICE_S: Final = 0.25


def default_slots() -> int:
    """One per core."""
    return os.cpu_count() or 1


class Slot:
    """One call's claim on a run slot: held while its wasm runs, given up between slices."""

    __slots__ = (
        "_scheduler",
        "demoted",
        "event",
        "granted",
        "held",
        "slice_start",
        "started",
        "tenant",
    )

    def __init__(self, scheduler: FairScheduler, tenant: str) -> None:
        self._scheduler = scheduler
        self.tenant = tenant
        self.event = threading.Event()
        self.granted = False
        self.held = False
        self.slice_start = 0.0
        #: When the call first got a slot (0 before).
        self.started = 0.0
        #: The native id of the thread whose priority this call lowered, if it did.
        self.demoted: int | None = None

    def acquire(self, stop: Callable[[], bool], deadline: float | None = None) -> bool:
        """Wait for a slot; False (queued no more) once ``stop()`` says the call must end.
        ``deadline`` (``time.monotonic()``), when ``stop()`` includes one, is looked at on time
        rather than at the next look at the flags."""
        return self._scheduler.acquire(self, stop, fresh=True, deadline=deadline)

    def yield_if_waited(self, stop: Callable[[], bool], deadline: float | None = None) -> bool:
        """At a slice boundary: when others wait, give the slot to the next in turn and queue
        again. Returns False when ``stop()`` ended the wait (the call must then fail)."""
        scheduler = self._scheduler
        if (
            self.demoted is None
            and scheduler.demote_after_s is not None
            and time.monotonic() - self.started >= scheduler.demote_after_s
        ):
            self.demoted = lower_priority()
        if not self.held or not scheduler.has_waiters():
            return True
        if time.monotonic() - self.slice_start < scheduler.min_slice_s:
            return True
        scheduler.release(self, yielded=True)
        return scheduler.acquire(self, stop, fresh=False, deadline=deadline)

    def rejoin(self, stop: Callable[[], bool], deadline: float | None = None) -> bool:
        """Queue again for a slot given up (for a host import), behind the calls waiting."""
        return self._scheduler.acquire(self, stop, fresh=False, deadline=deadline)

    def release(self) -> None:
        """The call is over: give the slot back, and the thread its normal priority."""
        if self.held:
            self._scheduler.release(self)
        if self.demoted is not None:
            restore_priority(self.demoted)
            self.demoted = None


#: The nice value of a thread running a long call: the kernel then gives any normal thread
#: (the event loop, short calls) about ten times its share of a contended core.
LONG_CALL_NICE: Final = 10


def can_restore_priority() -> bool:
    """Whether this process may set a thread's nice value back to 0 after raising it: root,
    or an RLIMIT_NICE of at least 20 (systemd: ``LimitNICE=+0``). Without it a lowered
    thread would stay lowered for every later call, so priorities are left alone."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return soft == resource.RLIM_INFINITY or soft >= 20


def lower_priority() -> int | None:
    """Raise the calling thread's nice value to LONG_CALL_NICE; its native id, or None."""
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, LONG_CALL_NICE)
    except OSError:
        return None
    return thread


def restore_priority(thread: int) -> None:
    # Cannot fail where can_restore_priority() held, which is when anything is lowered.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, 0)


def _wait_for(deadline: float | None) -> float:
    """How long a queued call sleeps before its next look at its flags."""
    if deadline is None:
        return _WAIT_SLICE_S
    return max(0.001, min(_WAIT_SLICE_S, deadline - time.monotonic()))


class FairScheduler:
    """Run slots shared by every tenant, granted to the waiting tenant served least recently;
    no tenant holds more than ``tenant_cap`` of them.

    Thread-safe; used only from worker threads (the event loop never blocks on it).
    """

    def __init__(
        self,
        slots: int,
        *,
        tenant_cap: int | None = None,
        preempt: Callable[[], None] | None = None,
        min_slice_s: float = 0.0,
        demote_after_s: float | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError("a scheduler needs at least one run slot")
        self.slots = slots
        #: Slots one tenant may hold at once: all but one, so that a call of another tenant
        #: finds a slot free instead of waiting for a running call's next epoch check (which a
        #: long memory.grow or instantiation can delay by tens of milliseconds).
        self.tenant_cap = tenant_cap if tenant_cap is not None else max(1, slots - 1)
        #: Ends the running calls' current slices early (an epoch increment), or None.
        self._preempt = preempt
        #: A slice shorter than this is never cut (it bounds how often a call is switched).
        self.min_slice_s = min_slice_s
        #: A call running longer than this gets its thread's priority lowered until it ends
        #: (None: never; see :func:`can_restore_priority`).
        self.demote_after_s = demote_after_s
        self._lock = threading.Lock()
        self._running = 0
        #: Waiting slots per tenant, each queue in arrival order.
        self._queues: dict[str, deque[Slot]] = {}
        #: When each tenant was last granted a slot (the grant count then): the fair order.
        self._served: dict[str, int] = {}
        self._waiting = 0
        #: Slots granted, and slices cut short for another call: for the metrics.
        self.grants = 0
        self.yields = 0
        self.running_by_tenant: dict[str, int] = {}

    def slot(self, tenant: str) -> Slot:
        return Slot(self, tenant)

    def has_waiters(self) -> bool:
        # Read without the lock: a stale answer only delays or hastens one yield by a tick.
        return self._waiting > 0

    def acquire(
        self,
        slot: Slot,
        stop: Callable[[], bool],
        *,
        fresh: bool,
        deadline: float | None = None,
    ) -> bool:
        """Grant ``slot`` now or queue it; ``fresh`` for a call not yet started, which may cut
        the running slices short when its tenant has none of the slots (a requeued slice never
        does: that would make the running calls switch on every slice). A queued call looks
        at ``stop()`` every :data:`_WAIT_SLICE_S` and at ``deadline``."""
        with self._lock:
            slot.granted = False
            slot.event.clear()
            self._queues.setdefault(slot.tenant, deque()).append(slot)
            self._waiting += 1
            self._dispatch_locked()
            if slot.granted:
                return True
            must_preempt = fresh and slot.tenant not in self.running_by_tenant
        if must_preempt and self._preempt is not None:
            self._preempt()
        while not slot.event.wait(_wait_for(deadline)):
            if stop():
                with self._lock:
                    if slot.granted:
                        break  # granted meanwhile: take it, the caller stops at its next check
                    self._remove_locked(slot)
                return False
        return True

    def release(self, slot: Slot, *, yielded: bool = False) -> None:
        with self._lock:
            self.yields += yielded
            slot.held = False
            count = self.running_by_tenant.get(slot.tenant, 0) - 1
            if count > 0:
                self.running_by_tenant[slot.tenant] = count
            else:
                self.running_by_tenant.pop(slot.tenant, None)
                if slot.tenant not in self._queues:
                    # Idle now: forget it (a tenant returning idle goes first anyway).
                    self._served.pop(slot.tenant, None)
            self._running -= 1
            self._dispatch_locked()

    def _dispatch_locked(self) -> None:
        """Hand free slots to waiters: the tenant served least recently first, so a tenant
        whose calls keep queueing again (each slice of a long call) goes behind every tenant
        that has waited; never past a tenant's cap."""
        while self._running < self.slots and self._waiting:
            eligible = [
                name
                for name in self._queues
                if self.running_by_tenant.get(name, 0) < self.tenant_cap
            ]
            if not eligible:
                return
            tenant = min(eligible, key=lambda name: self._served.get(name, -1))
            queue = self._queues[tenant]
            waiter = queue.popleft()
            self._waiting -= 1
            if not queue:
                del self._queues[tenant]
            self._grant_locked(waiter)
            waiter.granted = True
            waiter.event.set()

    def _grant_locked(self, slot: Slot) -> None:
        self._running += 1
        self.grants += 1
        self._served[slot.tenant] = self.grants
        self.running_by_tenant[slot.tenant] = self.running_by_tenant.get(slot.tenant, 0) + 1
        slot.held = True
        slot.slice_start = time.monotonic()
        if not slot.started:
            slot.started = slot.slice_start

    def _remove_locked(self, slot: Slot) -> None:
        queue = self._queues.get(slot.tenant)
        if queue is not None and slot in queue:
            queue.remove(slot)
            self._waiting -= 1
            if not queue:
                del self._queues[slot.tenant]

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting
