"""Every way a module can misbehave: a clear error within its limit, the instance discarded,
the tenant's next call served by a fresh instance, and other tenants unaffected meanwhile."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from smcp_box.errors import (
    BadModuleReply,
    BoxError,
    CallTimeout,
    FuelExhausted,
    MemoryLimitExceeded,
    ModuleTrapped,
)
from smcp_box.sandbox import Limits, Sandbox
from tests.support.waiting import wait_until

from .support import RecordingHost, wasm

MIB = 1024 * 1024
NORMAL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


@dataclass(frozen=True)
class Fault:
    fixture: str
    message: str
    error: type[BoxError]
    match: str
    limits: Limits = field(default_factory=Limits)


FAULTS = {
    "fuel": Fault(
        "infinite_loop",
        "[]",
        FuelExhausted,
        r"tenant 'faulty' used its fuel budget of 500000000 units; raise \[limits\].fuel",
        Limits(fuel=500_000_000),
    ),
    "timeout": Fault(
        "infinite_loop",
        "[]",
        CallTimeout,
        r"did not finish within its wall-clock limit of 500 ms; raise \[limits\].timeout_ms",
        Limits(fuel=10**12, timeout_ms=500),
    ),
    "memory-trap": Fault(
        "memory_bomb",
        "[]",
        MemoryLimitExceeded,
        r"limit of 16.0 MiB; raise \[limits\].memory_mib",
        Limits(memory_mib=16),
    ),
    "memory-alloc-0": Fault(
        "memory_bomb",
        '"kv"',
        MemoryLimitExceeded,
        r"smcp_alloc\(43\) for kv_get returned 0 with its memory at 16.0 MiB of its limit of 16.0",
        Limits(memory_mib=16),
    ),
    "unreachable": Fault("unreachable", "[]", ModuleTrapped, r"trapped: wasm `unreachable`"),
    "stack-overflow": Fault("stack_overflow", "[]", ModuleTrapped, r"overflowed its stack"),
    "load-in-guard-region": Fault(
        "out_of_bounds", "[1]", ModuleTrapped, r"trapped: out of bounds memory access"
    ),
    "load-far-out-of-bounds": Fault(
        "out_of_bounds", "[2]", ModuleTrapped, r"trapped: out of bounds memory access"
    ),
    "huge-reply": Fault(
        "huge_reply",
        "[]",
        BadModuleReply,
        r"reply is 16777216 bytes, over \[limits\].max_reply_bytes \(4194304\)",
    ),
    "reply-out-of-bounds": Fault(
        "reply_out_of_bounds", "[]", BadModuleReply, r"reply pointer is out of bounds"
    ),
    "reply-invalid-utf8": Fault(
        "invalid_utf8_reply", "[]", BadModuleReply, r"reply is not valid UTF-8"
    ),
    "reply-invalid-json": Fault(
        "invalid_json_reply", "[]", BadModuleReply, r"reply is not valid JSON"
    ),
    "alloc-out-of-bounds": Fault(
        "bad_alloc", "[]", BadModuleReply, r"smcp_alloc returned a buffer out of bounds"
    ),
    "alloc-0": Fault(
        "bad_alloc", "[1]", MemoryLimitExceeded, r"smcp_alloc\(3\) for the message returned 0"
    ),
}

_IMPORTS = ("log", "config_get", "kv_get", "kv_set", "kv_delete", "kv_list", "notify")
for _digit, _name in enumerate(_IMPORTS):
    FAULTS[f"{_name}-pointer-out-of-bounds"] = Fault(
        "bad_pointers", str(_digit), ModuleTrapped, rf"'faulty': {_name}: pointer out of bounds"
    )
FAULTS["kv_get-length-wraps"] = Fault(
    "bad_pointers", "7", BadModuleReply, r"kv_get: the key is 4294967295 bytes, over"
)
FAULTS["kv_get-key-not-utf8"] = Fault(
    "bad_pointers", "8", BadModuleReply, r"kv_get: the key is not valid UTF-8"
)
FAULTS["log-message-not-utf8"] = Fault(
    "bad_pointers", "9", BadModuleReply, r"log: the message is not valid UTF-8"
)
FAULTS["kv_cas-expected-out-of-bounds"] = Fault(
    "atomics_pointers", "0", ModuleTrapped, r"'faulty': kv_cas: pointer out of bounds"
)
FAULTS["kv_incr-result-out-of-bounds"] = Fault(
    "atomics_pointers", "1", BadModuleReply, r"kv_incr: the result buffer at 131068 with length 8"
)
FAULTS["random_bytes-buffer-out-of-bounds"] = Fault(
    "atomics_pointers", "2", BadModuleReply, r"random_bytes: the buffer at 4294901760"
)
FAULTS["random_bytes-over-64-kib"] = Fault(
    "atomics_pointers", "3", BadModuleReply, r"random_bytes: asked for 65537 bytes; one call"
)
FAULTS["notify-not-json"] = Fault(
    "host_imports", "x", BadModuleReply, r"notify: the notification is not valid JSON"
)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_fault(sandbox: Sandbox, fault: Fault) -> None:
    host = RecordingHost()
    host.kv["key"] = '"a value the module has no memory left for"'
    faulty = sandbox.load("faulty", wasm(fault.fixture), fault.limits)
    healthy = sandbox.load("healthy", wasm("echo"), Limits())
    # One warm instance, so that we can see the faulty call's instance go.
    assert (await sandbox.call(faulty, NORMAL, host)).reply == NORMAL
    assert sandbox.stats("faulty").warm_instances == 1

    failing = asyncio.create_task(sandbox.call(faulty, fault.message, host))
    # Another tenant is served while the faulty call runs (or right after it failed); that it is
    # served while one spins is test_other_tenants_are_served_while_one_spins.
    assert (await sandbox.call(healthy, NORMAL, RecordingHost())).reply == NORMAL
    with pytest.raises(fault.error, match=fault.match) as caught:
        await failing
    assert caught.value.data is not None
    assert caught.value.data["tenant"] == "faulty"

    stats = sandbox.stats("faulty")
    assert stats.warm_instances == 0, "a failed instance must never be reused"
    assert stats.instances_discarded == 1
    assert stats.errors_by_kind == {caught.value.kind: 1}
    # The tenant's next call gets a fresh instance and succeeds.
    assert (await sandbox.call(faulty, NORMAL, host)).reply == NORMAL
    stats = sandbox.stats("faulty")
    assert (stats.instances_created, stats.warm_instances, stats.calls) == (2, 1, 3)


async def test_other_tenants_are_served_while_one_spins(sandbox: Sandbox) -> None:
    spinner = RecordingHost()
    spin = sandbox.load("spin", wasm("infinite_loop"), Limits(fuel=10**12, timeout_ms=60000))
    healthy = sandbox.load("healthy", wasm("echo"), Limits())
    spinning = asyncio.create_task(sandbox.call(spin, "[]", spinner))
    await wait_until(lambda: spinner.logs != [], what="the call to be spinning in wasm")
    for _ in range(3):
        assert (await sandbox.call(healthy, NORMAL, RecordingHost())).reply == NORMAL
    assert not spinning.done()  # its limit is a minute: only the cancel below ends it
    spinning.cancel()
    with pytest.raises(asyncio.CancelledError):
        await spinning


async def test_fuel_exhaustion_counts_the_whole_budget(sandbox: Sandbox) -> None:
    module = sandbox.load("spin", wasm("infinite_loop"), Limits(fuel=1_000_000))
    with pytest.raises(FuelExhausted):
        await sandbox.call(module, "[]", RecordingHost())
    assert sandbox.stats("spin").fuel_used == 1_000_000


async def test_start_function_is_limited_too(sandbox: Sandbox) -> None:
    module = sandbox.load("starter", wasm("start_loop"), Limits(fuel=1_000_000))
    with pytest.raises(FuelExhausted):
        await sandbox.warm_up(module)
    with pytest.raises(FuelExhausted):
        await sandbox.call(module, NORMAL, RecordingHost())
    stats = sandbox.stats("starter")
    assert (stats.live_instances, stats.errors) == (0, 1)


async def test_faults_in_parallel_tenants_stay_apart(sandbox: Sandbox) -> None:
    """Each tenant gets its own error even when they fail at the same moment."""
    kinds = {
        "a": ("unreachable", ModuleTrapped),
        "b": ("invalid_json_reply", BadModuleReply),
        "c": ("huge_reply", BadModuleReply),
    }
    modules = {t: sandbox.load(t, wasm(f), Limits()) for t, (f, _) in kinds.items()}
    calls = [sandbox.call(modules[t], "[]", RecordingHost()) for t in kinds for _ in range(10)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for index, result in enumerate(results):
        tenant = list(kinds)[index // 10]
        assert isinstance(result, kinds[tenant][1])
        assert f"tenant {tenant!r}" in str(result)
