"""Instance pools: reuse, warm-up, their caps, reloads, and the sandbox's lifecycle."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import wasmtime

from smcp_box.errors import CallTimeout, ConfigError, ModuleRejected, TenantBusy
from smcp_box.sandbox import Limits, Sandbox
from tests.support.waiting import wait_until

from .support import FIXTURES, HeldHost, RecordingHost, wasm

MESSAGE = '{"jsonrpc":"2.0","id":1,"method":"ping"}'


def component_echo() -> bytes:
    return bytes(wasmtime.wat2wasm((FIXTURES / "component_echo.wat").read_text()))


async def test_instances_are_reused(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    outcomes = [await sandbox.call(module, MESSAGE, host) for _ in range(5)]
    stats = sandbox.stats("echo")
    assert (stats.calls, stats.instances_created, stats.warm_instances) == (5, 1, 1)
    assert stats.fuel_used == sum(outcome.fuel_used for outcome in outcomes)


async def test_warm_up_and_memory_stats(sandbox: Sandbox) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits(max_instances=3))
    assert await sandbox.warm_up(module) == 3
    assert await sandbox.warm_up(module, 10) == 3  # never beyond max_instances
    stats = sandbox.stats("echo")
    assert (stats.warm_instances, stats.live_instances, stats.instances_created) == (3, 3, 3)
    assert stats.memory_bytes == 3 * 65536


@pytest.mark.parametrize("kind", ["core", "component"])
async def test_warm_instances_are_made_at_load(
    sandbox: Sandbox, host: RecordingHost, kind: str
) -> None:
    module_bytes = wasm("echo") if kind == "core" else component_echo()
    limits = Limits(max_instances=3, warm_instances=2)
    module = sandbox.load("warm", module_bytes, limits, kind=kind)
    stats = sandbox.stats("warm")
    assert (stats.warm_instances, stats.instances_created) == (2, 2)
    await asyncio.gather(*(sandbox.call(module, MESSAGE, host) for _ in range(2)))
    assert sandbox.stats("warm").instances_created == 2  # the calls found them warm


def test_warm_instances_never_exceed_max_instances() -> None:
    with pytest.raises(ConfigError, match=r"warm_instances = 5 is more than max_instances = 4"):
        Limits(max_instances=4, warm_instances=5)


def queued_calls(sandbox: Sandbox, tenant: str) -> int:
    """Calls waiting for a slot of the tenant's gate (not in PoolStats; read for the tests)."""
    return len(sandbox._pools[tenant].gate._waiters)


async def test_pool_keeps_at_most_max_instances(sandbox: Sandbox) -> None:
    module = sandbox.load(
        "slow", wasm("host_imports"), Limits(max_instances=2, max_concurrent_calls=4)
    )
    held = HeldHost()
    calls = [asyncio.create_task(sandbox.call(module, held.HOLD, held)) for _ in range(4)]
    await wait_until(lambda: len(held.logs) == 4, what="four calls running at once")
    held.release.set()
    replies = await asyncio.gather(*calls)
    assert {r.reply for r in replies} == {"null"}
    stats = sandbox.stats("slow")
    assert (stats.instances_created, stats.warm_instances, stats.instances_discarded) == (4, 2, 2)
    assert stats.live_instances == 2


