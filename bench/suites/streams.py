"""Idle SSE streams: how many legacy-era GET streams one box holds, and RSS per stream.

Each stream needs its own session (a server may allow one GET stream per session), so the
suite opens ``streams`` sessions (initialize + notifications/initialized), then one GET stream
on each over its own connection, holds them all idle for ``stream_hold_s`` and counts how many
are still open. RSS is read before the sessions, after them and with the streams open, so the
report gives the cost of an idle client (session + stream) and of the stream alone.

The peer: the SDK server (uvicorn) measured the same way with ``peer_streams`` streams (fewer:
the per-stream cost is what is compared, and its sessions are slow to open).

File descriptors: the suite raises this process's RLIMIT_NOFILE before it starts the box,
which inherits it; both ends need one descriptor per stream.

Caps: every stream comes from one loopback address to one tenant, so the box under test is
given per-address connection and stream caps and per-tenant session and stream quotas above
``streams`` (:func:`capacity_settings`); with its defaults it would refuse the 65th stream
(``max_sse_streams_per_address``), which is what it should do to one LAN client, and what this
measurement of capacity is not about.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from bench.mcpclient import Endpoint, call_echo
from bench.peers import payload
from bench.procs import ServerProcess, free_port, python_argv, raise_nofile
from bench.rawhttp import RawConnection
from bench.suites.context import Context
from bench.tenants.build import write_tenant

SESSION_WORKERS = 16
CONNECT_IN_FLIGHT = 128
HEADER_TIMEOUT_S = 30.0


async def _open_sessions(
    port: int, path: str, key: str, count: int
) -> tuple[list[str], Counter[str]]:
    """``count`` legacy sessions (initialize + notifications/initialized) over a few
    kept-alive connections; their ids and a count of failures by kind."""
    sessions: list[str] = []
    failures: Counter[str] = Counter()
    todo = iter(range(count))

    async def worker() -> None:
        conn = RawConnection("127.0.0.1", port)
        try:
            for _ in todo:
                try:
                    status, fields, _body = await conn.request(
                        "POST",
                        path,
                        payload.call_headers("legacy", None, key),
                        payload.initialize_body(),
                    )
                    session = fields.get("mcp-session-id")
                    if status != 200 or not session:
                        failures[f"initialize {status}"] += 1
                        continue
                    status, _fields, _body = await conn.request(
                        "POST",
                        path,
                        payload.call_headers("legacy", session, key),
                        payload.INITIALIZED_BODY,
                    )
                    if status not in (200, 202):
                        failures[f"initialized {status}"] += 1
                        continue
                    sessions.append(session)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    failures[type(exc).__name__] += 1
                    await conn.close()
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(SESSION_WORKERS)))
    return sessions, failures


class Streams:
    """Open GET streams, each drained by its own task until closed by either side."""

    def __init__(self, port: int, path: str, key: str) -> None:
        self.port, self.path, self.key = port, path, key
        self.open = 0
        self.closed_early = 0
        self.failures: Counter[str] = Counter()
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._gate = asyncio.Semaphore(CONNECT_IN_FLIGHT)
        self.stopping = False

    def _request(self, session: str) -> bytes:
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.key}\r\nAccept: text/event-stream\r\n"
            f"Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: {payload.LEGACY_VERSION}\r\n"
            "\r\n"
        ).encode()

    async def _one(self, session: str, opened: asyncio.Event) -> None:
        try:
            async with self._gate:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.writers.append(writer)
                writer.write(self._request(session))
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT_S)
            status = head.split(b" ", 2)[1].decode()
            if status != "200" or b"text/event-stream" not in head.lower():
                self.failures[f"GET {status}"] += 1
                return
            self.open += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            self.failures[type(exc).__name__] += 1
            return
        finally:
            opened.set()
        try:
            while await reader.read(4096):
                pass
        except OSError:
            pass
        if not self.stopping:
            self.open -= 1
            self.closed_early += 1

    async def open_all(self, sessions: list[str]) -> None:
        events = []
        for session in sessions:
            opened = asyncio.Event()
            events.append(opened)
            self.tasks.append(asyncio.create_task(self._one(session, opened)))
        await asyncio.gather(*(event.wait() for event in events))

    async def close_all(self) -> None:
        self.stopping = True
        for writer in self.writers:
            writer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def measure(
    ctx: Context, label: str, port: int, path: str, key: str, count: int, rss: Callable[[], int]
) -> dict[str, object]:
    """Open ``count`` sessions and a GET stream on each, hold them, and read RSS around it."""
    rss_base = rss()
    ctx.log(f"streams ({label}): opening {count} sessions")
    started = time.monotonic()
    sessions, session_failures = asyncio.run(_open_sessions(port, path, key, count))
    sessions_s = time.monotonic() - started
    rss_sessions = rss()
    ctx.log(f"streams ({label}): opening {len(sessions)} GET streams")

    async def hold() -> tuple[Streams, float, int]:
        streams = Streams(port, path, key)
        began = time.monotonic()
        await streams.open_all(sessions)
        open_s = time.monotonic() - began
        await asyncio.sleep(ctx.sizes.stream_hold_s)
        held_rss = rss()
        await streams.close_all()
        return streams, open_s, held_rss

    streams, open_s, rss_streams = asyncio.run(hold())
    held = streams.open
    per_client = (rss_streams - rss_base) / held / 1024 if held else None
    per_stream = (rss_streams - rss_sessions) / held / 1024 if held else None
    return {
        "requested": count,
        "sessions": len(sessions),
        "held": held,
        "closed_early": streams.closed_early,
        "failures": dict(session_failures + streams.failures),
        "sessions_s": round(sessions_s, 2),
        "open_s": round(open_s, 2),
        "rss_base_mib": round(rss_base / 2**20, 1),
        "rss_sessions_mib": round(rss_sessions / 2**20, 1),
        "rss_streams_mib": round(rss_streams / 2**20, 1),
        "kib_per_stream_with_session": round(per_client, 1) if per_client is not None else None,
        "kib_per_stream_only": round(per_stream, 1) if per_stream is not None else None,
    }


def capacity_settings(streams: int) -> dict[str, str]:
    """SMCP_BOX_* settings that let one address hold ``streams`` sessions and streams."""
    room = str(streams + 1024)
    return {
        "SMCP_BOX_SERVER_MAX_CONNECTIONS_PER_ADDRESS": room,
        "SMCP_BOX_SERVER_MAX_SSE_STREAMS_PER_ADDRESS": room,
        "SMCP_BOX_QUOTAS_MAX_SESSIONS": room,
        "SMCP_BOX_QUOTAS_MAX_SSE_STREAMS": room,
    }


def run(ctx: Context) -> dict[str, object]:
    sizes = ctx.sizes
    nofile = raise_nofile(2 * sizes.streams + 2048)
    tenants_dir = ctx.scratch("streams/tenants")
    write_tenant(tenants_dir, "echo", ctx.echo_wasm)
    with ctx.box("box-streams", tenants_dir, **capacity_settings(sizes.streams)) as box:
        box.start_box()
        key = box.create_key("echo")
        with httpx.Client(timeout=30) as client:
            for _ in range(5):
                call_echo(client, Endpoint(box.url("echo"), "modern", key=key))
        result = measure(ctx, "box", box.port, "/t/echo/mcp", key, sizes.streams, box.rss)
    peer_count = min(sizes.streams, sizes.peer_streams)
    port = free_port()
    sdk = ServerProcess(
        "sdk-streams",
        python_argv("bench.peers.sdk_server", "--port", str(port)),
        ctx.scratch("streams"),
    )
    sdk.port = port
    with sdk:
        sdk.start()
        peer = measure(ctx, "SDK server", port, "/mcp", "unused", peer_count, sdk.rss)
    result["nofile_limit"] = nofile
    result["peer_sdk"] = peer
    if peer["kib_per_stream_with_session"] and result["kib_per_stream_with_session"]:
        result["peer_kib_over_box"] = round(
            peer["kib_per_stream_with_session"] / result["kib_per_stream_with_session"], 2
        )
    return result
