"""Tasks on the MCP endpoint (docs/tasks.md): a real box on loopback, a tenant built from
tests/tenancy/fixtures/task_tools.c, raw JSON-RPC over httpx in both eras.

Covers what the conformance suite does not: cancel stopping the module call, a task whose
module traps, the open-task quota, expiry (the box's injected clock moved past the TTL, then
the purge), the audit rows, and the handshake era.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.box import Box
from smcp_box.protocol.tasks import TASKS_EXTENSION
from tests.e2e.boxproc import REPO
from tests.e2e.clients import ACCEPT_BOTH, LEGACY, MODERN, parse_single_response
from tests.ops.support import box_settings, serving
from tests.support.waiting import wait_until

SOURCE = REPO / "tests" / "tenancy" / "fixtures" / "task_tools.c"
NEGOTIATED = {"extensions": {TASKS_EXTENSION: {}}}


class Clock:
    """The box's wall clock, movable forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class TaskBox:
    box: Box
    url: str
    clock: Clock
    http: httpx.AsyncClient

    async def rpc(
        self, method: str, params: dict[str, Any], *, capabilities: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One stateless 2026-07-28 request (the extension negotiated unless told otherwise)."""
        meta = params.setdefault("_meta", {})
        meta["io.modelcontextprotocol/protocolVersion"] = MODERN
        meta["io.modelcontextprotocol/clientInfo"] = {"name": "tasks-test", "version": "1"}
        meta["io.modelcontextprotocol/clientCapabilities"] = (
            NEGOTIATED if capabilities is None else capabilities
        )
        headers = {
            "Content-Type": "application/json",
            "Accept": ACCEPT_BOTH,
            "MCP-Protocol-Version": MODERN,
            "Mcp-Method": method,
        }
        name = params.get("name", params.get("taskId"))
        if isinstance(name, str):
            headers["Mcp-Name"] = name
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return parse_single_response(await self.http.post(self.url, json=body, headers=headers))

    async def start(self, tool: str, arguments: dict[str, Any] | None = None) -> str:
        reply = await self.rpc("tools/call", {"name": tool, "arguments": arguments or {}})
        result = reply["result"]
        assert result["resultType"] == "task", reply
        return str(result["taskId"])

    async def get(self, task_id: str) -> dict[str, Any]:
        return await self.rpc("tasks/get", {"taskId": task_id})

    async def settled(self, task_id: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def finished() -> bool:
            seen.update((await self.get(task_id))["result"])
            return seen["status"] in ("completed", "failed", "cancelled")

        await wait_until(finished, what=f"task {task_id} to finish", detail=lambda: seen)
        return seen


@pytest.fixture(scope="module")
def task_tools_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("task-tools") / "task_tools.wasm"
    subprocess.run(
        ["sh", str(REPO / "sdk/c/cc.sh"), str(out), str(SOURCE)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
async def tb(tmp_path: Path, task_tools_wasm: bytes, module_cache: Path) -> AsyncIterator[TaskBox]:
    folder = tmp_path / "tenants" / "tools"
    folder.mkdir(parents=True)
    (folder / "task_tools.wasm").write_bytes(task_tools_wasm)
    digest = hashlib.sha256(task_tools_wasm).hexdigest()
    (folder / "tenant.toml").write_text(
        f'name = "tools"\nmodule = "task_tools.wasm"\nsha256 = "{digest}"\nauth = "none"\n'
        "[limits]\nfuel = 1000000000000\n"
        "[quotas]\nmax_open_tasks = 2\n"
        "[tools.nap]\ntask_timeout_s = 120\n"
    )
    clock = Clock()
    settings = box_settings(tmp_path, tmp_path / "tenants", module_cache)
    box = await Box.start(settings, clock=clock)
    try:
        async with serving(box) as base, httpx.AsyncClient(timeout=30) as http:
            yield TaskBox(box, f"{base}/t/tools/mcp", clock, http)
    finally:
        await box.stop()


async def audit_events(box: Box) -> list[tuple[str, str | None]]:
    await box.auditor.flush()
    rows = await box.store.audit_page(limit=500)
    return [(row.event, row.outcome) for row in rows]


async def test_cancel_stops_the_running_call_and_is_audited(tb: TaskBox) -> None:
    task_id = await tb.start("nap", {"ms": 60_000})
    assert (await tb.get(task_id))["result"]["status"] == "working"
    await wait_until(
        lambda: tb.box.sandbox.stats("tools").busy_calls == 1, what="the nap to be running"
    )
    ack = await tb.rpc("tasks/cancel", {"taskId": task_id})
    assert ack["result"] == {"resultType": "complete"}
    assert (await tb.get(task_id))["result"]["status"] == "cancelled"
    # The module call stops (its 60 s sleep ends at the next sleep slice).
    await wait_until(lambda: tb.box.sandbox.stats("tools").busy_calls == 0, what="the call to stop")
    # Cancelling again (a terminal task) is the same ack.
    again = await tb.rpc("tasks/cancel", {"taskId": task_id})
    assert again["result"] == {"resultType": "complete"}
    events = await audit_events(tb.box)
    assert ("task.created", "ok") in events
    assert ("task.cancelled", "ok") in events


async def test_a_task_whose_module_traps_fails_with_the_trap(tb: TaskBox) -> None:
    task_id = await tb.start("crash")
    final = await tb.settled(task_id)
    assert final["status"] == "failed"
    assert "result" not in final
    assert final["error"]["code"] == -32050  # ModuleTrapped
    assert "trap" in final["error"]["message"].lower()


async def test_the_open_task_quota(tb: TaskBox) -> None:
    first = await tb.start("nap")
    second = await tb.start("nap")
    refused = await tb.rpc("tools/call", {"name": "nap", "arguments": {}})
    assert refused["error"]["code"] == -32063
    assert refused["error"]["data"]["quota"] == "max_open_tasks"
    assert "max_open_tasks" in refused["error"]["message"]
    # A finished task no longer counts.
    await tb.rpc("tasks/cancel", {"taskId": first})
    third = await tb.start("nap")
    for task_id in (second, third):
        await tb.rpc("tasks/cancel", {"taskId": task_id})


async def test_a_task_expires_after_its_ttl_and_is_purged(tb: TaskBox) -> None:
    task_id = await tb.start("build")
    final = await tb.settled(task_id)
    assert final["status"] == "completed"
    assert final["result"]["content"][0]["text"] == f"built {task_id}"
    ttl_s = final["ttlMs"] / 1000
    tb.clock.offset = ttl_s - 5
    assert (await tb.get(task_id))["result"]["status"] == "completed"  # never early
    tb.clock.offset = ttl_s + 5
    gone = await tb.get(task_id)
    assert gone["error"]["code"] == -32602
    assert await tb.box.purge_tasks() == 1
    assert await tb.box.store.tasks.get("tools", task_id, None) is None


async def test_gating_removed_methods_and_unknown_ids(tb: TaskBox) -> None:
    plain = await tb.rpc("tools/call", {"name": "build", "arguments": {}}, capabilities={})
    assert plain["result"]["content"][0]["text"] == "built now"  # optional: runs synchronously
    gated = await tb.rpc("tasks/get", {"taskId": "x"}, capabilities={})
    assert gated["error"]["code"] == -32021
    assert gated["error"]["data"]["requiredCapabilities"] == NEGOTIATED
    for removed in ("tasks/result", "tasks/list"):
        params: dict[str, Any] = {"taskId": "x"} if removed == "tasks/result" else {}
        assert (await tb.rpc(removed, params))["error"]["code"] == -32601
    assert (await tb.get("no-such-task"))["error"]["code"] == -32602
    # A module that answers "task" where it may not is a bad reply, not a task.
    rogue = await tb.rpc("tools/call", {"name": "rogue", "arguments": {}})
    assert rogue["error"]["code"] == -32603


async def test_the_handshake_era_negotiates_at_initialize(tb: TaskBox) -> None:
    headers = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": NEGOTIATED,
            "clientInfo": {"name": "legacy", "version": "1"},
        },
    }
    opened = await tb.http.post(tb.url, json=init, headers=headers)
    capabilities = parse_single_response(opened)["result"]["capabilities"]
    assert TASKS_EXTENSION in capabilities["extensions"]
    session = {
        **headers,
        "Mcp-Session-Id": opened.headers["mcp-session-id"],
        "MCP-Protocol-Version": LEGACY,
    }

    async def call(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        return parse_single_response(await tb.http.post(tb.url, json=body, headers=session))

    created = (await call(1, "tools/call", {"name": "build", "arguments": {}}))["result"]
    assert created["resultType"] == "task"
    task_id = created["taskId"]

    async def completed() -> bool:
        got = await call(2, "tasks/get", {"taskId": task_id})
        return bool(got["result"]["status"] == "completed")

    await wait_until(completed, what="the legacy-era task to complete")
    got = (await call(3, "tasks/get", {"taskId": task_id}))["result"]
    assert got["result"]["content"][0]["text"] == f"built {task_id}"
