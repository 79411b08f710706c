"""Speculative inline calls: short calls answer on the calling thread within a fuel budget;
long ones, and ones that reach a kv, blob or sleep import, are abandoned (None) for a worker
rerun, and calls of that kind back off for a while."""

from __future__ import annotations

import pytest

from smcp_box.errors import FuelExhausted, MemoryLimitExceeded, ModuleTrapped
from smcp_box.sandbox import Limits, Sandbox, inline_eligible
from smcp_box.sandbox.pool import InlineBackoff
from smcp_box.sandbox.sandbox import INLINE_BACKOFF_CALLS, INLINE_HEAVY_BACKOFF_CALLS

from .support import RecordingHost, wasm

MESSAGE = '{"jsonrpc":"2.0","id":1,"method":"tools/call"}'


def test_short_call_answers_inline(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("echo", wasm("echo"), Limits())
    assert inline_eligible(module)
    outcome = sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000_000)
    assert outcome is not None
    assert outcome.reply == MESSAGE
    assert 0 < outcome.fuel_used < 1_000_000
    stats = sandbox.stats("echo")
    assert (stats.inline_calls, stats.inline_fallbacks, stats.calls) == (1, 0, 1)


async def test_long_call_is_abandoned_then_backs_off(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("slow", wasm("slow_echo"), Limits())
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=100_000) is None
    stats = sandbox.stats("slow")
    assert (stats.inline_fallbacks, stats.calls, stats.errors) == (1, 0, 0)
    # The rerun in a worker with the full limits answers normally.
    assert (await sandbox.call(module, MESSAGE, host)).reply == MESSAGE
    # The tenant now skips its inline attempts for a while, without spending any fuel on them.
    for _ in range(INLINE_BACKOFF_CALLS):
        assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=100_000) is None
    assert sandbox.stats("slow").inline_fallbacks == 1
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=100_000) is None
    assert sandbox.stats("slow").inline_fallbacks == 2


def test_budget_at_the_limit_makes_exhaustion_final(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("slow", wasm("slow_echo"), Limits(fuel=50_000))
    with pytest.raises(FuelExhausted):
        sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000_000)
    assert sandbox.stats("slow").errors_by_kind == {"fuel": 1}


def test_traps_inline_are_final(sandbox: Sandbox, host: RecordingHost) -> None:
    module = sandbox.load("trap", wasm("unreachable"), Limits())
    with pytest.raises(ModuleTrapped):
        sandbox.call_inline(module, "[]", host, fuel_budget=1_000_000)  # "[" makes it trap
    assert sandbox.stats("trap").errors == 1


def test_a_kv_importing_module_answers_inline_until_it_reaches_kv(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    module = sandbox.load("kv", wasm("host_imports"), Limits())
    assert "kv_set" in module.imports
    assert inline_eligible(module)
    # "{...}" is echoed without touching kv: answered inline.
    outcome = sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000_000, kind="echo")
    assert outcome is not None
    assert outcome.reply == MESSAGE
    # "2" sets k1 then reads it: the attempt stops at kv_set, before it does anything.
    assert sandbox.call_inline(module, "2", host, fuel_budget=1_000_000, kind="write") is None
    assert host.kv == {}
    stats = sandbox.stats("kv")
    assert (stats.inline_calls, stats.inline_fallbacks, stats.calls, stats.errors) == (1, 1, 1, 0)


