"""JavaScript component tenants, built from source with componentize-js, through a real box: the
official MCP client in all three modes, faults within their limits while another tenant is
served, and kv that survives a restart of the box. The twin of test_components.py (Python)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from smcp_box.errors import ConfigError
from smcp_box.ops.authoring import build_tenant, new_tenant
from smcp_box.protocol.tasks import TASKS_EXTENSION
from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.e2e.clients import (
    MODES,
    connect,
    modern_call_tool,
    modern_headers,
    modern_request,
    parse_single_response,
)
from tests.e2e.components_support import BuiltComponents, copy_built
from tests.ops.support import busy_calls
from tests.support.waiting import wait_until

# The first test also builds both components (npm ci of the toolchain, componentize-js and
# Cranelift for two 12 MB components: ~1-3 min on a loaded 2-core machine); the rest take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def text_of(result: Any) -> str:
    return str(result.content[0].text)


@pytest.mark.parametrize("mode", MODES)
async def test_jsnotes_tools_resources_prompt_and_progress(
    js_box: BoxProcess, js_keys: dict[str, str], mode: str
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with connect(js_box.url("jsnotes"), js_keys["jsnotes"], mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"add_note", "list_notes", "delete_note", "reindex"}
        # The schemas are the ones app.js gives, as given.
        assert tools["add_note"].input_schema["properties"]["text"] == {
            "type": "string",
            "description": "The note's text",
        }
        assert tools["add_note"].output_schema is not None
        assert tools["reindex"].title == "Rebuild the tag index"
        assert tools["delete_note"].annotations is not None
        assert tools["delete_note"].annotations.destructive_hint is True

        added = await client.call_tool("add_note", {"text": f"buy #seeds for the #garden {mode}"})
        assert not added.is_error, added
        note = added.structured_content
        assert note is not None
        assert note["tags"] == ["seeds", "garden"]
        assert note["created_ms"] > 1_700_000_000_000  # the box's clock, through the SDK
        listed = await client.call_tool("list_notes", {"tag": "garden"})
        assert note["id"] in [n["id"] for n in listed.structured_content["notes"]]  # type: ignore[index]
        missing = await client.call_tool("delete_note", {"id": 10**9})
        assert missing.is_error
        assert text_of(missing) == f"no note {10**9}"
        # The SDK checks arguments against the schema before the tool runs.
        wrong = await client.call_tool("delete_note", {"id": "one"})
        assert wrong.is_error
        assert text_of(wrong) == "argument 'id' must be of type integer"
        unknown = await client.call_tool("add_note", {"text": "x", "colour": "red"})
        assert unknown.is_error
        assert text_of(unknown) == "unknown argument 'colour'"

        reindexed = await client.call_tool("reindex", {"batches": 4}, progress_callback=on_progress)
        assert "in 4 batches" in text_of(reindexed)
        assert [(p, t) for p, t, _ in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
        assert progress[0][2] == "batch 1 of 4"

        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["notes://all"]
        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["notes://note/{id}"]
        everything = await client.read_resource("notes://all")
        text = everything.contents[0].text  # type: ignore[union-attr]
        assert text.startswith("# My notes\n")  # the title comes from tenant.toml [config]
        assert f"- buy #seeds for the #garden {mode} (#{note['id']})" in text
        one = await client.read_resource(f"notes://note/{note['id']}")
        assert json.loads(one.contents[0].text)["id"] == note["id"]  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="unknown resource"):
            await client.read_resource("notes://nothing")

        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"summarize"}
        assert [(a.name, a.required) for a in prompts["summarize"].arguments or []] == [
            ("style", True),
            ("tag", False),
        ]
        prompt = await client.get_prompt("summarize", {"style": "terse", "tag": "seeds"})
        dumped = json.dumps(prompt.model_dump())
        assert "in a terse style" in dumped
        assert f"buy #seeds for the #garden {mode}" in dumped
        with pytest.raises(MCPError, match="needs argument 'style'"):
            await client.get_prompt("summarize", {})


@pytest.mark.parametrize(
    ("tenant", "tool", "code", "words"),
    [
        ("jsfaults", "spin", -32052, "wall-clock"),
        ("jsfaults-fuel", "spin", -32051, "fuel"),
        ("jsfaults", "hog", -32053, "memory"),
        # An error thrown in a tool: the SDK answers with an error naming it; the instance lives.
        ("jsfaults", "boom", -32603, "rangeerror: boom from the tenant"),
        # An error thrown out of the export: the component traps; the box quotes the message.
        ("jsfaults", "crash", -32050, "crash from the tenant"),
    ],
)
async def test_js_fault_is_a_clear_error_while_another_tenant_is_served(
    js_box: BoxProcess,
    js_keys: dict[str, str],
    tenant: str,
    tool: str,
    code: int,
    words: str,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        fault = asyncio.create_task(
            modern_call_tool(http, js_box.url(tenant), js_keys[tenant], tool, {})
        )
        # The wall-clock spin runs 1.5 s: long enough to see the other tenant served meanwhile.
        runaway = (tenant, tool) == ("jsfaults", "spin")
        if runaway:

            async def running() -> bool:
                return await busy_calls(js_box.base_url, tenant) == 1

            await wait_until(running, what="the runaway call to run", detail=js_box.log)
        other = await modern_call_tool(http, js_box.url("notes"), js_keys["notes"], "note_list", {})
        assert "result" in other, other
        if runaway:
            assert not fault.done(), "the fault ended before the other tenant was served"
        reply = await fault
        assert reply["error"]["code"] == code, reply
        assert words in reply["error"]["message"].lower(), reply
        again = await modern_call_tool(http, js_box.url(tenant), js_keys[tenant], "ok", {})
        assert again["result"]["content"][0]["text"] == "still serving"


async def test_js_component_kv_survives_a_restart_of_the_box(
    tmp_path_factory: pytest.TempPathFactory, built_js_components: BuiltComponents
) -> None:
    workdir = tmp_path_factory.mktemp("js-restart")
    tenants = copy_built(built_js_components, copy_tenants(workdir / "tenants", ["notes"]))
    box = BoxProcess(
        workdir=workdir,
        tenants_dir=tenants,
        extra_env={"SMCP_BOX_CACHE_DIR": str(built_js_components.cache)},
    )
    box.start()
    try:
        key = box.create_key("jsnotes")
        # One note written in each mode, every one read back in each mode after the restart.
        written: dict[int, str] = {}
        for mode in MODES:
            async with connect(box.url("jsnotes"), key, mode) as client:
                text = f"survive the #restart ({mode})"
                added = await client.call_tool("add_note", {"text": text})
                written[added.structured_content["id"]] = text  # type: ignore[index]
        assert box.stop() == 0
        box.start()
        for mode in MODES:
            async with connect(box.url("jsnotes"), key, mode) as client:
                listed = await client.call_tool("list_notes", {"tag": "restart"})
                texts = {n["id"]: n["text"] for n in listed.structured_content["notes"]}  # type: ignore[index]
                assert texts == written, mode
        async with connect(box.url("jsnotes"), key, "auto") as client:
            # Ids come from kv.incr: the next note continues the sequence.
            nxt = await client.call_tool("add_note", {"text": "after"})
            assert nxt.structured_content["id"] == max(written) + 1  # type: ignore[index]
    finally:
        assert box.stop() == 0, box.log()


async def test_js_component_calls_are_metered_and_audited_like_core_ones(
    js_box: BoxProcess, js_keys: dict[str, str]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=60) as http:
        url, key = js_box.url("jsfaults-fuel"), js_keys["jsfaults-fuel"]
        assert "result" in await modern_call_tool(http, url, key, "ok", {})
        fault = await modern_call_tool(http, url, key, "spin", {})
        assert fault["error"]["code"] == -32051
        text = (await http.get(f"{js_box.base_url}/metrics")).text
    samples = {
        (sample.name, sample.labels.get("kind")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("tenant") == "jsfaults-fuel"
    }
    assert samples[("smcp_box_module_calls_total", None)] >= 2
    assert samples[("smcp_box_module_call_failures_total", "fuel")] >= 1
    assert samples[("smcp_box_fuel_used_total", None)] > 300_000_000
    listed = js_box.cli("audit", "list", "--tenant", "jsfaults-fuel", "--json").stdout
    rows = json.loads(listed)["entries"]
    assert {"tool.call", "limit.hit"} <= {row["event"] for row in rows}


def test_new_build_and_vet_a_js_tenant_from_the_command_line(
    tmp_path: Path, built_js_components: BuiltComponents
) -> None:
    # The session's cache already holds the toolchain: this build installs nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    env.update(
        SMCP_BOX_CACHE_DIR=str(built_js_components.cache), SMCP_BOX_STATE_DIR=str(tmp_path / "s")
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smcp_box.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    made = cli("new", "--lang", "js", "greeter")
    assert made.returncode == 0, made.stderr
    built = cli("build", "greeter")
    assert built.returncode == 0, built.stderr
    assert "componentize-js: building greeter/app.js" in built.stderr
    assert "installing" not in built.stderr
    manifest = tomllib.loads((tmp_path / "greeter" / "tenant.toml").read_text())
    assert len(manifest["sha256"]) == 64
    assert manifest["tools_sha256"] in built.stdout
    vetted = cli("vet", "greeter", "--json")
    assert vetted.returncode == 0, vetted.stdout + vetted.stderr
    report = json.loads(vetted.stdout)[0]
    assert (report["pin_status"], report["tools"]) == ("match", ["greet", "countdown"])


def test_a_js_or_ts_build_error_names_the_file_and_problem(
    tmp_path: Path, built_js_components: BuiltComponents
) -> None:
    folder = new_tenant("broken", "js", tmp_path)
    (folder / "app.js").write_text(
        'import { App } from "smcp-box-sdk";\nconst app = new App("broken");\nlet x = ;\n'
    )
    problem = r"componentize-js failed(.|\n)*app\.js:3\n(.|\n)*SyntaxError: Unexpected token"
    with pytest.raises(ConfigError, match=problem):
        build_tenant(folder, cache_dir=built_js_components.cache)
    manifest = tomllib.loads((folder / "tenant.toml").read_text())
    assert manifest["sha256"] == "<hex sha256 of the module file>"  # nothing was pinned
    # TypeScript is built by erasing its types: what needs more than that is named.
    (folder / "app.js").unlink()
    (folder / "app.ts").write_text("enum Colour { Red }\nexport function handle(m: string) {}\n")
    with pytest.raises(ConfigError, match=r"app\.ts: TypeScript enum is not supported"):
        build_tenant(folder, cache_dir=built_js_components.cache)


async def test_js_sdk_host_helpers(js_box: BoxProcess, js_keys: dict[str, str]) -> None:
    async with connect(js_box.url("jsfaults"), js_keys["jsfaults"], "2026-07-28") as client:
        result = await client.call_tool("host", {})
        assert not result.is_error, result
        assert result.structured_content == {
            "cas": [True, False],  # the second cas found the key present
            "casValue": "1",
            "incr": 2 + 5,  # Numbers, not BigInts
            "incrWord": "not-an-integer",  # the WIT kv-error case, as KvError.reason
            "random": 16,
            "config": "fallback",
            "fallback": "default",
            "json": {"a": [1, 2]},
        }
        blob = await client.read_resource("faults://blob")
        assert blob.contents[0].blob == "AAEC/w=="  # type: ignore[union-attr]
    assert "host helpers ran" in js_box.log()


async def test_js_task_runs_in_the_background(js_box: BoxProcess, js_keys: dict[str, str]) -> None:
    """The JS SDK's task API through the built component (docs/tasks.md): unnegotiated, the
    tool runs synchronously (and sleeps through the sleep-ms import); negotiated, it escalates,
    and its background call answers with the task's id, read back with tasks/get."""
    url, key = js_box.url("jsfaults"), js_keys["jsfaults"]
    negotiated = {
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS_EXTENSION: {}}}
    }

    async with httpx.AsyncClient(timeout=60) as http:

        async def post(method: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
            """One stateless request that negotiated the tasks extension."""
            body = modern_request(1, method, {**params, "_meta": dict(negotiated)})
            reply = await http.post(url, json=body, headers=modern_headers(key, method, name))
            return parse_single_response(reply)

        plain = await modern_call_tool(http, url, key, "nap", {"ms": 20})
        assert plain["result"]["content"][0]["text"] == "slept 20 ms in task null", plain
        created = await post("tools/call", "nap", {"name": "nap", "arguments": {"ms": 300}})
        task = created["result"]
        assert (task["resultType"], task["status"]) == ("task", "working"), created
        task_id = task["taskId"]
        seen: dict[str, Any] = {}

        async def completed() -> bool:
            seen.update((await post("tasks/get", task_id, {"taskId": task_id}))["result"])
            return seen["status"] == "completed"

        await wait_until(completed, what="the JS task to complete", detail=js_box.log)
        assert seen["result"]["content"][0]["text"] == f"slept 300 ms in task {task_id}"


def test_the_instances_bench_measures_the_js_component(
    built_js_components: BuiltComponents,
) -> None:
    """bench/instances_bench.py's JavaScript column, on the component built from source."""
    from bench import instances_bench

    wasm = (built_js_components.tenants / "jsnotes" / "jsnotes.wasm").read_bytes()
    kind = instances_bench.KINDS["js"]
    assert kind == "component"
    row = instances_bench.measure(built_js_components.cache, "jsnotes", wasm, kind, 2)
    assert row["instantiate_ms"] > 0
    assert row["call_ms"] > 0
    assert row["call_fuel"] > 0
    # Unknown for a component (docs/abi.md 1.1): the bench prints it as n/a.
    assert row["linear_memory_mib"] == 0
