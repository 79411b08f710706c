"""Density: many registered tenants, some warm; the box's RSS and a cold tenant's call latency.

Every tenant has its own module (a patched copy of echo: distinct hash, distinct compiled code)
and is public (``auth = "none"``): a thousand CLI key creations would dominate the run, and a
key lookup is measured by the throughput and cold-start parts anyway.

A first box fills the compiled-module cache: it starts (a box that compiles eagerly compiles
everything then) and calls each tenant the measured box will use once (a box that compiles
lazily compiles them then). The measured box starts on that cache, makes ``density_warm``
tenants warm (a few calls each), records its RSS, and then calls ``density_cold_calls``
never-called tenants once each, one at a time, for the cold-call latency.

The peer comparison: without a multi-tenant host each tenant's server is its own process, so
the report sets the box's RSS beside ``registered`` times one SDK server process's RSS.
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.loadgen import percentile
from bench.mcpclient import Endpoint, call_echo
from bench.suites.context import Context
from bench.tenants.build import variant, write_tenant

WARM_CALLS_EACH = 3


def run(ctx: Context) -> dict[str, object]:
    sizes = ctx.sizes
    total = sizes.density_tenants
    tenants_dir = ctx.scratch("density/tenants")
    ctx.log(f"density: writing {total} tenant folders")
    names = [f"d-{i:05d}" for i in range(total)]
    for index, name in enumerate(names):
        write_tenant(tenants_dir, name, variant(ctx.echo_wasm, 100_000 + index), auth="none")
    warm = names[: sizes.density_warm]
    cold = names[sizes.density_warm : sizes.density_warm + sizes.density_cold_calls]
    box = ctx.box("box-density", tenants_dir)

    ctx.log("density: first box start (compiles modules into the cache)")
    started = time.monotonic()
    with box:
        box.start_box(timeout_s=900)
        first_start_s = time.monotonic() - started
        with httpx.Client(timeout=60) as client:
            # Compile every module the measured box will load, for a box that compiles lazily.
            for name in warm + cold:
                call_echo(client, Endpoint(box.url(name), "modern"))

    ctx.log("density: measured box start")
    started = time.monotonic()
    with box:
        box.start_box(timeout_s=900)
        start_s = time.monotonic() - started
        rss_idle = box.rss()
        with httpx.Client(timeout=60) as client:
            for name in warm:
                for _ in range(WARM_CALLS_EACH):
                    call_echo(client, Endpoint(box.url(name), "modern"))
            rss_warm = box.rss()
            warm_latencies = sorted(
                call_echo(client, Endpoint(box.url(name), "modern")) for name in warm
            )
            cold_latencies = sorted(
                call_echo(client, Endpoint(box.url(name), "modern")) for name in cold
            )
        rss_after = box.rss()
    peer_rss = ctx.sdk_process()["rss_mib"]
    return {
        "registered": total,
        "warm": len(warm),
        "cold_calls": len(cold),
        "first_start_s": round(first_start_s, 2),
        "start_s": round(start_s, 2),
        "rss_idle_mib": round(rss_idle / 2**20, 1),
        "rss_warm_mib": round(rss_warm / 2**20, 1),
        "rss_after_cold_mib": round(rss_after / 2**20, 1),
        "warm_call_ms_p50": round(statistics.median(warm_latencies), 3),
        "cold_call_ms_p50": round(statistics.median(cold_latencies), 3),
        "cold_call_ms_p99": round(percentile(cold_latencies, 99), 3),
        "cold_call_ms_max": round(cold_latencies[-1], 3),
        "peer_sdk_process_rss_mib": peer_rss,
        # The same tenants as one SDK process each, from one process's measured RSS.
        "peer_rss_for_all_gib": round(peer_rss * total / 1024, 1),
        "peer_rss_over_box": round(peer_rss * total / (rss_warm / 2**20), 1),
    }
