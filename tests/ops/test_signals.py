"""Signals to a real ``smcp-box serve`` subprocess: SIGTERM finishes what is in flight, flushes
the audit log and exits 0; SIGHUP reloads the config and tenants without dropping sessions."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import legacy_headers, legacy_session, modern_call_tool
from tests.ops.support import add_ops_tenant, busy_calls, ops_box
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def audit_rows(proc: BoxProcess) -> list[dict[str, object]]:
    out = proc.cli("audit", "export").stdout
    return [json.loads(line) for line in out.splitlines()]


async def wait_until_busy(proc: BoxProcess, tenant: str) -> None:
    async def busy() -> bool:
        return await busy_calls(proc.base_url, tenant) >= 1

    await wait_until(busy, what=f"a call of {tenant} to reach the module", detail=proc.log)


async def wait_until_refusing(proc: BoxProcess) -> None:
    async def refused() -> bool:
        try:
            async with httpx.AsyncClient() as fresh:
                await fresh.get(f"{proc.base_url}/healthz", timeout=5)
        except httpx.ConnectError:
            return True
        except httpx.HTTPError:
            pass
        return False

    await wait_until(refused, what="the box to refuse new connections", detail=proc.log)


async def wait_for_log(proc: BoxProcess, text: str) -> None:
    await wait_until(lambda: text in proc.log(), what=f"{text!r} in the box's log", detail=proc.log)


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
            # New connections are refused, and the call in flight still gets its answer.
            await wait_until_refusing(proc)
            reply = await call
        assert reply["result"]["content"][0]["text"] == "awake", reply
        code = await asyncio.to_thread(proc.proc.wait, 20)
        assert code == 0, proc.log()
    finally:
        proc.stop()
    # The log says what the stop waited for and when it was done; the access log has the call's
    # line, and the key appears nowhere.
    log = proc.log()
    assert "stopping: draining 1 calls" in log, log
    assert "stopped after " in log, log
    assert log.index("stopping: draining") < log.index("stopped after ")
    assert "logger=smcp_box.access" in log, log
    assert "POST /t/ops/mcp 200" in log, log
    assert key not in log
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
            proc.proc.send_signal(signal.SIGTERM)
            # The call would take 20 s; the box exits after its 1-second grace period, cutting
            # it off (a test timeout of 20 s, not a measure of how fast).
            code = await asyncio.to_thread(proc.proc.wait, 20)
            try:
                reply = await call
            except (httpx.HTTPError, ValueError):
                pass  # the response was cut off (no body, or the connection closed)
            else:
                assert "result" not in reply, reply
        assert code == 0, proc.log()
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
            await wait_for_log(proc, "reloaded tenants")
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
        await wait_for_log(proc, "level=debug")
        assert proc.stop() == 0
    finally:
        proc.stop()
    reloads = [r for r in audit_rows(proc) if r["event"] == "box.reload"]
    assert [r["detail"]["needs_restart"] for r in reloads] == [["store.kv_max_keys"]]  # type: ignore[index]