async def test_concurrency_cap_turns_calls_away(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load(
        "slow", wasm("host_imports"), Limits(max_concurrent_calls=1, queue_timeout_ms=1)
    )
    held = HeldHost()
    first = asyncio.create_task(sandbox.call(module, held.HOLD, held))
    await wait_until(lambda: held.logs != [], what="the first call to hold the one slot")
    with pytest.raises(TenantBusy, match=r"max_concurrent_calls"):
        await sandbox.call(module, MESSAGE, host)
    held.release.set()
    assert (await first).reply == "null"
    stats = sandbox.stats("slow")
    assert (stats.rejected_busy, stats.busy_calls) == (1, 0)


async def test_calls_queue_for_a_slot(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load(
        "slow", wasm("slow_echo"), Limits(max_concurrent_calls=1, queue_timeout_ms=10_000)
    )
    replies = await asyncio.gather(*(sandbox.call(module, MESSAGE, host) for _ in range(3)))
    assert len(replies) == 3
    assert sandbox.stats("slow").instances_created == 1  # one at a time, one instance


async def test_cancelled_waiter_does_not_leak_its_slot(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    module = sandbox.load(
        "slow", wasm("host_imports"), Limits(max_concurrent_calls=1, queue_timeout_ms=10000)
    )
    held = HeldHost()
    running = asyncio.create_task(sandbox.call(module, held.HOLD, held))
    await wait_until(lambda: held.logs != [], what="the first call to hold the one slot")
    waiting = asyncio.create_task(sandbox.call(module, MESSAGE, host))
    await wait_until(lambda: queued_calls(sandbox, "slow") == 1, what="the second call to queue")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert queued_calls(sandbox, "slow") == 0
    held.release.set()
    await running
    assert sandbox.stats("slow").busy_calls == 0
    assert (await sandbox.call(module, MESSAGE, host)).reply == MESSAGE


async def test_cancelled_caller_stops_the_call(sandbox: Sandbox, host: RecordingHost) -> None:
    # A call that would spin for a minute: cancelling its caller stops the wasm (at its next
    # epoch check), frees its slot, and discards its instance (it stopped mid-way, like after a
    # trap). Only cancellation can end it before the test's deadline: its own limit is 60 s.
    module = sandbox.load("spin", wasm("infinite_loop"), Limits(fuel=10**12, timeout_ms=60000))
    task = asyncio.create_task(sandbox.call(module, "[]", host))
    await wait_until(lambda: host.logs != [], what="the call to be spinning in wasm")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(
        lambda: sandbox.stats("spin").busy_calls == 0,
        what="the cancelled call to stop and free its slot",
    )
    stats = sandbox.stats("spin")
    assert (stats.busy_calls, stats.calls, stats.warm_instances) == (0, 1, 0)
    assert stats.errors_by_kind == {"cancelled": 1}
    assert stats.instances_discarded == 1
    # The tenant's next call gets a fresh instance.
    spin_echo = sandbox.load("spin", wasm("infinite_loop"), Limits(fuel=10**12, timeout_ms=60_000))
    assert (await sandbox.call(spin_echo, MESSAGE, host)).reply == MESSAGE


def test_thread_safe_sync_calls(sandbox: Sandbox) -> None:
    modules = [sandbox.load(f"t{i}", wasm("echo"), Limits()) for i in range(3)]
    failures: list[BaseException] = []

    def hammer(index: int) -> None:
        try:
            for n in range(300):
                message = f'{{"n":{n},"thread":{index}}}'
                assert (
                    sandbox.call_sync(modules[index % 3], message, RecordingHost()).reply == message
                )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(sandbox.stats(f"t{i}").calls for i in range(3)) == 1800


# --- reloading -------------------------------------------------------------------------------


async def test_reload_same_module_keeps_the_pool(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    await sandbox.warm_up(module, 2)
    assert sandbox.load("echo", wasm("echo"), Limits()) is module
    assert sandbox.stats("echo").warm_instances == 2


async def test_reload_replaces_the_pool(sandbox: Sandbox, host: RecordingHost) -> None:
    old = sandbox.load("tenant", wasm("host_imports"), Limits())
    held = HeldHost()
    in_flight = asyncio.create_task(sandbox.call(old, held.HOLD, held))
    await wait_until(lambda: held.logs != [], what="the call on the old module to be running")
    new = sandbox.load("tenant", wasm("echo"), Limits())
    assert new.sha256 != old.sha256
    held.release.set()
    assert (await in_flight).reply == "null"  # the old call finishes on the old module
    with pytest.raises(ModuleRejected, match="no longer loaded"):
        await sandbox.call(old, MESSAGE, host)
    assert (await sandbox.call(new, MESSAGE, host)).reply == MESSAGE
    stats = sandbox.stats("tenant")
    assert (stats.module_sha256, stats.calls) == (new.sha256, 1)


async def test_new_limits_make_a_new_pool(sandbox: Sandbox, host: RecordingHost) -> None:
    old = sandbox.load("echo", wasm("echo"), Limits())
    new = sandbox.load("echo", wasm("echo"), Limits(fuel=10_000))
    assert new is not old
    assert new.limits.fuel == 10_000
    assert (await sandbox.call(new, MESSAGE, host)).reply == MESSAGE


async def test_unload(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    assert sandbox.unload("echo")
    assert not sandbox.unload("echo")
    assert sandbox.tenants() == []
    with pytest.raises(KeyError):
        sandbox.stats("echo")
    with pytest.raises(ModuleRejected):
        await sandbox.call(module, MESSAGE, host)


# --- lifecycle -------------------------------------------------------------------------------


async def test_ticker(sandbox: Sandbox) -> None:
    assert sandbox.ticker_alive()
    first = sandbox.last_tick
    await wait_until(lambda: sandbox.last_tick > first, what="the epoch ticker to tick")
    sandbox.close()
    assert not sandbox.ticker_alive()


async def test_close_interrupts_running_calls(cache_dir: Path, host: RecordingHost) -> None:
    box = Sandbox(cache_dir)
    module = box.load("spin", wasm("infinite_loop"), Limits(fuel=10**12, timeout_ms=60_000))
    running = asyncio.create_task(box.call(module, "[]", host))
    await wait_until(lambda: host.logs != [], what="the call to be spinning in wasm")
    # close waits for the workers: it returns only once the 60-second call was interrupted.
    await asyncio.wait_for(asyncio.to_thread(box.close), 30)
    with pytest.raises(CallTimeout):
        await running
    with pytest.raises(ModuleRejected, match="shut down"):
        box.load("echo", wasm("echo"), Limits())
    box.close()  # idempotent
