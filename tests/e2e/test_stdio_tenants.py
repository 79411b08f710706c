"""stdio tenants through the whole box: the Go example (built from source here) driven by the
official SDK client in every mode, its kv data across a restart, and the Go fault fixture's
faults as clear JSON-RPC errors while another tenant keeps being served."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.e2e.clients import MODES, connect, modern_headers, modern_request
from tests.ops.support import busy_calls
from tests.support.gowasm import STDIO_FAULTS_SOURCE, TASKS_SOURCE, go_module
from tests.support.waiting import wait_until

FAULT_LIMITS = "memory_mib = 32\nfuel = 1000000000000\ntimeout_ms = 1000\n"


def stdio_tenant(folder: Path, name: str, module: bytes, limits: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.wasm").write_bytes(module)
    (folder / "tenant.toml").write_text(
        f'name = "{name}"\nkind = "stdio"\nmodule = "{name}.wasm"\n'
        f'sha256 = "{hashlib.sha256(module).hexdigest()}"\nauth = "api_key"\n'
        + (f"[limits]\n{limits}" if limits else "")
    )


@pytest.fixture(scope="module")
def stdio_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProcess]:
    workdir = tmp_path_factory.mktemp("stdio-box")
    scratch = workdir / "build"
    scratch.mkdir()
    tasks = go_module(TASKS_SOURCE, scratch)
    faults = go_module(STDIO_FAULTS_SOURCE, scratch)
    tenants = copy_tenants(workdir / "tenants", ["utils"])
    # The example as committed, with its module rebuilt from source.
    shutil.copytree(TASKS_SOURCE, tenants / "tasks", ignore=shutil.ignore_patterns("*.wasm"))
    (tenants / "tasks" / "tasks.wasm").write_bytes(tasks)
    stdio_tenant(tenants / "stdio-faults", "stdio-faults", faults, FAULT_LIMITS)
    proc = BoxProcess(workdir=workdir, tenants_dir=tenants)
    proc.start(timeout_s=120)  # compiles two Go modules (seconds each) on a cold cache
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module")
def stdio_keys(stdio_box: BoxProcess) -> dict[str, str]:
    return {name: stdio_box.create_key(name) for name in ("tasks", "stdio-faults", "utils")}


def text_of(result: Any) -> str:
    return str(result.content[0].text)


@pytest.mark.parametrize("mode", MODES)
async def test_tasks_tools_resource_prompt_and_progress(
    stdio_box: BoxProcess, stdio_keys: dict[str, str], mode: str
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    title = f"call the plumber ({mode})"
    async with connect(stdio_box.url("tasks"), stdio_keys["tasks"], mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"task_add", "task_list", "task_done", "countdown"}
        added = await client.call_tool("task_add", {"title": title})
        assert not added.is_error
        task = added.structured_content
        assert task is not None
        assert task["title"] == title
        assert not task["done"]
        await client.call_tool("task_done", {"id": task["id"]})
        listed = text_of(await client.call_tool("task_list", {}))
        assert f"[x] {task['id']} {title}" in listed.splitlines()
        assert (await client.call_tool("task_done", {"id": 10**6})).is_error

        counted = await client.call_tool("countdown", {"n": 4}, progress_callback=on_progress)
        assert text_of(counted) == "counted down from 4"
        assert progress == [(1, 4, "3 left"), (2, 4, "2 left"), (3, 4, "1 left"), (4, 4, "0 left")]

        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["tasks://all"]
        read = await client.read_resource("tasks://all")
        assert title in read.contents[0].text  # type: ignore[union-attr]

        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["plan_day"]
        prompt = await client.get_prompt("plan_day", {"focus": "the kitchen"})
        said = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert title in said
        assert "Focus on: the kitchen" in said


async def test_tasks_kv_survives_a_box_restart(
    stdio_box: BoxProcess, stdio_keys: dict[str, str]
) -> None:
    # One task written in each mode, every one read back in each mode after the restart.
    titles = {mode: f"remember {uuid.uuid4()} ({mode})" for mode in MODES}
    for mode, title in titles.items():
        async with connect(stdio_box.url("tasks"), stdio_keys["tasks"], mode) as client:
            added = await client.call_tool("task_add", {"title": title})
            assert not added.is_error
    assert stdio_box.stop() == 0, stdio_box.log()
    stdio_box.start(timeout_s=120)
    for mode in MODES:
        async with connect(stdio_box.url("tasks"), stdio_keys["tasks"], mode) as client:
            listed = text_of(await client.call_tool("task_list", {}))
            assert all(title in listed for title in titles.values()), (mode, listed)


async def raw_call(
    http: httpx.AsyncClient, box: BoxProcess, key: str, tenant: str, tool: str, rid: int = 1
) -> tuple[int, dict[str, Any]]:
    body = modern_request(rid, "tools/call", {"name": tool, "arguments": {}})
    response = await http.post(
        box.url(tenant), json=body, headers=modern_headers(key, "tools/call", tool)
    )
    return response.status_code, dict(response.json())


@pytest.mark.parametrize(
    ("tool", "code", "words"),
    [
        ("hang", -32054, "waits for more input without answering"),
        ("garbage", -32054, "not a json-rpc message"),
        ("sleep", -32052, "wall-clock limit of 1000 ms"),
        ("loop", -32052, "wall-clock limit of 1000 ms"),
        ("bomb", -32053, "memory"),
        ("panic", -32050, "boom: the tool failed"),
    ],
)
async def test_stdio_faults_are_clear_errors_and_others_are_served_meanwhile(
    stdio_box: BoxProcess, stdio_keys: dict[str, str], tool: str, code: int, words: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        fault = asyncio.create_task(
            raw_call(http, stdio_box, stdio_keys["stdio-faults"], "stdio-faults", tool)
        )
        if tool in ("sleep", "loop"):  # these run until their deadline: overlap for sure

            async def running() -> bool:
                return await busy_calls(stdio_box.base_url, "stdio-faults") == 1

            await wait_until(running, what=f"the {tool} call to run", detail=stdio_box.log)
        for tenant, name in (("utils", "hash"), ("tasks", "task_list")):
            status, other = await raw_call(http, stdio_box, stdio_keys[tenant], tenant, name)
            assert status == 200
            assert "result" in other, other
        if tool in ("sleep", "loop"):
            assert not fault.done(), "the fault ended before the other tenants were served"
        status, reply = await fault
        assert status == 200, reply  # a tenant's fault is a JSON-RPC error, never a 5xx
        assert reply["error"]["code"] == code, reply
        assert words in reply["error"]["message"].lower(), reply
        assert "stdio-faults" in reply["error"]["message"]
        status, again = await raw_call(
            http, stdio_box, stdio_keys["stdio-faults"], "stdio-faults", "ok"
        )
        assert again["result"]["content"][0]["text"] == "still serving"