async def test_the_rerun_of_an_abandoned_kv_call_writes_once(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    module = sandbox.load("kv", wasm("host_imports"), Limits())
    assert sandbox.call_inline(module, "2", host, fuel_budget=1_000_000, kind="write") is None
    assert host.kv == {}  # the attempt stopped before kv_set
    outcome = await sandbox.call(module, "2", host)
    assert outcome.reply == '"v1"'
    assert outcome.host_calls == 2  # kv_set and kv_get, in the worker's run
    assert host.kv == {"k1": '"v1"'}


def test_backoff_is_per_kind_of_call(sandbox: Sandbox, host: RecordingHost) -> None:
    """A tool that writes kv goes to workers for a while; the tenant's other tools still answer
    inline meanwhile."""
    module = sandbox.load("kv", wasm("host_imports"), Limits())
    assert sandbox.call_inline(module, "2", host, fuel_budget=1_000_000, kind="write") is None
    for _ in range(INLINE_BACKOFF_CALLS):
        assert sandbox.call_inline(module, "2", host, fuel_budget=1_000_000, kind="write") is None
        echoed = sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000_000, kind="echo")
        assert echoed is not None
    stats = sandbox.stats("kv")
    # The skipped attempts of "write" ran no wasm: one fallback, every echo inline.
    assert (stats.inline_fallbacks, stats.inline_calls) == (1, INLINE_BACKOFF_CALLS)
    assert sandbox.call_inline(module, "2", host, fuel_budget=1_000_000, kind="write") is None
    assert sandbox.stats("kv").inline_fallbacks == 2


def test_the_kinds_remembered_are_bounded() -> None:
    backoff = InlineBackoff()
    for number in range(InlineBackoff.MAX_KINDS):
        backoff.for_kind(f"tool-{number}", 3)
    assert backoff.skip("tool-0")
    backoff.for_kind("one-more", 3)  # the table was full: it starts again
    assert not backoff.skip("tool-1")
    assert backoff.skip("one-more")


def test_a_sleep_is_never_made_on_the_loop(sandbox: Sandbox, host: RecordingHost) -> None:
    """Regression: sleep_ms waits in the host, and inline that wait was the event loop's: a
    module's call of a 2-second sleep held the loop, and every tenant's requests, for 2 s. The
    attempt now stops at the import (a 60-byte message asks for a minute's sleep: had it slept,
    this test would take a minute)."""
    module = sandbox.load("sleepy", wasm("sleeper"), Limits())
    assert module.imports == {"log", "sleep_ms"}
    assert sandbox.call_inline(module, "x" * 60, host, fuel_budget=1_000_000) is None
    stats = sandbox.stats("sleepy")
    assert (stats.inline_fallbacks, stats.calls, stats.errors) == (1, 0, 0)


def test_each_call_gets_its_own_budget(sandbox: Sandbox, host: RecordingHost) -> None:
    # The pool keeps the limits of the last budget; a different budget must not reuse them.
    # (Tens of thousands of fuel units: light enough never to count as a heavy attempt.)
    module = sandbox.load("echo", wasm("counted_echo"), Limits())
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000_000) is not None
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000_000) is not None
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=1_000) is None
    assert sandbox.stats("echo").inline_fallbacks == 1


def test_an_attempt_heavy_on_the_loop_turns_inline_off_for_long(
    sandbox: Sandbox, host: RecordingHost
) -> None:
    """Fuel bounds computation, not page faults: a module that grows and touches its memory
    inline costs the event loop milliseconds of kernel time for a few thousand fuel units.
    Such an attempt, whatever its outcome, turns the tenant's inline attempts off for
    INLINE_HEAVY_BACKOFF_CALLS calls (measured as the loop thread's CPU, so a preempted
    attempt does not count)."""
    module = sandbox.load("toucher", wasm("page_toucher"), Limits(memory_mib=64))
    assert inline_eligible(module)
    # A plain echo is light: answered inline, no long backoff.
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=10**9) is not None
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=10**9) is not None
    # 64 MiB faulted in and zeroed inline: far past INLINE_HEAVY_CPU_S of CPU on any machine.
    with pytest.raises(MemoryLimitExceeded):
        sandbox.call_inline(module, "[1]", host, fuel_budget=10**9)
    calls = sandbox.stats("toucher").inline_calls
    for _ in range(INLINE_HEAVY_BACKOFF_CALLS):
        assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=10**9) is None
    assert sandbox.stats("toucher").inline_calls == calls  # none of them ran wasm
    assert sandbox.call_inline(module, MESSAGE, host, fuel_budget=10**9) is not None
