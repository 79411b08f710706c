"""The box's own CPU per ``tools/call``, in process, without sockets.

``python -m bench.inprocess_bench [--era modern|legacy] [--calls N] [--concurrency C]`` starts a
real box (store, audit writer, sandbox, the echo tenant built from source, an API key) in this
process and drives its ASGI app directly: the lean MCP path, the transport, the module call and
the audit rows all run as ``smcp-box serve`` runs them, but Hypercorn, its HTTP/1.1 parser and
the socket (about half of a request's CPU end to end) do not. On a shared machine this
is far steadier than the end-to-end figure, so it is the one to compare two versions of the
request path with (run both in the same minutes, alternating). It prints the CPU per call of
each of ``--passes`` passes and their minimum.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.peers.payload import call_body, call_headers, initialize_body
from bench.suites.context import BENCH_BOX_SETTINGS
from bench.tenants.build import build_echo, write_tenant

Asgi = Callable[[Any, Any, Any], Awaitable[None]]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


async def post(
    asgi: Asgi, headers: dict[str, str], body: bytes, tenant: str = "echo"
) -> dict[str, Any]:
    """One POST to ``/t/<tenant>/mcp`` through the ASGI app; its status, headers and body."""
    raw_headers = [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/t/{tenant}/mcp",
        "raw_path": f"/t/{tenant}/mcp".encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": raw_headers,
        "extensions": {},
    }
    delivered = False
    # The client never leaves: a later receive (the disconnect watcher's) waits forever.
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never
        raise AssertionError("unreachable")

    reply: dict[str, Any] = {"body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            reply["status"] = message["status"]
            reply["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            reply["body"] += message.get("body", b"")

    await asgi(scope, receive, send)
    return reply


async def _measure(era: str, calls: int, concurrency: int, passes: int) -> None:
    from smcp_box.box import Box, lock_state
    from smcp_box.config import load_settings
    from smcp_box.web.app import create_app

    settings = load_settings()
    box = await Box.start(settings, lock=lock_state(settings))
    _, key = await box.store.create_api_key("echo", "inprocess-bench")
    asgi: Asgi = create_app(box.settings, box.app_services()).asgi_app
    session = None
    if era == "legacy":
        opened = await post(asgi, call_headers("legacy", key=key), initialize_body())
        session = opened["headers"]["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        headers = call_headers("legacy", session_id=session, key=key)
        await post(asgi, headers, json.dumps(initialized).encode())
    headers = call_headers(era, session_id=session, key=key)
    ids = itertools.count(10)

    async def caller(count: int) -> None:
        for _ in range(count):
            reply = await post(asgi, headers, call_body(era, next(ids)))
            if reply["status"] != 200 or b'"result"' not in reply["body"]:
                raise RuntimeError(f"the box answered {reply['status']}: {reply['body'][:300]!r}")

    await asyncio.gather(*(caller(100) for _ in range(concurrency)))  # warm-up
    figures = []
    for _ in range(passes):
        before = _cpu_seconds()
        await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
        figures.append((_cpu_seconds() - before) / (calls // concurrency * concurrency) * 1e6)
    shown = " ".join(f"{figure:.1f}" for figure in figures)
    print(f"{era}, c={concurrency}: CPU per call, µs: {shown}; min {min(figures):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--era", choices=("modern", "legacy"), default="modern")
    parser.add_argument("--calls", type=int, default=6400, help="calls per pass")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="smcp-inprocess-"))
    tenants = workdir / "tenants"
    tenants.mkdir()
    write_tenant(tenants, "echo", build_echo())
    os.environ.update(
        {
            "SMCP_BOX_STATE_DIR": str(workdir / "state"),
            "SMCP_BOX_CACHE_DIR": str(workdir / "cache"),
            "SMCP_BOX_RUNTIME_DIR": str(workdir / "run"),
            "SMCP_BOX_TENANTS_DIR": str(tenants),
            "SMCP_BOX_LOG_LEVEL": "warning",
            **BENCH_BOX_SETTINGS,
        }
    )
    try:
        asyncio.run(_measure(args.era, args.calls, args.concurrency, args.passes))
    finally:
        sys.stdout.flush()
        # The box's store and sandbox threads are not shut down here: leave at once.
        os._exit(0)


if __name__ == "__main__":
    main()
