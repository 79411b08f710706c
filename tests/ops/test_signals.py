"""Signals to a real ``smcp-box serve`` subprocess: SIGTERM finishes what is in flight, flushes
the audit log and exits 0; SIGHUP reloads the config and tenants without dropping sessions."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import legacy_headers, legacy_session, modern_call_tool
from tests.ops.support import add_ops_tenant, busy_calls, ops_box

pytestmark = pytest.mark.slow


def audit_rows(proc: BoxProcess) -> list[dict[str, object]]:
    out = proc.cli("audit", "export").stdout
    return [json.loads(line) for line in out.splitlines()]


async def wait_until_busy(proc: BoxProcess, tenant: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await busy_calls(proc.base_url, tenant) < 1:
        assert time.monotonic() < deadline, "the call never reached the module"
        await asyncio.sleep(0.02)


async def refuses_connections(proc: BoxProcess, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with httpx.AsyncClient() as fresh:
                await fresh.get(f"{proc.base_url}/healthz", timeout=0.5)
        except httpx.ConnectError:
            return True
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.05)
    return False


async def test_sigterm_finishes_the_call_in_flight_and_exits_0(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    proc = ops_box(workdir, ops_module, module_cache)
    proc.start()
    try:
        key = proc.create_key("ops")
        async with httpx.AsyncClient(timeout=30) as http:
            call = asyncio.create_task(
                modern_call_tool(http, proc.url("ops"), key, "sleep", {"ms": 2000})
            )
            await wait_until_busy(proc, "ops")
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            # New connections are refused at once, while the call is still running.
            assert await refuses_connections(proc)
            assert not call.done()
            reply = await call
        assert reply["result"]["content"][0]["text"] == "awake", reply
        code = await asyncio.to_thread(proc.proc.wait, 20)
        assert code == 0, proc.log()
    finally:
        proc.stop()
    # Every audit row was written before the store closed: the call's, then the stop.
    rows = audit_rows(proc)
    calls = [r for r in rows if r["event"] == "tool.call"]
    assert [c["detail"]["tool"] for c in calls] == ["sleep"]  # type: ignore[index]
    assert rows[-1]["event"] == "box.stop"
    assert proc.cli("audit", "verify").returncode == 0


async def test_sigterm_gives_up_on_calls_after_the_grace_period(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    proc = ops_box(
        workdir,
        ops_module,
        module_cache,
        extra_env={"SMCP_BOX_SERVER_SHUTDOWN_GRACE_S": "1"},
    )
    proc.start()
    try:
        key = proc.create_key("ops")
        async with httpx.AsyncClient(timeout=30) as http:
            call = asyncio.create_task(
                modern_call_tool(http, proc.url("ops"), key, "sleep", {"ms": 20000})
            )
            await wait_until_busy(proc, "ops")
            assert proc.proc is not None
            started = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.proc.wait, 20)
            took = time.monotonic() - started
            try:
                reply = await call
            except (httpx.HTTPError, ValueError):
                pass  # the response was cut off (no body, or the connection closed)
            else:
                assert "result" not in reply, reply
        assert code == 0, proc.log()
        assert took < 8, took
    finally:
        proc.stop()
    assert audit_rows(proc)[-1]["event"] == "box.stop"


async def test_sighup_reloads_config_and_tenants_and_keeps_sessions(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    config = workdir / "config.toml"
    config.write_text('log_level = "info"\n[sandbox]\ntimeout_ms = 5000\n')
    proc = ops_box(workdir, ops_module, module_cache, extra_env={"SMCP_BOX_CONFIG": str(config)})
    proc.start()
    try:
        key = proc.create_key("ops")
        async with httpx.AsyncClient(timeout=30) as http:
            url = proc.url("ops")
            session = await legacy_session(http, url, key)
            slow = await modern_call_tool(http, url, key, "sleep", {"ms": 600})
            assert slow["result"]["content"][0]["text"] == "awake"

            config.write_text(
                'log_level = "debug"\n[sandbox]\ntimeout_ms = 200\n[store]\nkv_max_keys = 5\n'
            )
            add_ops_tenant(proc.tenants_dir, ops_module, name="ops-two", auth="none")
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "reloaded tenants" not in proc.log():
                assert time.monotonic() < deadline, proc.log()
                await asyncio.sleep(0.05)
            log = proc.log()
            assert "configuration reloaded; applied: log_level, sandbox.timeout_ms" in log
            assert "take effect only after a restart: store.kv_max_keys" in log

            # The lowered default limit applies to the next call.
            slow = await modern_call_tool(http, url, key, "sleep", {"ms": 600})
            assert slow["error"]["code"] == -32052, slow
            # The session from before the reload is still served.
            listed = await http.post(
                url,
                json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                headers=legacy_headers(key, session),
            )
            assert listed.status_code == 200, listed.text
            assert "sleep" in listed.text
            # The tenant added to the folder is served.
            hello = await modern_call_tool(http, proc.url("ops-two"), "unused", "hello", {})
            assert hello["result"]["content"][0]["text"] == "hello"
            # Debug logging is on now.
            await http.get(f"{proc.base_url}/healthz")
        deadline = time.monotonic() + 5
        while "level=debug" not in proc.log():
            assert time.monotonic() < deadline, proc.log()
            await asyncio.sleep(0.05)
        assert proc.stop() == 0
    finally:
        proc.stop()
    reloads = [r for r in audit_rows(proc) if r["event"] == "box.reload"]
    assert [r["detail"]["needs_restart"] for r in reloads] == [["store.kv_max_keys"]]  # type: ignore[index]
