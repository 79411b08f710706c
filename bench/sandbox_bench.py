"""Sandbox micro-benchmarks: median microseconds per operation.

Run from the repository root: ``python bench/sandbox_bench.py`` (well under a minute).

Measured:
- a call of the echo module with a 200-byte message in and out, on a warm instance, through
  the raw (unchecked) call path: ``Instance.call`` is everything the worker thread does for a
  call (fuel, deadline, alloc, copy in, handle, copy out, UTF-8 and JSON checks); then the same
  through ``Sandbox.call_sync`` (adds the gate and pool) and ``await Sandbox.call`` (adds the
  hop to a worker thread and back to the event loop);
- the same call through wasmtime-py's high-level ``Func.__call__`` and ``Memory.read/write``;
- a fresh instance (Store, limits, instantiate, export lookup) of a precompiled module;
- loading a precompiled module from the on-disk cache (digest check + ``deserialize_file``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from smcp_box.sandbox import Limits, Sandbox  # noqa: E402
from smcp_box.sandbox.cache import ModuleCache  # noqa: E402
from smcp_box.sandbox.instance import Instance, deadline_ticks  # noqa: E402
from tests.sandbox.support import RecordingHost, wasm  # noqa: E402

MESSAGE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"x": ""}})
MESSAGE = MESSAGE.replace('"x": ""', '"x": "' + "a" * (200 - len(MESSAGE)) + '"')
assert len(MESSAGE.encode()) == 200


def median_us(op: Callable[[], object], *, batch: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean time of ``batch`` back-to-back runs, in µs."""
    op()  # warm
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(batch):
            op()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


def high_level_call(
    store: wasmtime.Store, instance: wasmtime.Instance, limits: Limits, ticks: int
) -> Callable[[], str]:
    exports = instance.exports(store)
    alloc, handle, memory = exports["smcp_alloc"], exports["smcp_handle"], exports["memory"]
    data = MESSAGE.encode()

    def call() -> str:
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(ticks)
        ptr = alloc(store, len(data))
        memory.write(store, data, ptr)
        packed = handle(store, ptr, len(data)) & 0xFFFF_FFFF_FFFF_FFFF
        start, length = packed >> 32, packed & 0xFFFF_FFFF
        text = memory.read(store, start, start + length).decode("utf-8")
        json.loads(text)
        return text

    return call


def main() -> None:
    echo = wasm("echo")
    limits = Limits()
    host = RecordingHost()
    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp, Sandbox(Path(tmp) / "cache") as sandbox:
        module = sandbox.load("echo", echo, limits)
        # Internals, for the layer-by-layer figures: the pre-linked module the pool spawns from.
        pre = sandbox._compile("echo", echo, module.sha256, "core")[0].pre
        ticks = deadline_ticks(limits.timeout_s, sandbox.tick_s)

        warm = Instance(sandbox.engine, pre, "echo", limits, ticks)
        assert warm.call("echo", limits, ticks, MESSAGE.encode(), host).reply == MESSAGE
        data = MESSAGE.encode()
        results.append(
            (
                "call, raw path (Instance.call, 200 B in/out)",
                median_us(
                    lambda: warm.call("echo", limits, ticks, data, host), batch=2000, rounds=25
                ),
                "target <= 15",
            )
        )
        results.append(
            (
                "call, raw path via Sandbox.call_sync (+gate, pool)",
                median_us(lambda: sandbox.call_sync(module, MESSAGE, host), batch=2000, rounds=25),
                "",
            )
        )

        async def async_calls(n: int) -> float:
            await sandbox.call(module, MESSAGE, host)
            samples = []
            for _ in range(n):
                start = time.perf_counter_ns()
                await sandbox.call(module, MESSAGE, host)
                samples.append((time.perf_counter_ns() - start) / 1000)
            return statistics.median(samples)

        results.append(
            ("call, await Sandbox.call (+worker thread hop)", asyncio.run(async_calls(3000)), "")
        )

        store = wasmtime.Store(sandbox.engine)
        store.set_limits(memory_size=limits.memory_bytes, memories=1, instances=1, tables=1)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(10**6)
        instance = pre.instantiate(store)
        slow = high_level_call(store, instance, limits, 10**6)
        assert slow() == MESSAGE
        results.append(
            (
                "call, high-level Func.__call__ path (same steps)",
                median_us(slow, batch=500, rounds=25),
                "for comparison",
            )
        )

        def fresh_instance() -> None:
            Instance(sandbox.engine, pre, "echo", limits, ticks).close()

        results.append(
            (
                "fresh instance of a precompiled module",
                median_us(fresh_instance, batch=500, rounds=25),
                "target <= 100",
            )
        )

        cache = ModuleCache(Path(tmp) / "cache", sandbox.engine, sandbox.fingerprint)
        sha = hashlib.sha256(echo).hexdigest()
        _, hit = cache.get_or_compile(echo, sha)
        assert hit
        results.append(
            (
                "load precompiled module from disk (digest + deserialize)",
                median_us(lambda: cache.get_or_compile(echo, sha), batch=100, rounds=25),
                "",
            )
        )
        path = str(cache.path_for(sha))
        results.append(
            (
                "  of which Module.deserialize_file alone",
                median_us(
                    lambda: wasmtime.Module.deserialize_file(sandbox.engine, path),
                    batch=100,
                    rounds=25,
                ),
                "",
            )
        )
        fuel = warm.call("echo", limits, ticks, data, host).fuel_used
    width = max(len(name) for name, _, _ in results)
    print(f"wasmtime {version('wasmtime')}, Python {sys.version.split()[0]}")
    for name, value, note in results:
        print(f"{name:<{width}}  {value:9.1f} µs  {note}")
    print(f"fuel of one echo call: {fuel} units")


if __name__ == "__main__":
    main()
