"""Noisy neighbour: tenant B's latency while tenant A abuses the box, against B alone.

    python -m bench.noisy_neighbour [--duration 10] [--rate 40] [--json]

A real box (``smcp-box serve`` in a subprocess) serves two tenants running the same module
(bench/tenants/hog, built from source): A ("noisy") gets, from a separate process so that its
load does not slow the measuring client, calls that never end (stopped by fuel or the 5 s
limit), memory bombs (grow to the memory limit, then trap), kv floods (thousands of 60 KB
writes per call), and a flood of ``tools/list`` requests past its request rate, all at its
concurrency cap and beyond; B ("quiet") is called with the echo tool at ``--rate`` calls/s,
open-loop (each call starts on schedule, whatever the previous one did). B is measured alone
first, then under the flood, for ``--duration`` seconds each. Prints B's p50/p99 in both phases,
the p99 ratio (target: at most 2x), B's failures (target: none) and what A got back.

Bounded: two phases of ``--duration`` plus the box's start, about 30 s at the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.peers.box import BoxServer
from bench.peers.payload import call_headers
from bench.procs import REPO

HOG_DIR = Path(__file__).resolve().parent / "tenants" / "hog"
CC = REPO / "sdk" / "c" / "cc.sh"
TARGET_RATIO = 2.0
#: Tenant B's calls per second.
QUIET_RATE = 40.0
NOISY, QUIET = "noisy", "quiet"

#: A's flood: concurrent callers per kind; spins and bombs alone fill its 8 call slots.
FLOOD = {"spin": 5, "bomb": 2, "kvflood": 1, "list": 2}
KV_FLOOD_ARGS = {"count": 9000, "size": 60_000}


def build_hog(out: Path) -> bytes:
    done = subprocess.run(
        ["sh", str(CC), str(out), str(HOG_DIR / "hog.c")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building hog.c failed:\n{done.stdout}{done.stderr}")
    return out.read_bytes()


def write_tenants(tenants_dir: Path, wasm: bytes) -> None:
    import hashlib

    digest = hashlib.sha256(wasm).hexdigest()
    for name in (NOISY, QUIET):
        folder = tenants_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hog.wasm").write_bytes(wasm)
        (folder / "tenant.toml").write_text(
            f'name = "{name}"\ndescription = "noisy-neighbour bench tenant"\n'
            f'module = "hog.wasm"\nsha256 = "{digest}"\nauth = "api_key"\n'
        )


def tool_call(name: str, arguments: dict[str, Any], request_id: int = 1) -> bytes:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "noisy-bench", "version": "1"},
    }
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }
    return json.dumps(message, separators=(",", ":")).encode()


def list_call() -> bytes:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "noisy-bench", "version": "1"},
    }
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}
    return json.dumps(message, separators=(",", ":")).encode()


def headers(key: str, tool: str | None) -> dict[str, str]:
    found = call_headers("modern", None, key)
    if tool is None:
        found["Mcp-Method"] = "tools/list"
        found.pop("Mcp-Name", None)
    else:
        found["Mcp-Name"] = tool
    return found


def outcome_of(reply: httpx.Response) -> str:
    """``ok``, ``http-429``, or the JSON-RPC error code a reply carries."""
    if reply.status_code != 200:
        return f"http-{reply.status_code}"
    try:
        message = reply.json()
    except ValueError:
        return "not-json"
    if "error" in message:
        return f"rpc{message['error'].get('code')}"
    result = message.get("result", {})
    return "tool-error" if isinstance(result, dict) and result.get("isError") else "ok"


# --- tenant A, in its own process ----------------------------------------------------------


async def _flood(url: str, key: str, stop_at: float, kinds: tuple[str, ...]) -> Counter[str]:
    seen: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def caller(kind: str) -> None:
            if kind == "list":
                body, head = list_call(), headers(key, None)
            else:
                args = KV_FLOOD_ARGS if kind == "kvflood" else {}
                body, head = tool_call(kind, args), headers(key, kind)
            while time.monotonic() < stop_at:
                try:
                    reply = await client.post(url, content=body, headers=head)
                    seen[f"{kind}:{outcome_of(reply)}"] += 1
                except httpx.HTTPError as exc:
                    seen[f"{kind}:{type(exc).__name__}"] += 1

        await asyncio.gather(*(caller(k) for k, n in FLOOD.items() if k in kinds for _ in range(n)))
    return seen


def flood_process(
    url: str, key: str, duration_s: float, kinds: tuple[str, ...], results: Any
) -> None:
    stop_at = time.monotonic() + duration_s
    results.put(dict(asyncio.run(_flood(url, key, stop_at, kinds))))


# --- tenant B, measured here ---------------------------------------------------------------


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "calls": len(self.latencies_ms) + sum(self.failures.values()),
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else 0,
            "failures": dict(self.failures),
        }


async def measure_quiet(url: str, key: str, rate: float, duration_s: float) -> Phase:
    phase = Phase()
    body, head = tool_call("echo", {"text": "hello"}), headers(key, "echo")
    async with httpx.AsyncClient(timeout=30) as client:

        async def one() -> None:
            started = time.perf_counter()
            try:
                reply = await client.post(url, content=body, headers=head)
                outcome = outcome_of(reply)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            if outcome == "ok":
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                phase.failures[outcome] += 1

        # Warm the connection and the tenant's instance; not measured.
        await client.post(url, content=body, headers=head)
        tasks = []
        start = time.monotonic()
        for index in range(int(rate * duration_s)):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return phase


def run(
    duration_s: float,
    rate: float,
    workdir: Path,
    kinds: tuple[str, ...] = tuple(FLOOD),
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    tenants_dir = workdir / "tenants"
    write_tenants(tenants_dir, build_hog(workdir / "hog.wasm"))
    box = BoxServer(workdir / "box", tenants_dir, settings)
    box.start_box()
    try:
        noisy_key, quiet_key = box.create_key(NOISY), box.create_key(QUIET)
        alone = asyncio.run(measure_quiet(box.url(QUIET), quiet_key, rate, duration_s))
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        flooder = context.Process(
            target=flood_process,
            args=(box.url(NOISY), noisy_key, duration_s + 2.0, kinds, results),
        )
        flooder.start()
        time.sleep(1.5)  # let the flood reach its caps before measuring
        flooded = asyncio.run(measure_quiet(box.url(QUIET), quiet_key, rate, duration_s))
        noisy = results.get(timeout=duration_s + 60)
        flooder.join(timeout=30)
        log_tail = box.log(2000)
    finally:
        box.stop()
    ratio = flooded.percentile(0.99) / alone.percentile(0.99)
    return {
        "rate_per_s": rate,
        "duration_s": duration_s,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "quiet_alone": alone.summary(),
        "quiet_flooded": flooded.summary(),
        "p99_ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "noisy_outcomes": noisy,
        "box_log_tail": log_tail if "Traceback" in log_tail else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument(
        "--rate", type=float, default=QUIET_RATE, help="tenant B's calls per second"
    )
    parser.add_argument(
        "--flood",
        default=",".join(FLOOD),
        help=f"what tenant A does, comma-separated (default all: {','.join(FLOOD)})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a box setting for the run, as its SMCP_BOX_* variable (e.g. SANDBOX_CPU_SLOTS=2)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    kinds = tuple(kind for kind in args.flood.split(",") if kind)
    unknown = set(kinds) - set(FLOOD)
    if unknown:
        parser.error(f"unknown flood kinds {sorted(unknown)}; known: {', '.join(FLOOD)}")
    settings = dict(f"SMCP_BOX_{item}".split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory(prefix="smcp-noisy-") as scratch:
        result = run(args.duration, args.rate, Path(scratch), kinds, settings)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        alone, flooded = result["quiet_alone"], result["quiet_flooded"]
        print(f"load average {result['load_average']}, {result['cores']} cores")
        print(
            f"B alone:   p50 {alone['p50_ms']} ms, p99 {alone['p99_ms']} ms, {alone['calls']} calls"
        )
        print(
            f"B flooded: p50 {flooded['p50_ms']} ms, p99 {flooded['p99_ms']} ms, "
            f"{flooded['calls']} calls, failures {flooded['failures'] or 'none'}"
        )
        print(f"p99 ratio {result['p99_ratio']}x (target <= {TARGET_RATIO}x)")
        print(f"A got: {result['noisy_outcomes']}")
    failed = bool(result["quiet_flooded"]["failures"] or result["quiet_alone"]["failures"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
