"""The task runner with a real wasm tenant (fixtures/task_tools.c, built from source) and a
real SQLite store: results, traps, protocol and tool errors, cancel, timeout, input rounds,
quota, shutdown and restart."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.config import SandboxSettings, TaskSettings
from smcp_box.errors import CALL_TIMEOUT, MODULE_TRAPPED, ConfigError, TaskQuotaExceeded
from smcp_box.sandbox import Sandbox
from smcp_box.seams import CallContext
from smcp_box.store import Store
from smcp_box.tenancy.registry import TenantRegistry
from smcp_box.tenancy.runtime import WasmTenant
from smcp_box.tenancy.tasks import (
    INTERRUPTED_REASON,
    TaskRunner,
    TaskTerms,
    parse_tool_tables,
    task_terms,
)

REPO = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).parent / "fixtures" / "task_tools.c"
KEY = bytes(range(32))
TERMS = TaskTerms(ttl_ms=60_000, poll_interval_ms=500, timeout_s=30, max_open=10)
VERSION = "2026-07-28"


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


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


@pytest.fixture
def tenant(task_tools_wasm: bytes, sandbox: Sandbox, tmp_path: Path) -> WasmTenant:
    folder = tmp_path / "tenants" / "tools"
    folder.mkdir(parents=True)
    (folder / "task_tools.wasm").write_bytes(task_tools_wasm)
    digest = hashlib.sha256(task_tools_wasm).hexdigest()
    (folder / "tenant.toml").write_text(
        f'name = "tools"\nmodule = "task_tools.wasm"\nsha256 = "{digest}"\n'
        "[limits]\nfuel = 1000000000000\n"
        "[tools.spin]\ntask_timeout_s = 1\n"
    )
    registry = TenantRegistry(
        sandbox=sandbox,
        kv=None,  # type: ignore[arg-type]  # the module imports no kv function
        defaults=SandboxSettings(),
        clock=time.time,
    )
    assert registry.load_folder(folder.parent).loaded == ["tools"]
    loaded = registry.get("tools")
    assert isinstance(loaded, WasmTenant)
    return loaded


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "box.db", KEY)
    yield opened
    await opened.close()


@pytest.fixture
async def runner(store: Store) -> AsyncIterator[TaskRunner]:
    made = TaskRunner(store.tasks)
    yield made
    await made.close()


def call(tool: str, **arguments: object) -> dict[str, object]:
    return {"name": tool, "arguments": dict(arguments)}


async def run(runner: TaskRunner, tenant: WasmTenant, tool: str, **arguments: object) -> str:
    record = await runner.start(
        tenant, call(tool, **arguments), TERMS, owner="alice", protocol_version=VERSION
    )
    return record.task_id


async def test_a_task_completes_with_the_module_result(
    runner: TaskRunner, tenant: WasmTenant
) -> None:
    record = await runner.start(
        tenant, call("echo", text="hi"), TERMS, owner="alice", protocol_version=VERSION
    )
    assert record.status == "working"
    # Durable before the id is handed out: a get right away finds it.
    assert await runner.get("tools", record.task_id, "alice") is not None
    await runner.settled(record.task_id)
    done = await runner.get("tools", record.task_id, "alice")
    assert done is not None
    assert done.status == "completed"
    assert done.error is None
    assert done.result is not None
    assert done.result["content"] == [{"type": "text", "text": f"echo:hi task:{record.task_id}"}]
    assert runner.running == 0


async def test_a_trapping_module_fails_the_task(runner: TaskRunner, tenant: WasmTenant) -> None:
    task_id = await run(runner, tenant, "trap")
    await runner.settled(task_id)
    failed = await runner.get("tools", task_id, "alice")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.result is None
    assert failed.error is not None
    assert failed.error["code"] == MODULE_TRAPPED


async def test_a_protocol_error_fails_and_a_tool_error_completes(
    runner: TaskRunner, tenant: WasmTenant
) -> None:
    failing = await run(runner, tenant, "fail")
    erring = await run(runner, tenant, "oops")
    await runner.settled(failing)
    await runner.settled(erring)
    failed = await runner.get("tools", failing, "alice")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == {"code": -32603, "message": "fail: a protocol error"}
    completed = await runner.get("tools", erring, "alice")
    assert completed is not None
    assert completed.status == "completed"
    assert completed.result is not None
    assert completed.result["isError"] is True


async def test_cancel_stops_the_running_call(runner: TaskRunner, tenant: WasmTenant) -> None:
    task_id = await run(runner, tenant, "spin", ms=0)  # spins until stopped
    assert runner.running == 1
    cancelled = await runner.cancel("tools", task_id, "alice")
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    await runner.settled(task_id)
    assert runner.running == 0
    after = await runner.get("tools", task_id, "alice")
    assert after is not None
    assert after.status == "cancelled"
    # Cancelling again, or another caller's cancel, changes nothing.
    again = await runner.cancel("tools", task_id, "alice")
    assert again is not None
    assert again.status == "cancelled"
    assert await runner.cancel("tools", task_id, "mallory") is None
    # The tenant's call slot was given back: another task runs to completion.
    echo = await run(runner, tenant, "echo", text="after")
    await runner.settled(echo)
    done = await runner.get("tools", echo, "alice")
    assert done is not None
    assert done.status == "completed"


async def test_a_task_past_its_wall_clock_fails_naming_the_setting(
    runner: TaskRunner, tenant: WasmTenant
) -> None:
    terms = task_terms(TaskSettings(), tenant.manifest.task_timeouts, "spin", max_open=10)
    assert terms.timeout_s == 1  # tenant.toml [tools.spin] task_timeout_s
    record = await runner.start(
        tenant, call("spin", ms=0), terms, owner="alice", protocol_version=VERSION
    )
    await runner.settled(record.task_id)
    failed = await runner.get("tools", record.task_id, "alice")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["code"] == CALL_TIMEOUT
    assert "[tools.spin]" in failed.error["message"]
    assert "task_timeout_s" in failed.error["message"]
    assert failed.error["data"] == {"tenant": "tools", "limit_s": 1.0}


async def test_input_rounds_resume_when_every_input_is_answered(
    runner: TaskRunner, tenant: WasmTenant
) -> None:
    task_id = await run(runner, tenant, "ask")
    await runner.settled(task_id)
    parked = await runner.get("tools", task_id, "alice")
    assert parked is not None
    assert parked.status == "input_required"
    assert sorted(parked.input_requests) == ["a", "b"]
    assert parked.input_requests["a"]["method"] == "elicitation/create"

    partial = await runner.update(
        tenant, task_id, {"a": {"value": "x"}}, owner="alice", protocol_version=VERSION
    )
    assert partial is not None
    assert partial.status == "input_required"
    assert list(partial.input_requests) == ["b"]
    assert runner.running == 0

    await runner.update(
        tenant, task_id, {"b": {"value": "y"}}, owner="alice", protocol_version=VERSION
    )
    await runner.settled(task_id)
    done = await runner.get("tools", task_id, "alice")
    assert done is not None
    assert done.status == "completed"
    assert done.result is not None
    assert done.result["content"] == [{"type": "text", "text": "a=x b=y state=round-1"}]


async def test_the_open_task_quota_refuses_one_more(runner: TaskRunner, tenant: WasmTenant) -> None:
    terms = TaskTerms(ttl_ms=60_000, poll_interval_ms=500, timeout_s=30, max_open=1)
    first = await runner.start(
        tenant, call("spin", ms=0), terms, owner="alice", protocol_version=VERSION
    )
    with pytest.raises(TaskQuotaExceeded, match="max_open_tasks"):
        await runner.start(tenant, call("echo"), terms, owner="bob", protocol_version=VERSION)
    await runner.cancel("tools", first.task_id, "alice")
    await runner.settled(first.task_id)
    second = await runner.start(tenant, call("echo"), terms, owner="bob", protocol_version=VERSION)
    await runner.settled(second.task_id)


async def test_shutdown_fails_running_tasks_with_a_reason(store: Store, tenant: WasmTenant) -> None:
    runner = TaskRunner(store.tasks)
    task_id = await run(runner, tenant, "spin", ms=0)
    await runner.close()
    failed = await store.tasks.get("tools", task_id, "alice")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == {"code": -32603, "message": INTERRUPTED_REASON}


async def test_after_a_restart_running_tasks_fail_and_waiting_ones_resume(
    tmp_path: Path, tenant: WasmTenant
) -> None:
    path = tmp_path / "restart.db"
    before = await Store.open(path, KEY)
    first = TaskRunner(before.tasks)
    waiting = await run(first, tenant, "ask")
    await first.settled(waiting)
    # A crash: the row of a call that was running stays "working", nobody records its end.
    crashed = await before.tasks.create(
        "tools", "alice", "spin", call("spin"), ttl_ms=60_000, poll_interval_ms=500,
        timeout_s=30, max_open=10,
    )  # fmt: skip
    await before.close()

    after = await Store.open(path, KEY)
    try:
        runner = TaskRunner(after.tasks)
        assert await runner.recover() == 1
        lost = await runner.get("tools", crashed.task_id, "alice")
        assert lost is not None
        assert lost.status == "failed"
        assert lost.error == {"code": -32603, "message": INTERRUPTED_REASON}
        answers = {"a": {"value": "1"}, "b": {"value": "2"}}
        await runner.update(tenant, waiting, answers, owner="alice", protocol_version=VERSION)
        await runner.settled(waiting)
        done = await runner.get("tools", waiting, "alice")
        assert done is not None
        assert done.status == "completed"
        assert done.result is not None
        assert done.result["content"] == [{"type": "text", "text": "a=1 b=2 state=round-1"}]
        await runner.close()
    finally:
        await after.close()


async def test_the_c_sdk_declares_task_support_and_escalates(tenant: WasmTenant) -> None:
    """The module side of docs/tasks.md: execution.taskSupport in tools/list, the escalation
    reply when the box allows it, the task id in the background call."""

    async def ask(params: dict[str, object]) -> dict[str, Any]:
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        reply = await tenant.call(message, CallContext("tools", VERSION, _drop))
        assert reply is not None
        return reply

    listing = await tenant.call(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, CallContext("tools", VERSION, _drop)
    )
    assert listing is not None
    tools = {tool["name"]: tool for tool in listing["result"]["tools"]}
    assert tools["build"]["execution"] == {"taskSupport": "optional"}
    assert "execution" not in tools["echo"]
    allowed = {**call("build"), "_meta": {"smcp-box/task": {"escalate": "allowed"}}}
    assert (await ask(allowed))["result"] == {"resultType": "task"}
    running = {**call("build"), "_meta": {"smcp-box/task": {"taskId": "t-1"}}}
    assert (await ask(running))["result"]["content"][0]["text"] == "built t-1"
    assert (await ask(call("build")))["result"]["content"][0]["text"] == "built now"
    refused = await ask(call("rogue"))
    assert refused["error"]["code"] == -32603
    assert "smcp_task_may_escalate" in refused["error"]["message"]


async def test_a_module_escalating_inside_its_task_fails_it(
    runner: TaskRunner, tenant: WasmTenant
) -> None:
    """A task's call carries a taskId, not escalate: allowed, so the SDK refuses to escalate
    and the task fails with that protocol error."""
    task_id = await run(runner, tenant, "rogue")
    await runner.settled(task_id)
    failed = await runner.get("tools", task_id, "alice")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["code"] == -32603


async def _drop(_message: dict[str, Any]) -> None:
    return None


def test_tool_tables_are_checked() -> None:
    assert parse_tool_tables({"build": {"task_timeout_s": 120}, "other": {}}) == {"build": 120}
    with pytest.raises(ConfigError, match="out of range"):
        parse_tool_tables({"build": {"task_timeout_s": 100_000}})
    with pytest.raises(ConfigError, match="not an integer"):
        parse_tool_tables({"build": {"task_timeout_s": "long"}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_tool_tables({"build": {"task": "required"}})
    with pytest.raises(ConfigError, match="must be a table"):
        parse_tool_tables({"build": 5})


def test_terms_hold_a_tool_timeout_to_the_box_bound() -> None:
    settings = TaskSettings(ttl_s=120, poll_interval_ms=250, default_timeout_s=30, max_timeout_s=60)
    terms = task_terms(settings, {"slow": 45}, "other", max_open=7)
    assert terms == TaskTerms(ttl_ms=120_000, poll_interval_ms=250, timeout_s=30, max_open=7)
    assert task_terms(settings, {"slow": 45}, "slow", max_open=7).timeout_s == 45
    with pytest.raises(ConfigError, match="max_timeout_s"):
        task_terms(settings, {"slow": 90}, "slow", max_open=7)
