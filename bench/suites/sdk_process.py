"""The peer's side of cold start and density: one SDK server process per MCP server.

Without a multi-tenant host, each MCP server is its own process (what the SDK, ToolHive or a
container gateway run), so a cold server costs a process start and each server its own RSS.
This spawns the SDK echo server (uvicorn, as in the throughput runs) and times spawn to first
correct reply, and reads its RSS after a few calls.
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.mcpclient import Endpoint, PeerError, call_echo
from bench.procs import ServerProcess, free_port, python_argv
from bench.suites.context import Context


def _spawn_and_call(ctx: Context, index: int) -> tuple[float, int]:
    port = free_port()
    server = ServerProcess(
        f"sdk-cold-{index}",
        python_argv("bench.peers.sdk_server", "--port", str(port)),
        ctx.scratch("sdk-process"),
    )
    server.port = port
    endpoint = Endpoint(f"http://127.0.0.1:{port}/mcp", "modern")
    started = time.perf_counter()
    with server, httpx.Client(timeout=5) as client:

        def answered() -> bool:
            try:
                call_echo(client, endpoint)
                return True
            except (httpx.HTTPError, PeerError):
                return False

        server.start(ready=answered, timeout_s=60)
        elapsed_ms = (time.perf_counter() - started) * 1000
        for _ in range(10):
            call_echo(client, endpoint)
        rss = server.rss()
    return elapsed_ms, rss


def measure(ctx: Context, runs: int = 3) -> dict[str, float]:
    ctx.log(f"peer: SDK server process start to first reply, {runs} runs")
    samples = [_spawn_and_call(ctx, i) for i in range(runs)]
    return {
        "start_to_first_reply_ms": round(statistics.median(s[0] for s in samples), 1),
        "rss_mib": round(statistics.median(s[1] for s in samples) / 2**20, 1),
    }
