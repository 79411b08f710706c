"""The admin socket itself: where it is, who may use it, and what happens around it."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import httpx
import pytest

from smcp_box.admin.client import AdminClient
from smcp_box.admin.server import bind_admin_socket, start_admin
from smcp_box.errors import AdminRequestFailed, AdminUnavailable, ConfigError
from tests.admin.support import RunningBox, short_runtime_dir
from tests.e2e.boxproc import free_port


async def test_socket_has_mode_0660(rb: RunningBox) -> None:
    mode = os.stat(rb.socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


async def test_no_temporary_socket_files_are_left(rb: RunningBox) -> None:
    assert sorted(p.name for p in rb.socket_path.parent.iterdir()) == ["admin.sock"]


async def test_a_second_box_cannot_take_a_live_socket(rb: RunningBox) -> None:
    with pytest.raises(ConfigError, match="already answers on the admin socket"):
        start_admin(rb.box, asyncio.Event().wait, socket_path=rb.socket_path)
    assert (await rb.client.status())["version"]


async def test_a_stale_socket_file_is_replaced() -> None:
    runtime = short_runtime_dir()
    path = runtime / "admin.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crashed box leaves behind
    fresh = bind_admin_socket(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        fresh.close()


async def test_a_regular_file_in_the_way_is_an_error() -> None:
    path = short_runtime_dir() / "admin.sock"
    path.write_text("not a socket")
    with pytest.raises(ConfigError, match="not a socket"):
        bind_admin_socket(path)


async def test_socket_is_removed_on_shutdown(rb: RunningBox, tmp_path: Path) -> None:
    path = short_runtime_dir() / "other.sock"
    stop = asyncio.Event()
    task = start_admin(rb.box, stop.wait, socket_path=path)
    assert path.exists()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not path.exists()


async def test_client_says_the_box_is_not_running_without_a_socket() -> None:
    path = short_runtime_dir() / "admin.sock"
    async with AdminClient(path) as client:
        with pytest.raises(AdminUnavailable, match="the box is not running: there is no admin"):
            await client.status()


async def test_client_says_the_box_is_not_running_when_refused() -> None:
    path = short_runtime_dir() / "admin.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(path))
    leftover.close()
    async with AdminClient(path) as client:
        with pytest.raises(AdminUnavailable, match="nothing answers"):
            await client.status()


async def test_unknown_route_is_a_json_404(rb: RunningBox) -> None:
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.request("GET", "/nope")
    assert caught.value.status == 404
    assert "no admin API route GET /v1/nope" in caught.value.message


# --- optional TCP binding ----------------------------------------------------------------

TOKEN = "t" * 40


async def test_tcp_binding_needs_a_token(rb: RunningBox) -> None:
    with pytest.raises(ConfigError, match="only with an admin token"):
        start_admin(
            rb.box,
            asyncio.Event().wait,
            socket_path=short_runtime_dir() / "a.sock",
            tcp_bind=f"127.0.0.1:{free_port()}",
        )


async def test_tcp_binding_refuses_requests_without_the_token(rb: RunningBox) -> None:
    port = free_port()
    stop = asyncio.Event()
    task = start_admin(
        rb.box,
        stop.wait,
        socket_path=short_runtime_dir() / "a.sock",
        tcp_bind=f"127.0.0.1:{port}",
        token=TOKEN,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as raw:
            bare = await raw.get("/v1/status")
            wrong = await raw.get("/v1/status", headers={"authorization": "Bearer " + "x" * 40})
        assert bare.status_code == 401
        assert wrong.status_code == 401
        assert "admin token" in bare.json()["message"]
        async with AdminClient(base_url=url, token=TOKEN) as client:
            assert (await client.status())["version"]
        denied = (await rb.client.audit(event="admin.auth_failure"))["entries"]
        assert len(denied) == 2
        assert denied[0]["source_ip"] == "127.0.0.1"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_too_long_socket_path_is_a_clear_error() -> None:
    path = short_runtime_dir() / ("x" * 120) / "admin.sock"
    with pytest.raises(ConfigError, match="longer than the 107 bytes"):
        bind_admin_socket(path)


async def test_the_log_names_the_admin_socket_not_its_temporary_name(
    tmp_path: Path, module_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: start-up printed `Running on http://unix:.smcp-box/run/.40746d`, the name
    the socket had before its atomic rename."""
    from tests.admin.support import running_box

    caplog.set_level("INFO")
    async with running_box(tmp_path, module_cache) as running:
        # A request answered proves the admin server is up, so its start-up lines are out.
        assert (await running.client.status())["version"]
        lines = [record.getMessage() for record in caplog.records]
        temporary = [line for line in lines if "unix:" in line or "/." in line]
        assert temporary == []
        assert any(str(running.socket_path) in line for line in lines)
