"""Python component tenants, built from source with componentize-py, through a real box: the
official MCP client in all three modes, faults within their limits while another tenant is
served, and kv that survives a restart of the box."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.e2e.clients import MODES, connect, modern_call_tool
from tests.e2e.components_support import BuiltComponents, copy_built
from tests.ops.support import busy_calls
from tests.support.waiting import wait_until

# Whichever test runs first also builds the components (componentize-py and Cranelift for two
# 18 MiB components): past the default 120 s on a loaded 2-core machine, as in the JS twin.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def text_of(result: Any) -> str:
    return str(result.content[0].text)


@pytest.mark.parametrize("mode", MODES)
async def test_pytasks_tools_resource_prompt_and_progress(
    component_box: BoxProcess, component_keys: dict[str, str], mode: str
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    url, key = component_box.url("pytasks"), component_keys["pytasks"]
    async with connect(url, key, mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"add_task", "list_tasks", "complete_task", "review"}
        # JSON Schema from the type hints: Annotated descriptions, defaults, TypedDict output.
        assert tools["add_task"].input_schema["properties"]["title"] == {
            "type": "string",
            "description": "What needs doing",
        }
        assert tools["add_task"].output_schema is not None
        assert tools["review"].input_schema["properties"]["steps"]["default"] == 3

        added = await client.call_tool("add_task", {"title": f"water the plants ({mode})"})
        assert not added.is_error, added
        task = added.structured_content
        assert task is not None
        assert task["done"] is False
        listed = await client.call_tool("list_tasks", {})
        assert task["id"] in [t["id"] for t in listed.structured_content["tasks"]]  # type: ignore[index]
        done = await client.call_tool("complete_task", {"id": task["id"]})
        assert done.structured_content["done"] is True  # type: ignore[index]
        missing = await client.call_tool("complete_task", {"id": 10**9})
        assert missing.is_error
        assert "no task" in text_of(missing)
        wrong = await client.call_tool("complete_task", {"id": "one"})
        assert wrong.is_error
        assert "must be of type integer" in text_of(wrong)

        reviewed = await client.call_tool("review", {"steps": 4}, progress_callback=on_progress)
        assert "in 4 passes" in text_of(reviewed)
        assert [(p, t) for p, t, _ in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
        assert progress[0][2] == "pass 1 of 4"

        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["tasks://summary"]
        summary = await client.read_resource("tasks://summary")
        text = summary.contents[0].text  # type: ignore[union-attr]
        assert text.startswith("# My tasks\n")  # the title comes from tenant.toml [config]
        assert f"- [x] water the plants ({mode})" in text

        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"plan_day"}
        assert [(a.name, a.required) for a in prompts["plan_day"].arguments or []] == [
            ("focus", True),
            ("mood", False),
        ]
        prompt = await client.get_prompt("plan_day", {"focus": "the garden"})
        assert "focus on the garden" in json.dumps(prompt.model_dump())
        with pytest.raises(MCPError, match="needs argument 'focus'"):
            await client.get_prompt("plan_day", {})


@pytest.mark.parametrize(
    ("tenant", "tool", "code", "words"),
    [
        ("pyfaults", "spin", -32052, "wall-clock"),
        ("pyfaults-fuel", "spin", -32051, "fuel"),
        ("pyfaults", "hog", -32053, "memory"),
        # An exception in a tool: the SDK answers with an error naming it; the instance lives.
        ("pyfaults", "boom", -32603, "runtimeerror: boom from the tenant"),
        # An exception past the SDK: the component traps; the box quotes the exception.
        ("pyfaults", "crash", -32050, "crash from the tenant"),
    ],
)
async def test_component_fault_is_a_clear_error_while_another_tenant_is_served(
    component_box: BoxProcess,
    component_keys: dict[str, str],
    tenant: str,
    tool: str,
    code: int,
    words: str,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        fault = asyncio.create_task(
            modern_call_tool(http, component_box.url(tenant), component_keys[tenant], tool, {})
        )
        # The wall-clock spin runs 1.5 s: long enough to see the other tenant served meanwhile.
        runaway = (tenant, tool) == ("pyfaults", "spin")
        if runaway:

            async def running() -> bool:
                return await busy_calls(component_box.base_url, tenant) == 1

            await wait_until(running, what="the runaway call to run", detail=component_box.log)
        other = await modern_call_tool(
            http, component_box.url("notes"), component_keys["notes"], "note_list", {}
        )
        assert "result" in other, other
        if runaway:
            assert not fault.done(), "the fault ended before the other tenant was served"
        reply = await fault
        assert reply["error"]["code"] == code, reply
        assert words in reply["error"]["message"].lower(), reply
        again = await modern_call_tool(
            http, component_box.url(tenant), component_keys[tenant], "ok", {}
        )
        assert again["result"]["content"][0]["text"] == "still serving"


async def test_component_kv_survives_a_restart_of_the_box(
    tmp_path_factory: pytest.TempPathFactory, built_components: BuiltComponents
) -> None:
    workdir = tmp_path_factory.mktemp("component-restart")
    tenants = copy_built(built_components, copy_tenants(workdir / "tenants", ["notes"]))
    box = BoxProcess(
        workdir=workdir,
        tenants_dir=tenants,
        extra_env={"SMCP_BOX_CACHE_DIR": str(built_components.cache)},
    )
    box.start()
    try:
        key = box.create_key("pytasks")
        # One task written in each mode, every one read back in each mode after the restart.
        written: dict[int, str] = {}
        for mode in MODES:
            async with connect(box.url("pytasks"), key, mode) as client:
                title = f"survive the restart ({mode})"
                added = await client.call_tool("add_task", {"title": title})
                written[added.structured_content["id"]] = title  # type: ignore[index]
        assert box.stop() == 0
        box.start()
        for mode in MODES:
            async with connect(box.url("pytasks"), key, mode) as client:
                listed = await client.call_tool("list_tasks", {})
                titles = {t["id"]: t["title"] for t in listed.structured_content["tasks"]}  # type: ignore[index]
                assert {i: titles.get(i) for i in written} == written, mode
        async with connect(box.url("pytasks"), key, "auto") as client:
            # Ids come from kv.incr: the next task continues the sequence.
            nxt = await client.call_tool("add_task", {"title": "after"})
            assert nxt.structured_content["id"] == max(written) + 1  # type: ignore[index]
    finally:
        assert box.stop() == 0, box.log()


async def test_component_calls_are_metered_and_audited_like_core_ones(
    component_box: BoxProcess, component_keys: dict[str, str]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=60) as http:
        url, key = component_box.url("pyfaults-fuel"), component_keys["pyfaults-fuel"]
        assert "result" in await modern_call_tool(http, url, key, "ok", {})
        fault = await modern_call_tool(http, url, key, "spin", {})
        assert fault["error"]["code"] == -32051
        text = (await http.get(f"{component_box.base_url}/metrics")).text
    samples = {
        (sample.name, sample.labels.get("kind")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("tenant") == "pyfaults-fuel"
    }
    assert samples[("smcp_box_module_calls_total", None)] >= 2
    assert samples[("smcp_box_module_call_failures_total", "fuel")] >= 1
    assert samples[("smcp_box_fuel_used_total", None)] > 300_000_000
    # The audit log has the tool call (with its receipt) and the limit hit, as for core modules.
    listed = component_box.cli("audit", "list", "--tenant", "pyfaults-fuel", "--json").stdout
    rows = json.loads(listed)["entries"]
    events = {row["event"] for row in rows}
    assert {"tool.call", "limit.hit"} <= events
    call_row = next(row for row in rows if row["event"] == "tool.call")
    assert call_row["detail"]["receipt"]["fuel"] > 0
