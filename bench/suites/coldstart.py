"""Cold start: the first call to a tenant whose module is compiled on disk but not loaded.

A first box compiles every cold tenant's module into its on-disk cache (by calling each once)
and stops. A second box on the same cache then serves them: the first call to each pays for
whatever the box does lazily (reading and checking the cached code, an instance, the tenant's
first key lookup), and the calls after it are warm.

The peer comparison: without a multi-tenant host a cold MCP server is a process to start, so
the SDK server's spawn-to-first-reply time is reported beside the box's cold first call.

Each cold tenant has its own module (a patched copy of echo, so a distinct hash): no tenant
can ride on another's loaded code.
"""

from __future__ import annotations

import statistics

import httpx

from bench.mcpclient import Endpoint, call_echo
from bench.suites.context import Context
from bench.tenants.build import variant, write_tenant


def run(ctx: Context) -> dict[str, object]:
    sizes = ctx.sizes
    tenants_dir = ctx.scratch("coldstart/tenants")
    # cold-0000 only absorbs the box's own lazy start-up (first connection, first key lookup
    # path); the tenants after it are the measured ones.
    names = [f"cold-{i:04d}" for i in range(sizes.cold_tenants + 1)]
    for index, name in enumerate(names):
        write_tenant(tenants_dir, name, variant(ctx.echo_wasm, 1 + index))
    box = ctx.box("box-coldstart", tenants_dir)
    keys: dict[str, str] = {}
    ctx.log(f"coldstart: first box fills the compiled-module cache for {len(names)} tenants")
    with box:
        box.start_box()
        for name in names:
            keys[name] = box.create_key(name)
        with httpx.Client(timeout=30) as client:
            for name in names:
                call_echo(client, Endpoint(box.url(name), "modern", key=keys[name]))
    ctx.log("coldstart: second box, first calls vs warm calls")
    firsts: list[float] = []
    warms: list[float] = []
    extras: list[float] = []
    with box:
        box.start_box()
        rss_fresh = box.rss()
        with httpx.Client(timeout=30) as client:
            call_echo(client, Endpoint(box.url(names[0]), "modern", key=keys[names[0]]))
            for name in names[1:]:
                endpoint = Endpoint(box.url(name), "modern", key=keys[name])
                first = call_echo(client, endpoint)
                warm = statistics.median(
                    call_echo(client, endpoint) for _ in range(sizes.warm_calls)
                )
                firsts.append(first)
                warms.append(warm)
                extras.append(first - warm)
        rss_after = box.rss()
    peer = ctx.sdk_process()
    first = statistics.median(firsts)
    return {
        "tenants": len(firsts),
        "first_call_ms_median": round(first, 3),
        "warm_call_ms_median": round(statistics.median(warms), 3),
        "extra_ms_median": round(statistics.median(extras), 3),
        "extra_ms_max": round(max(extras), 3),
        "first_calls_ms": [round(v, 3) for v in firsts],
        "rss_fresh_mib": round(rss_fresh / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
        "peer_sdk_process_start_ms": peer["start_to_first_reply_ms"],
        "sdk_process_start_over_box_first_call": round(peer["start_to_first_reply_ms"] / first, 1),
    }
