"""A real box, in this process, with its admin API served by Hypercorn on a real Unix socket.

Shared by the admin API, CLI and TUI tests. The box serves copies of the repository's example
tenants, so tests may add, change and remove tenants freely.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.admin.client import AdminClient
from smcp_box.admin.server import start_admin
from smcp_box.box import Box
from smcp_box.config import Settings, load_settings
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_TENANTS = ("notes", "utils")


def copy_example_tenants(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_TENANTS:
        shutil.copytree(REPO / "tenants" / name, dest / name)
    return dest


def short_runtime_dir() -> Path:
    """Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer."""
    return Path(tempfile.mkdtemp(prefix="smcp-", dir="/tmp"))


def box_settings(
    workdir: Path, cache_dir: Path, runtime_dir: Path, overrides: dict[str, Any] | None = None
) -> Settings:
    """``overrides``: more settings by dotted name (``"cluster.box_id"``)."""
    return load_settings(
        None,
        environ={},
        overrides={
            "state_dir": str(workdir / "state"),
            "cache_dir": str(cache_dir),
            "runtime_dir": str(runtime_dir),
            "tenants_dir": str(copy_example_tenants(workdir / "tenants")),
            **(overrides or {}),
        },
    )


@dataclass
class RunningBox:
    box: Box
    settings: Settings
    socket_path: Path
    client: AdminClient
    #: Set it (and await ``admin_task``) to stop only the admin API, as if the box went away.
    stop_admin: asyncio.Event
    admin_task: asyncio.Task[None]

    @property
    def tenants_dir(self) -> Path:
        return self.settings.tenants_path()


@contextlib.asynccontextmanager
async def running_box(
    workdir: Path,
    cache_dir: Path,
    before_start: Callable[[Path], None] | None = None,
    overrides: dict[str, Any] | None = None,
) -> AsyncIterator[RunningBox]:
    """``before_start`` may change the tenants folder before the box reads it; ``overrides``
    are more settings (see :func:`box_settings`)."""
    runtime_dir = short_runtime_dir()
    settings = box_settings(workdir, cache_dir, runtime_dir, overrides)
    if before_start is not None:
        before_start(settings.tenants_path())
    socket_path = runtime_dir / "admin.sock"
    box = await Box.start(settings)
    stop = asyncio.Event()
    try:
        server = start_admin(box, stop.wait)
    except BaseException:
        await box.stop()
        raise
    client = AdminClient(socket_path)
    try:
        yield RunningBox(box, settings, socket_path, client, stop, server)
    finally:
        await client.aclose()
        stop.set()
        await asyncio.wait_for(server, 10)
        await box.stop()
        shutil.rmtree(runtime_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def serving_mcp(rb: RunningBox) -> AsyncIterator[str]:
    """The box's MCP app on a free loopback port, for tests that need real traffic."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from smcp_box.web.app import create_app
    from tests.e2e.boxproc import free_port

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            create_app(rb.box.settings, rb.box.app_services()), config, shutdown_trigger=stop.wait
        )
    )  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:

            async def answers() -> bool:
                try:
                    await probe.get(f"{base}/healthz")
                except httpx.TransportError:
                    return False
                return True

            await wait_until(answers, what=f"the MCP app to answer on {base}", interval=0.02)
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def mcp_session(http: httpx.AsyncClient, url: str, key: str | None = None) -> dict[str, str]:
    """Initialize a legacy-era session; returns the headers for its next requests."""
    headers = dict(MCP_HEADERS)
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "admin-tests", "version": "1"},
        },
    }
    response = await http.post(url, headers=headers, json=init)
    response.raise_for_status()
    headers["mcp-session-id"] = response.headers["mcp-session-id"]
    headers["mcp-protocol-version"] = "2025-11-25"
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    (await http.post(url, headers=headers, json=initialized)).raise_for_status()
    return headers


async def call_tool(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    name: str,
    arguments: dict[str, object],
) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return await http.post(url, headers=headers, json=body)


def count_follow_polls(rb: RunningBox, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the ``since_id`` of every audit page the box reads to follow the log (the reads
    of a plain ``/audit`` page pass none): a test sees a follow request parked and polling."""
    polls: list[int] = []
    read_page = rb.box.store.audit_page

    async def counting(**query: Any) -> Any:
        if query.get("since_id") is not None:
            polls.append(query["since_id"])
        return await read_page(**query)

    monkeypatch.setattr(rb.box.store, "audit_page", counting)
    return polls
