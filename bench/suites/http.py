"""tools/call throughput and latency of the three peers, over HTTP/1.1 and HTTP/2.

All peers run at once (idle servers cost no CPU) and the runs are interleaved: for each
protocol and concurrency the peers are measured back to back, so that noise from the shared
machine lands on all of them alike and the ratios stay meaningful.

Eras: "modern" is the 2026-07-28 stateless request (no session); "legacy" is the 2025-11-25 era
with one session opened by initialize and shared by every connection, as a client's would be,
each request with an id of its own; over HTTP/2, whose generator (h2load) sends one fixed body,
each connection has a session of its own instead (bench/loadgen.py).
The floor does not look at either, so it is measured once per protocol and concurrency and is
the denominator for both eras.
"""

from __future__ import annotations

import functools
from contextlib import ExitStack
from dataclasses import dataclass

import httpx

from bench import loadgen
from bench.mcpclient import Endpoint, open_session, probe_echo
from bench.procs import ServerProcess, cpu_seconds, free_port, python_argv
from bench.suites.context import Context
from bench.tenants.build import write_tenant

PEERS = ("floor", "sdk", "box")


@dataclass
class Running:
    name: str
    server: ServerProcess
    #: era -> endpoint; the floor has one under "any".
    endpoints: dict[str, Endpoint]
    content_types: dict[str, str]


def _peer_process(ctx: Context, name: str, module: str, *args: str) -> ServerProcess:
    port = free_port()
    server = ServerProcess(
        name, python_argv(module, "--port", str(port), *args), ctx.scratch("http")
    )
    server.port = port
    server.start()
    return server


def _check(name: str, endpoints: dict[str, Endpoint]) -> dict[str, str]:
    types = {}
    with httpx.Client(timeout=10) as client:
        for era, endpoint in endpoints.items():
            # Several calls, so that lazy set-up (a first instance, a first import) is done.
            for _ in range(3):
                _latency, types[era] = probe_echo(client, endpoint)
    return types


def _start_peers(ctx: Context, stack: ExitStack, peers: tuple[str, ...]) -> dict[str, Running]:
    eras = ctx.sizes.eras
    running: dict[str, Running] = {}

    def add(name: str, server: ServerProcess, endpoints: dict[str, Endpoint]) -> None:
        running[name] = Running(name, server, endpoints, _check(name, endpoints))

    if "floor" in peers:
        floor = stack.enter_context(_peer_process(ctx, "floor", "bench.peers.quart_floor"))
        add("floor", floor, {"any": Endpoint(f"http://127.0.0.1:{floor.port}/mcp", "modern")})
    if "sdk" in peers:
        # uvicorn, the SDK's own choice, has no HTTP/2: the HTTP/2 rows use Hypercorn.
        for proto, server_name in (("http1", "uvicorn"), ("http2", "hypercorn")):
            if proto not in ctx.sizes.protocols:
                continue
            proc = stack.enter_context(
                _peer_process(
                    ctx,
                    f"sdk-{server_name}",
                    "bench.peers.sdk_server",
                    "--server",
                    server_name,
                    "--uvicorn",
                    ctx.sdk_uvicorn,
                )
            )
            url = f"http://127.0.0.1:{proc.port}/mcp"
            endpoints = {}
            for era in eras:
                session = None
                if era == "legacy":
                    with httpx.Client(timeout=10) as client:
                        session = open_session(client, url)
                endpoints[era] = Endpoint(url, era, session_id=session)
            add(f"sdk-{proto}", proc, endpoints)
    if "box" in peers:
        tenants = ctx.scratch("http/box-tenants")
        write_tenant(tenants, "echo", ctx.echo_wasm)
        box = stack.enter_context(ctx.box("box-http", tenants))
        box.start_box()
        key = box.create_key("echo")
        url = box.url("echo")
        endpoints = {}
        for era in eras:
            session = None
            if era == "legacy":
                with httpx.Client(timeout=10) as client:
                    session = open_session(client, url, key)
            endpoints[era] = Endpoint(url, era, key=key, session_id=session)
        add("box", box, endpoints)
    return running


def _server_for(running: dict[str, Running], peer: str, proto: str) -> Running | None:
    return running.get(f"sdk-{proto}") if peer == "sdk" else running.get(peer)


