"""Serve an ASGI app with a real Hypercorn on a free loopback port, for in-process tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from smcp_box.web.connections import EXTENSION_KEY, configure_hypercorn


@dataclass
class LoopbackServer:
    port: int
    #: Set it to stop the server (its task then ends, within the graceful timeout).
    stop: asyncio.Event
    task: asyncio.Task[None]


@asynccontextmanager
async def loopback_server(
    app: Any, configure: Callable[[Config], None] | None = None
) -> AsyncIterator[LoopbackServer]:
    """Serve ``app`` until the block ends (or ``stop`` is set); ``configure`` may change the
    Hypercorn config first (after the app's own connection guard is applied)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = Config()
    # Hypercorn adopts (and closes) the listening socket: no port race between bind and serve,
    # and the port accepts connections before serve() runs.
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 2.0
    config.accesslog = None
    config.errorlog = "-"
    # As ``smcp-box serve`` does: the app's per-address caps and header deadline.
    guard = getattr(app, "extensions", {}).get(EXTENSION_KEY)
    if guard is not None:
        configure_hypercorn(config, guard)
    if configure is not None:
        configure(config)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        yield LoopbackServer(port, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, config.graceful_timeout + 10)


@asynccontextmanager
async def serve_on_loopback(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:PORT``).

    An app from ``create_app`` is served with its connection guard, as the box serves it."""
    async with loopback_server(app) as server:
        yield f"http://127.0.0.1:{server.port}"
