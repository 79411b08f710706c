"""A normal client's latency while one address holds thousands of slow connections and hundreds
of SSE streams: the ratio of its p99 under attack to its p99 alone (target: at most 3x).

Usage: python -m bench.slow_clients_bench [--duration 10] [--rate 40] [--idle 1000] [--half 1000]
       [--body 1000] [--sse 300] [--no-reconnect] [--deadline 300]

A real box (``smcp-box serve`` in a subprocess, the ``utils`` tenant, default settings) is
measured twice for ``--duration`` seconds: a normal client (``--clients`` kept-alive HTTP/1.1
connections from 127.0.0.1, ``--rate`` stateless ``tools/call`` requests a second in all) alone,
then while an attacker process on 127.0.0.2 (loopback is all of 127.0.0.0/8, so it is another
address) holds idle connections, connections dribbling a request head a byte a second,
connections dribbling a body a byte a second, and legacy-session SSE streams, and reopens
whatever the box closes or refuses a second later (``--no-reconnect``: it opens each once).

The attacker runs in its own process so that its event loop does not delay the normal client's;
both share the machine's cores with the box, as a LAN attacker's traffic would not, so the figure
is a pessimistic one. The report names the box's drops by kind (from /metrics), its open file
descriptors under attack and after, and what the attacker got. Every phase is bounded; the whole
run stops at ``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.peers import payload
from bench.peers.box import BoxServer
from bench.procs import REPO, cpu_seconds, raise_nofile
from bench.rawhttp import RawConnection

TENANT = "utils"
ATTACKER_ADDRESS = "127.0.0.2"
#: Each request of the normal client: stateless (2026-07-28), one small tool call.
CALL = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "base64_encode",
            "arguments": {"text": "the quick brown fox"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": payload.MODERN_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "slow-bench", "version": "1"},
            },
        },
    }
).encode()
REQUEST_TIMEOUT_S = 10.0


def call_headers(key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": payload.ACCEPT,
        "MCP-Protocol-Version": payload.MODERN_VERSION,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "base64_encode",
        "Authorization": f"Bearer {key}",
    }


# --- the normal client ---------------------------------------------------------------------


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)
    errors: int = 0
    #: (seconds since the phase began, latency) of each answered request.
    timeline: list[tuple[float, float]] = field(default_factory=list)

    def worst_by_second(self) -> list[float]:
        """The slowest answer of each second of the phase, in ms (where the tail came from)."""
        worst: dict[int, float] = {}
        for at, latency in self.timeline:
            worst[int(at)] = max(worst.get(int(at), 0.0), latency * 1000)
        return [round(worst.get(second, 0.0), 1) for second in range(max(worst, default=-1) + 1)]

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"requests": 0, "errors": self.errors}
        return {
            "requests": len(ordered),
            "errors": self.errors,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "max_ms": ordered[-1] * 1000,
        }


async def normal_client(
    port: int, key: str, rate: float, clients: int, duration: float
) -> Latencies:
    """``clients`` kept-alive connections, each sending at ``rate / clients`` a second."""
    result = Latencies()
    headers = call_headers(key)
    path = f"/t/{TENANT}/mcp"
    interval = clients / rate
    began = time.monotonic()
    stop_at = began + duration

    async def one(offset: float) -> None:
        connection = RawConnection("127.0.0.1", port)
        next_at = time.monotonic() + offset
        try:
            while next_at < stop_at:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                started = time.perf_counter()
                try:
                    status, _, _ = await asyncio.wait_for(
                        connection.request("POST", path, headers, CALL), REQUEST_TIMEOUT_S
                    )
                except (TimeoutError, OSError, asyncio.IncompleteReadError):
                    result.errors += 1
                    await connection.close()
                else:
                    if status == 200:
                        result.samples.append(time.perf_counter() - started)
                        result.timeline.append((time.monotonic() - began, result.samples[-1]))
                    else:
                        result.errors += 1
                next_at += interval
        finally:
            await connection.close()

    await asyncio.gather(*(one(i * interval / clients) for i in range(clients)))
    return result


# --- the attacker (its own process) --------------------------------------------------------


@dataclass
class Tally:
    #: Connected (the kernel may accept more than the box has yet; see ``closed``).
    opened: int = 0
    #: Answered 429 (a per-address cap).
    refused: int = 0
    #: Closed or reset without an answer: a deadline, or, in a flood, the kernel dropping a
    #: connection its listen queue had no room for.
    closed: int = 0
    failed: int = 0
    open_now: int = 0


async def _hold(
    port: int, kind: str, key: str, tally: Tally, stop: asyncio.Event, reconnect: bool
) -> None:
    """One slow connection of ``kind`` (idle, half, body), reopened if asked."""
    head = {
        "idle": b"",
        "half": b"POST /t/utils/mcp HTTP/1.1\r\nHost: box\r\nX-Slow: ",
        "body": (
            f"POST /t/{TENANT}/mcp HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            "Content-Length: 1000000\r\n\r\n{"
        ).encode(),
    }[kind]
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(ATTACKER_ADDRESS, 0)
            )
        except OSError:
            tally.failed += 1
        else:
            tally.opened += 1
            tally.open_now += 1
            try:
                writer.write(head)
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), 1.0)
                    except TimeoutError:
                        if kind != "idle":
                            writer.write(b" ")  # one more byte a second
                        continue
                    if data.startswith(b"HTTP/1.1 429"):
                        tally.refused += 1
                    elif not data:
                        tally.closed += 1
                    if not data or data.startswith(b"HTTP/1.1 4"):
                        break
            except OSError:
                tally.closed += 1
            finally:
                tally.open_now -= 1
                writer.close()
        if not reconnect:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _stream(port: int, key: str, tally: Tally, stop: asyncio.Event, reconnect: bool) -> None:
    """One legacy session and its GET stream, held open."""
    url = f"http://127.0.0.1:{port}/t/{TENANT}/mcp"
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER_ADDRESS)
    async with httpx.AsyncClient(transport=transport, timeout=None) as http:
        while not stop.is_set():
            try:
                init = await http.post(
                    url,
                    content=payload.initialize_body(),
                    headers=payload.call_headers("legacy", None, key),
                )
                session = init.headers.get("mcp-session-id")
                if session is None:
                    tally.refused += 1
                else:
                    await http.post(
                        url,
                        content=payload.INITIALIZED_BODY,
                        headers=payload.call_headers("legacy", session, key),
                    )
                    headers = payload.call_headers("legacy", session, key)
                    headers["Accept"] = "text/event-stream"
                    async with http.stream("GET", url, headers=headers) as reply:
                        if reply.status_code != 200:
                            tally.refused += 1
                        else:
                            tally.opened += 1
                            tally.open_now += 1
                            try:
                                reading = asyncio.ensure_future(_drain(reply))
                                stopping = asyncio.ensure_future(stop.wait())
                                await asyncio.wait(
                                    [reading, stopping], return_when=asyncio.FIRST_COMPLETED
                                )
                                reading.cancel()
                                stopping.cancel()
                                if not stop.is_set():
                                    tally.closed += 1
                            finally:
                                tally.open_now -= 1
            except httpx.HTTPError:
                tally.failed += 1
            if not reconnect:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _drain(reply: httpx.Response) -> None:
    with contextlib.suppress(httpx.HTTPError):
        async for _ in reply.aiter_bytes():
            pass


async def attack(args: argparse.Namespace) -> None:
    """Open everything, say ``ready``, hold for ``--hold`` seconds, print the tallies."""
    stop = asyncio.Event()
    tallies = {kind: Tally() for kind in ("idle", "half", "body", "sse")}
    # Kinds interleaved, so that the connections the box lets in are of every kind.
    counts = {"idle": args.idle, "half": args.half, "body": args.body}
    order = [
        kind for i in range(max(counts.values(), default=0)) for kind in counts if i < counts[kind]
    ]
    tasks = [
        asyncio.create_task(_hold(args.port, kind, args.key, tallies[kind], stop, args.reconnect))
        for kind in order
    ]
    tasks += [
        asyncio.create_task(_stream(args.port, args.key, tallies["sse"], stop, args.reconnect))
        for _ in range(args.sse)
    ]
    # Ready once every connection was tried (opened, refused or failed), and 2 s more for the
    # opening flood to settle into the steady attack; at most 60 s.
    wanted = {"idle": args.idle, "half": args.half, "body": args.body, "sse": args.sse}
    settle_by = time.monotonic() + 60
    while time.monotonic() < settle_by:
        if all(t.opened + t.refused + t.failed >= wanted[k] for k, t in tallies.items()):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)
    print("ready " + json.dumps({k: vars(t) for k, t in tallies.items()}), flush=True)
    await asyncio.sleep(args.hold)
    held = {k: vars(t).copy() for k, t in tallies.items()}
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print("done " + json.dumps(held), flush=True)


# --- the run -------------------------------------------------------------------------------


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def dropped_by_kind(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("smcp_box_connections_dropped_total{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            found[kind] = float(line.rsplit(" ", 1)[1])
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile(4 * (args.idle + args.half + args.body + args.sse) + 1024)
    load = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smcp-slow-") as scratch:
        workdir = Path(scratch)
        tenants = workdir / "tenants"
        shutil.copytree(REPO / "tenants" / TENANT, tenants / TENANT)
        settings = dict(item.split("=", 1) for item in args.setting)
        box = BoxServer(workdir, tenants, settings=settings, name="slow-box")
        box.start_box()
        try:
            key = box.create_key(TENANT)
            # Warm: the first calls compile and instantiate the module.
            asyncio.run(normal_client(box.port, key, args.rate, args.clients, 2.0))
            cpu_at = cpu_seconds(box.pid)
            alone = asyncio.run(
                normal_client(box.port, key, args.rate, args.clients, args.duration)
            )
            cpu_alone = cpu_seconds(box.pid) - cpu_at
            fds_before = open_fds(box.pid)
            hold = args.duration + 5
            attacker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.slow_clients_bench",
                    "--attacker",
                    "--port",
                    str(box.port),
                    "--key",
                    key,
                    "--hold",
                    str(hold),
                    "--idle",
                    str(args.idle),
                    "--half",
                    str(args.half),
                    "--body",
                    str(args.body),
                    "--sse",
                    str(args.sse),
                    *([] if args.reconnect else ["--no-reconnect"]),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            try:
                assert attacker.stdout is not None
                ready_line = attacker.stdout.readline()
                if not ready_line.startswith("ready "):
                    raise RuntimeError(f"the attacker did not start: {ready_line!r}")
                fds_attacked = open_fds(box.pid)
                cpu_at = cpu_seconds(box.pid)
                attacker_cpu_at = cpu_seconds(attacker.pid)
                attacked = asyncio.run(
                    normal_client(box.port, key, args.rate, args.clients, args.duration)
                )
                cpu_attacked = cpu_seconds(box.pid) - cpu_at
                attacker_cpu = cpu_seconds(attacker.pid) - attacker_cpu_at
                fds_end = open_fds(box.pid)
                done_line = attacker.stdout.readline()
                attacker.wait(timeout=60)
            finally:
                if attacker.poll() is None:
                    attacker.kill()
                    attacker.wait()
                if attacker.stdout is not None:
                    attacker.stdout.close()
            # The box recovers: its descriptors go back to what they were (bounded wait).
            recover_by = time.monotonic() + 30
            while open_fds(box.pid) > fds_before + 8 and time.monotonic() < recover_by:
                time.sleep(0.2)
            drops = dropped_by_kind(box.base_url)
            fds_after = open_fds(box.pid)
        finally:
            box.stop()
    alone_s, attacked_s = alone.summary(), attacked.summary()
    ratio = attacked_s.get("p99_ms", float("nan")) / alone_s.get("p99_ms", float("nan"))
    return {
        "load_average_at_start": load,
        "alone": alone_s,
        "under_attack": attacked_s,
        "p99_ratio": ratio,
        "worst_by_second_ms": {
            "alone": alone.worst_by_second(),
            "under_attack": attacked.worst_by_second(),
        },
        "attacker_ready": json.loads(ready_line.removeprefix("ready ")),
        "attacker_held": json.loads(done_line.removeprefix("done ") or "{}"),
        "box_fds": {
            "before": fds_before,
            "attacked": fds_attacked,
            "end_of_attack": fds_end,
            "after": fds_after,
        },
        "box_dropped": drops,
        "cpu_share_of_one_core": {
            "box_alone": cpu_alone / args.duration,
            "box_under_attack": cpu_attacked / args.duration,
            "attacker": attacker_cpu / args.duration,
        },
        "elapsed_s": time.monotonic() - started,
    }


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=40.0, help="normal requests per second")
    parser.add_argument("--clients", type=int, default=4, help="normal client connections")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--half", type=int, default=1000)
    parser.add_argument("--body", type=int, default=1000)
    parser.add_argument("--sse", type=int, default=300)
    parser.add_argument(
        "--no-reconnect",
        dest="reconnect",
        action="store_false",
        help="the attacker opens once (by default it reopens what the box closes, 1 s later)",
    )
    parser.add_argument("--deadline", type=float, default=300.0, help="stop the run after")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="SMCP_BOX_X=V",
        help="a setting of the box under test (repeatable); default: the box's defaults",
    )
    # The attacker's own arguments (the run starts it with these).
    parser.add_argument("--attacker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    parser.add_argument("--hold", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = arguments().parse_args()
    if args.attacker:
        asyncio.run(attack(args))
        return
    # The whole run is bounded: an alarm ends it if a phase hangs.
    import signal

    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"stopped at --deadline {args.deadline:g}s"))
    signal.alarm(int(args.deadline))
    result = run(args)
    signal.alarm(0)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    alone, attacked = result["alone"], result["under_attack"]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in result['load_average_at_start'])}")
    for name, figures in (("alone", alone), ("under attack", attacked)):
        print(
            f"{name:>13}: {figures['requests']} ok, {figures['errors']} errors, "
            f"p50 {figures.get('p50_ms', 0):.1f} ms, p99 {figures.get('p99_ms', 0):.1f} ms, "
            f"max {figures.get('max_ms', 0):.1f} ms"
        )
    print(f"p99 ratio: {result['p99_ratio']:.2f}x (target <= 3x)")
    for name, worst in result["worst_by_second_ms"].items():
        print(f"slowest answer each second, {name}: {worst}")
    print(f"attacker when ready: {json.dumps(result['attacker_ready'])}")
    print(f"attacker at the end: {json.dumps(result['attacker_held'])}")
    print(f"box fds: {json.dumps(result['box_fds'])}")
    print(f"box drops by kind: {json.dumps(result['box_dropped'])}")
    shares = {k: round(v, 2) for k, v in result["cpu_share_of_one_core"].items()}
    print(f"CPU (share of one core) while measured: {json.dumps(shares)}")
    print(f"elapsed: {result['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
