"""Fair CPU scheduling: run slots granted round-robin across tenants, long calls time-sliced."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.errors import CallTimeout, ModuleTrapped
from smcp_box.sandbox import Limits, Sandbox
from smcp_box.sandbox.fair import LONG_CALL_NICE, FairScheduler, Slot, can_restore_priority
from tests.support.waiting import wait_until, wait_until_sync

from .support import HeldHost, RecordingHost, wasm

NORMAL = '{"jsonrpc":"2.0","id":1,"method":"ping"}'


@pytest.fixture
def one_slot(cache_dir: Path) -> Iterator[Sandbox]:
    box = Sandbox(cache_dir, cpu_slots=1)
    yield box
    box.close()


# --- the scheduler alone -------------------------------------------------------------------


class Waiter:
    """A thread asking ``scheduler`` for a slot of ``tenant``; ``granted`` once it has one."""

    def __init__(self, scheduler: FairScheduler, tenant: str, order: list[str]) -> None:
        self.slot: Slot = scheduler.slot(tenant)
        self.stop = threading.Event()
        self.result: bool | None = None
        self._order = order
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.slot.acquire(self.stop.is_set)
        if self.result:
            self._order.append(self.slot.tenant)


def test_free_slots_are_granted_at_once() -> None:
    scheduler = FairScheduler(2, tenant_cap=2)
    first, second = scheduler.slot("a"), scheduler.slot("a")
    assert first.acquire(lambda: False)
    assert second.acquire(lambda: False)
    assert (scheduler.running, scheduler.running_by_tenant) == (2, {"a": 2})
    first.release()
    second.release()
    assert (scheduler.running, scheduler.running_by_tenant) == (0, {})


def test_one_tenant_leaves_a_slot_for_the_others() -> None:
    scheduler = FairScheduler(3)  # by default a tenant may hold all slots but one
    assert scheduler.tenant_cap == 2
    held = [scheduler.slot("a") for _ in range(2)]
    assert all(slot.acquire(lambda: False) for slot in held)
    queued = Waiter(scheduler, "a", [])
    wait_until_sync(lambda: scheduler.waiting == 1, what="a's third call to queue")
    assert scheduler.running == 2  # a slot is free, but not for a
    other = scheduler.slot("b")
    assert other.acquire(lambda: False)  # b gets it at once
    held[0].release()
    wait_until_sync(lambda: queued.slot.held, what="a's third call to get the freed slot")
    for slot in (held[1], other, queued.slot):
        slot.release()
    assert scheduler.running == 0


def test_tenants_take_turns_whatever_their_queue_lengths() -> None:
    scheduler = FairScheduler(1)
    holder = scheduler.slot("a")
    assert holder.acquire(lambda: False)
    order: list[str] = []
    # Tenant a (running) queues three calls before tenant b queues one: b, served least
    # recently, still goes first; then a's calls in their order.
    waiters = []
    for queued, tenant in enumerate(("a", "a", "a", "b"), start=1):
        waiters.append(Waiter(scheduler, tenant, order))
        wait_until_sync(lambda n=queued: scheduler.waiting == n, what="the call to queue")
    running = holder
    for granted in range(1, 5):
        running.release()
        wait_until_sync(lambda n=granted: len(order) == n, what="the next grant")
        running = next(w.slot for w in waiters if w.slot.held)
    running.release()
    assert order == ["b", "a", "a", "a"]


def test_a_queued_call_leaves_the_queue_when_stopped() -> None:
    scheduler = FairScheduler(1)
    holder = scheduler.slot("a")
    assert holder.acquire(lambda: False)
    waiter = Waiter(scheduler, "b", [])
    wait_until_sync(lambda: scheduler.waiting == 1, what="the call to queue")
    waiter.stop.set()
    waiter.thread.join(timeout=10)
    assert waiter.result is False
    assert scheduler.waiting == 0
    holder.release()
    assert scheduler.running == 0


def test_a_slice_is_given_up_only_when_others_wait() -> None:
    scheduler = FairScheduler(1)
    holder = scheduler.slot("a")
    assert holder.acquire(lambda: False)
    assert holder.yield_if_waited(lambda: False)
    assert holder.held
    order: list[str] = []
    other = Waiter(scheduler, "b", order)
    wait_until_sync(lambda: scheduler.waiting == 1, what="the call to queue")
    # Yielding blocks this thread until b's slice ends: run it in a thread of its own.
    yielded = threading.Thread(target=holder.yield_if_waited, args=(lambda: False,))
    yielded.start()
    wait_until_sync(lambda: order == ["b"], what="b to get the slot")
    assert scheduler.yields == 1
    assert not holder.held
    other.slot.release()
    yielded.join(timeout=10)
    assert holder.held  # its turn again
    holder.release()


def test_a_queued_call_leaves_the_queue_once_stopped_at_its_deadline() -> None:
    scheduler = FairScheduler(1)
    holder = scheduler.slot("a")
    assert holder.acquire(lambda: False)
    waiter = scheduler.slot("b")
    looks: list[int] = []

    def stop() -> bool:
        # The call's own deadline check, as a wall-clock limit would say: past it once looked
        # at after queueing.
        looks.append(1)
        return len(looks) > 1

    # A deadline already past (monotonic time is never below 0): the wait looks at stop() then.
    assert not waiter.acquire(stop, 0.0)
    assert scheduler.waiting == 0
    holder.release()


def test_a_new_tenant_preempts_running_slices() -> None:
    preempted: list[int] = []
    scheduler = FairScheduler(1, preempt=lambda: preempted.append(1))
    holder = scheduler.slot("a")
    assert holder.acquire(lambda: False)
    Waiter(scheduler, "a", [])  # the same tenant: waits its turn, preempts nothing
    wait_until_sync(lambda: scheduler.waiting == 1, what="a's call to queue")
    assert preempted == []
    Waiter(scheduler, "b", [])
    wait_until_sync(lambda: scheduler.waiting == 2, what="b's call to queue")
    assert preempted == [1]


@pytest.mark.skipif(not can_restore_priority(), reason="may not set a nice value back to 0")
def test_a_long_call_runs_at_lower_priority_until_it_ends() -> None:
    scheduler = FairScheduler(1, demote_after_s=0.0)
    seen: list[int] = []

    def long_call() -> None:
        slot = scheduler.slot("a")
        assert slot.acquire(lambda: False)
        thread = threading.get_native_id()
        seen.append(os.getpriority(os.PRIO_PROCESS, thread))
        slot.yield_if_waited(lambda: False)  # an epoch check past demote_after_s
        seen.append(os.getpriority(os.PRIO_PROCESS, thread))
        slot.release()
        seen.append(os.getpriority(os.PRIO_PROCESS, thread))

    worker = threading.Thread(target=long_call)
    worker.start()
    worker.join(timeout=10)
    assert seen == [0, LONG_CALL_NICE, 0]


# --- in the sandbox ------------------------------------------------------------------------


async def test_spinning_tenant_at_its_cap_does_not_starve_another(one_slot: Sandbox) -> None:
    spinner = RecordingHost()
    limits = Limits(fuel=10**12, timeout_ms=60_000, max_concurrent_calls=4)
    spin = one_slot.load("spin", wasm("infinite_loop"), limits)
    healthy = one_slot.load("healthy", wasm("echo"), Limits())
    spinning = [asyncio.create_task(one_slot.call(spin, "[]", spinner)) for _ in range(4)]
    # One slot, four spinning calls: each gets its turn (each logs once it runs).
    await wait_until(lambda: len(spinner.logs) == 4, what="every spinning call to have run")
    for _ in range(3):
        assert (await one_slot.call(healthy, NORMAL, RecordingHost())).reply == NORMAL
    # Served while every spinning call still runs: their limit is a minute.
    assert not any(task.done() for task in spinning)
    assert one_slot.scheduler.yields > 0
    for task in spinning:
        task.cancel()
    await asyncio.gather(*spinning, return_exceptions=True)
    await wait_until(lambda: one_slot.scheduler.running == 0, what="the slots to come free")


async def test_a_call_waiting_on_a_host_import_holds_no_slot(one_slot: Sandbox) -> None:
    module = one_slot.load("held", wasm("host_imports"), Limits(max_concurrent_calls=2))
    held = HeldHost()
    calls = [asyncio.create_task(one_slot.call(module, held.HOLD, held)) for _ in range(2)]
    # Both calls reach the import that holds them, though there is one slot.
    await wait_until(lambda: len(held.logs) == 2, what="both calls to wait in the host")
    assert one_slot.scheduler.running == 0
    held.release.set()
    assert {outcome.reply for outcome in await asyncio.gather(*calls)} == {"null"}


async def test_preemptions_do_not_shorten_a_calls_time_limit(one_slot: Sandbox) -> None:
    spinner = RecordingHost()
    spin = one_slot.load("spin", wasm("infinite_loop"), Limits(fuel=10**12, timeout_ms=1_000))
    healthy = one_slot.load("healthy", wasm("echo"), Limits())
    spinning = asyncio.create_task(one_slot.call(spin, "[]", spinner))
    await wait_until(lambda: spinner.logs != [], what="the call to be spinning in wasm")
    # Each of these arrives with no slot free and preempts the spinning call's slice: an
    # epoch increment that must not count as one of its 101 ticks.
    calls = 0
    while not spinning.done() and calls < 60:
        await one_slot.call(healthy, NORMAL, RecordingHost())
        calls += 1
    with pytest.raises(CallTimeout):
        await spinning
    assert calls >= 30, "too few preemptions to tell"
    # 30 or more preemptions and the call still ran to its own limit (101 ticks): had they
    # counted as ticks, the healthy calls above would have ended it well before the 60th.


async def test_a_sleeping_call_holds_no_slot_and_ends_at_its_deadline(one_slot: Sandbox) -> None:
    sleeper = one_slot.load("sleepy", wasm("sleeper"), Limits(timeout_ms=1_500))
    healthy = one_slot.load("healthy", wasm("echo"), Limits())
    host = RecordingHost()
    sleeping = asyncio.create_task(one_slot.call(sleeper, "x" * 60, host))
    await wait_until(lambda: host.logs != [], what="the call to start sleeping")
    await wait_until(lambda: one_slot.scheduler.running == 0, what="the sleeper to leave its slot")
    # One slot, and the sleeper asked for a minute: the other tenant is served meanwhile.
    assert (await one_slot.call(healthy, NORMAL, RecordingHost())).reply == NORMAL
    assert not sleeping.done()
    # It asked for a minute; its wall clock (1.5 s) ends it.
    with pytest.raises(CallTimeout):
        await sleeping


async def test_a_sleeping_call_stops_when_cancelled(one_slot: Sandbox) -> None:
    sleeper = one_slot.load("sleepy", wasm("sleeper"), Limits(timeout_ms=60_000))
    host = RecordingHost()
    sleeping = asyncio.create_task(one_slot.call(sleeper, "x" * 50, host))
    await wait_until(lambda: host.logs != [], what="the call to start sleeping")
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    # Its 50 s sleep ends within a sleep slice (well inside wait_until's 10 s).
    await wait_until(
        lambda: one_slot.stats("sleepy").busy_calls == 0, what="the sleeping call to end"
    )


async def test_a_short_sleep_returns_and_a_negative_one_fails(one_slot: Sandbox) -> None:
    sleeper = one_slot.load("sleepy", wasm("sleeper"), Limits(timeout_ms=5_000))
    assert (await one_slot.call(sleeper, "[]", RecordingHost())).reply == "[]"  # 2 s
    with pytest.raises(ModuleTrapped, match="must not be negative"):
        await one_slot.call(sleeper, "-", RecordingHost())