def run(ctx: Context, peers: tuple[str, ...] = PEERS) -> dict[str, object]:
    sizes = ctx.sizes
    skipped: list[str] = []
    with ExitStack() as stack:
        ctx.log(f"http: starting peers {', '.join(peers)}")
        running = _start_peers(ctx, stack, peers)
        plan = []
        for era in sizes.eras:
            levels = sizes.concurrency if era == sizes.eras[0] else sizes.legacy_concurrency
            for proto in sizes.protocols:
                for conc in levels:
                    for peer in peers:
                        if peer == "floor" and era != sizes.eras[0]:
                            continue  # era-agnostic: measured once, reused for both eras
                        plan.append((era, proto, conc, peer))
        measured: dict[tuple[str, str, int, str], list[dict[str, object]]] = {}
        steps = [(n, step) for n in range(sizes.rounds) for step in plan]
        for index, (round_no, (era, proto, conc, peer)) in enumerate(steps, 1):
            peer_run = _server_for(running, peer, proto)
            if peer_run is None:
                continue
            endpoint = peer_run.endpoints.get("any") or peer_run.endpoints[era]
            try:
                result = loadgen.run_load(
                    endpoint.target(),
                    protocol=proto,
                    concurrency=conc,
                    duration_s=sizes.duration_s,
                    warmup_s=sizes.warmup_s,
                    generator=ctx.generator,
                    cpu_probe=functools.partial(cpu_seconds, peer_run.server.pid),
                )
            except loadgen.Unsupported as exc:
                if round_no == 0:
                    skipped.append(f"{peer} {era} {proto} c={conc}: {exc}")
                continue
            row = {
                "peer": peer,
                "era": "any" if peer == "floor" else era,
                "server": _server_label(peer, proto),
                **result.to_json(),
                "rss_mib": round(peer_run.server.rss() / 2**20, 1),
            }
            measured.setdefault((era, proto, conc, peer), []).append(row)
            ctx.log(
                f"http {index}/{len(steps)}: {peer:5} {era:6} {proto} c={conc:<3} "
                f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}"
            )
        rows = [_median_row(found) for found in measured.values()]
        content_types = {name: r.content_types for name, r in running.items()}
    return {
        "generator": loadgen.describe_generator(ctx.generator),
        "sdk_uvicorn": ctx.sdk_uvicorn,
        "duration_s": sizes.duration_s,
        "warmup_s": sizes.warmup_s,
        "rounds": sizes.rounds,
        "rows": rows,
        "ratios": ratios(rows),
        "reply_content_types": content_types,
        "skipped": skipped,
    }


def _median_row(found: list[dict[str, object]]) -> dict[str, object]:
    """Of several rounds of one measurement, the round with the median requests/s (so its
    latencies belong to it), with every round's requests/s beside it."""
    ordered = sorted(found, key=lambda row: float(row["rps"]))  # type: ignore[arg-type]
    row = dict(ordered[(len(ordered) - 1) // 2])
    if len(found) > 1:
        row["rounds_rps"] = [round(float(r["rps"]), 1) for r in found]  # type: ignore[arg-type]
    return row


def _server_label(peer: str, proto: str) -> str:
    if peer == "sdk":
        return "uvicorn" if proto == "http1" else "hypercorn"
    return "hypercorn"


def find(
    rows: list[dict[str, object]], peer: str, era: str, proto: str, conc: int
) -> dict[str, object] | None:
    for row in rows:
        if (
            row["peer"] == peer
            and row["protocol"] == proto
            and row["concurrency"] == conc
            and row["era"] in (era, "any")
        ):
            return row
    return None


def ratios(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """box/sdk and box/floor requests per second for every measured box row."""
    out = []
    for row in rows:
        if row["peer"] != "box":
            continue
        era, proto, conc = row["era"], row["protocol"], row["concurrency"]
        entry: dict[str, object] = {"era": era, "protocol": proto, "concurrency": conc}
        for peer in ("sdk", "floor"):
            other = find(rows, peer, str(era), str(proto), int(conc))  # type: ignore[arg-type]
            if other and other["rps"]:
                entry[f"box_over_{peer}"] = round(float(row["rps"]) / float(other["rps"]), 3)
        out.append(entry)
    return out
