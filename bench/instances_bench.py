"""Instances of each tenant kind side by side: what one warm instance costs in time and memory.

Run from the repository root: ``python bench/instances_bench.py`` (builds the Python example
tenant with componentize-py first, ~15-60 s; ``--component PATH`` takes a built one instead).

Measured per kind (the core module is ``tenants/notes/notes.wasm``, the C example; the
component is ``tenants/python/pytasks``, the Python example built by componentize-py):
- load: compiled code from the on-disk cache into the engine (digest check + deserialize);
- instantiate: a fresh instance (Store, limits, WASI context for a component, instantiation,
  export lookup), the mean over filling a warm pool of ``--instances`` (``Sandbox.warm_up``,
  the pool ``[limits].max_instances`` sizes);
- RSS per instance: the process's resident memory after warming the pool and running one call
  on each instance at once, minus before, divided by the instances made (pages they touched);
- call: a warm ``tools/list``, median, through ``Sandbox.call_sync``, and the fuel it burns.
Ratios are component / core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smcp_box.sandbox import CallOutcome, Limits, Sandbox, TenantModule  # noqa: E402
from tests.sandbox.support import RecordingHost  # noqa: E402

CORE = ROOT / "tenants" / "notes" / "notes.wasm"
PYTASKS = ROOT / "tenants" / "python" / "pytasks"
LIST = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def build_component(scratch: Path, cache: Path) -> Path:
    from smcp_box.ops.authoring import build_tenant

    folder = scratch / "pytasks"
    shutil.copytree(PYTASKS, folder, ignore=shutil.ignore_patterns("*.wasm", "__pycache__"))
    started = time.monotonic()
    build_tenant(folder, cache_dir=cache)
    print(f"built pytasks in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return folder / "pytasks.wasm"


def measure(cache: Path, name: str, wasm: bytes, kind: str, instances: int) -> dict[str, float]:
    limits = Limits(max_instances=instances, max_concurrent_calls=instances, memory_mib=64)
    with Sandbox(cache) as warm_cache:  # fills the cache (compiles once)
        warm_cache.load(name, wasm, limits, kind=kind)
    with Sandbox(cache) as sandbox:
        started = time.perf_counter()
        module = sandbox.load(name, wasm, limits, kind=kind)
        load_s = time.perf_counter() - started
        created = sandbox.stats(name).instances_created  # a component load makes one
        before = rss_bytes()
        started = time.perf_counter()
        asyncio.run(sandbox.warm_up(module, instances))
        warm_s = time.perf_counter() - started
        new = sandbox.stats(name).instances_created - created
        host = RecordingHost()
        # Calls on every warm instance at once: the pages a call touches count too.
        outcomes = asyncio.run(_call_each(sandbox, module, instances, host))
        after = rss_bytes()
        calls = []
        for _ in range(50):
            started = time.perf_counter()
            sandbox.call_sync(module, LIST, host)
            calls.append(time.perf_counter() - started)
    return {
        "load_ms": load_s * 1000,
        "instantiate_ms": warm_s / max(new, 1) * 1000,
        "rss_per_instance_mib": (after - before) / max(new, 1) / 2**20,
        "call_ms": statistics.median(calls) * 1000,
        "call_fuel": float(outcomes[0].fuel_used),
    }


async def _call_each(
    sandbox: Sandbox, module: TenantModule, count: int, host: RecordingHost
) -> list[CallOutcome]:
    return list(await asyncio.gather(*(sandbox.call(module, LIST, host) for _ in range(count))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--component", type=Path, help="a built pytasks.wasm (default: build)")
    parser.add_argument("--instances", type=int, default=8, help="warm instances per kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smcp-instances-") as tmp:
        scratch = Path(tmp)
        cache = scratch / "cache"
        component = args.component or build_component(scratch, cache)
        rows = {
            "core (notes, C)": measure(cache, "notes", CORE.read_bytes(), "core", args.instances),
            "component (pytasks, Python)": measure(
                cache, "pytasks", component.read_bytes(), "component", args.instances
            ),
        }
    core, comp = rows.values()
    print(f"{args.instances} warm instances per kind\n")
    print(f"| measure | {' | '.join(rows)} | component / core |")
    print("|---|---:|---:|---:|")
    for key, unit in [
        ("load_ms", "load from cache, ms"),
        ("instantiate_ms", "instantiate, ms"),
        ("rss_per_instance_mib", "RSS per warm instance, MiB"),
        ("call_ms", "warm tools/list, ms"),
        ("call_fuel", "tools/list fuel"),
    ]:
        ratio = comp[key] / core[key] if core[key] else float("inf")
        print(f"| {unit} | {core[key]:,.3f} | {comp[key]:,.3f} | {ratio:,.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
