"""The conformance tenant (tests/tenants/conformance): built from its source, pinned, and
answering as the suites' scenario descriptions say, checked without Node or a box.

The full suites run in test_conformance_suites.py; these pin down the module's own behaviour
(InputRequiredResult rounds, the sealed requestState, media payloads) so that a suite failure
points at the box, not at the fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from tests.tenants.harness import Host, Tenant, text_of

from .rebuild_tenant import TENANT, tenant_builder

MODULE = TENANT / "conformance.wasm"
ALLOWED_IMPORTS = {
    "log",
    "config_get",
    "kv_get",
    "kv_set",
    "kv_delete",
    "kv_list",
    "notify",
    "time_now_ms",
    "sleep_ms",
}
NOW_MS = 1_764_000_000_000
ELICIT_CAPS: dict[str, Any] = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}


def manifest() -> dict[str, Any]:
    with (TENANT / "tenant.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.fixture
def host() -> Host:
    return Host(config=dict(manifest()["config"]), now_ms=NOW_MS)


@pytest.fixture
def tenant(host: Host) -> Tenant:
    return Tenant(MODULE, host)


def call(t: Tenant, name: str, **params: Any) -> dict[str, Any]:
    """tools/call with extra params (inputResponses, requestState, _meta); the whole reply."""
    return t.request("tools/call", {"name": name, "arguments": {}, **params})


def accept(content: dict[str, Any]) -> dict[str, Any]:
    return {"action": "accept", "content": content}


# --- build and manifest -------------------------------------------------------------------------


def test_committed_module_is_the_build_of_its_source(tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    builder = tenant_builder()
    out = tmp_path / "conformance.wasm"
    builder.build(TENANT, out)
    assert out.read_bytes() == MODULE.read_bytes(), (
        f"{MODULE} is stale: run python tests/conformance/rebuild_tenant.py"
    )
    assert manifest()["sha256"] == hashlib.sha256(MODULE.read_bytes()).hexdigest()


def test_build_script_works_from_any_directory_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    out = tmp_path / "out.wasm"
    proc = subprocess.run(
        ["sh", str(TENANT / "build.sh"), str(out)],
        cwd=tmp_path,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stderr.strip() == ""
    assert out.read_bytes() == MODULE.read_bytes()


def test_manifest_is_a_public_tenant_with_the_documented_keys() -> None:
    data = manifest()
    documented = {"name", "description", "module", "sha256", "tools_sha256", "auth", "limits"}
    assert set(data) <= documented | {"config", "receipts"}
    assert data["name"] == "conformance"
    assert data["auth"] == "none"  # the suites send no credentials
    assert (TENANT / data["module"]).is_file()
    assert set(data["limits"]) <= {"memory_mib", "fuel", "timeout_ms"}
    assert data["config"]["request_state_key"]


def test_module_exports_and_imports_follow_smcp_v1() -> None:
    module = wasmtime.Module(wasmtime.Engine(), MODULE.read_bytes())
    assert {e.name for e in module.exports} == {"memory", "smcp_alloc", "smcp_handle"}
    for imp in module.imports:
        assert imp.module == "smcp"
        assert imp.name in ALLOWED_IMPORTS, f"smcp.{imp.name} is not in the smcp-v1 ABI"


# --- static fixtures ------------------------------------------------------------------------------


def test_tool_names_follow_the_spec_rules_and_have_descriptions(tenant: Tenant) -> None:
    tools = tenant.result("tools/list")["tools"]
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names))
    for tool in tools:
        assert 1 <= len(tool["name"]) <= 128
        assert all(c.isalnum() or c in "_.-" for c in tool["name"])
        assert tool["description"]
        assert tool["inputSchema"]["type"] == "object"
    assert {
        "test_simple_text",
        "test_sampling",
        "json_schema_2020_12_tool",
        "test_input_required_result_multi_round",
        "test_x_mcp_header",
    } <= set(names)


def test_json_schema_2020_12_keywords_are_listed_verbatim(tenant: Tenant) -> None:
    tools = {t["name"]: t for t in tenant.result("tools/list")["tools"]}
    schema = tools["json_schema_2020_12_tool"]["inputSchema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["address"]["$anchor"] == "addressDef"
    assert schema["additionalProperties"] is False
    assert schema["allOf"][0]["anyOf"] == [{"required": ["phone"]}, {"required": ["email"]}]
    assert {"if", "then", "else"} <= set(schema)
    header = tools["test_x_mcp_header"]["inputSchema"]["properties"]["region"]
    assert header == {"type": "string", "description": "A region name", "x-mcp-header": "Region"}


def test_media_payloads_are_a_real_png_and_wav(tenant: Tenant) -> None:
    image = tenant.tool("test_image_content")["content"][0]
    png = base64.b64decode(image["data"], validate=True)
    assert image["mimeType"] == "image/png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1, 1)
    idat_len = struct.unpack(">I", png[33:37])[0]
    assert zlib.decompress(png[41 : 41 + idat_len]) == b"\x00\xff\x00\x00"  # one red pixel
    audio = tenant.tool("test_audio_content")["content"][0]
    wav = base64.b64decode(audio["data"], validate=True)
    assert audio["mimeType"] == "audio/wav"
    assert wav[:4] == b"RIFF"
    assert wav[8:12] == b"WAVE"
    blob = tenant.result("resources/read", {"uri": "test://static-binary"})["contents"][0]
    assert base64.b64decode(blob["blob"]) == png


def test_content_fixtures(tenant: Tenant) -> None:
    assert text_of(tenant.tool("test_simple_text")) == "This is a simple text response for testing."
    mixed = tenant.tool("test_multiple_content_types")["content"]
    assert [c["type"] for c in mixed] == ["text", "image", "resource"]
    assert json.loads(mixed[2]["resource"]["text"]) == {"test": "data", "value": 123}
    embedded = tenant.tool("test_embedded_resource")["content"][0]["resource"]
    assert embedded == {
        "uri": "test://embedded-resource",
        "mimeType": "text/plain",
        "text": "This is an embedded resource content.",
    }
    error = tenant.tool("test_error_handling")
    assert error["isError"] is True
    assert text_of(error) == "This tool intentionally returns an error for testing"


def test_progress_and_log_notifications(tenant: Tenant, host: Host) -> None:
    reply = tenant.request(
        "tools/call",
        {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "p-1"}},
    )
    assert "result" in reply
    progress = [n["params"] for n in host.notifications]
    assert progress == [{"progressToken": "p-1", "progress": p, "total": 100} for p in (0, 50, 100)]
    host.notifications.clear()
    tenant.tool("test_tool_with_logging")
    assert [
        (n["method"], n["params"]["level"], n["params"]["data"]) for n in host.notifications
    ] == [
        ("notifications/message", "info", "Tool execution started"),
        ("notifications/message", "info", "Tool processing data"),
        ("notifications/message", "info", "Tool execution completed"),
    ]
    assert host.host_calls < 5_000  # the pauses stay far below the box's per-call import cap
    assert host.sleeps == [50, 50, 50, 50]  # waited in the host (no spinning): 50 ms apart


def test_resources_template_and_not_found(tenant: Tenant) -> None:
    listed = {r["uri"] for r in tenant.result("resources/list")["resources"]}
    assert listed == {"test://static-text", "test://static-binary", "test://watched-resource"}
    templates = tenant.result("resources/templates/list")["resourceTemplates"]
    assert templates[0]["uriTemplate"] == "test://template/{id}/data"
    item = tenant.result("resources/read", {"uri": "test://template/123/data"})["contents"][0]
    assert json.loads(item["text"]) == {
        "id": "123",
        "templateTest": True,
        "data": "Data for ID: 123",
    }
    for uri in ["test://template//data", "test://template/1/2/data", "test://nope"]:
        error = tenant.error("resources/read", {"uri": uri})
        assert error["code"] == -32602
        assert error["data"] == {"uri": uri}


def test_subscribe_validates_the_uri(tenant: Tenant) -> None:
    assert tenant.result("resources/subscribe", {"uri": "test://watched-resource"}) == {}
    assert tenant.result("resources/unsubscribe", {"uri": "test://template/9/data"}) == {}
    assert tenant.error("resources/subscribe", {"uri": "test://nope"})["code"] == -32602


def test_prompts_and_completion(tenant: Tenant) -> None:
    prompts = tenant.result("prompts/list")["prompts"]
    assert all(p["description"] for p in prompts)
    got = tenant.result(
        "prompts/get",
        {"name": "test_prompt_with_arguments", "arguments": {"arg1": "hello", "arg2": "world"}},
    )
    assert got["messages"][0]["content"]["text"] == (
        "Prompt with arguments: arg1='hello', arg2='world'"
    )
    embedded = tenant.result(
        "prompts/get",
        {"name": "test_prompt_with_embedded_resource", "arguments": {"resourceUri": "test://x"}},
    )
    assert embedded["messages"][0]["content"]["resource"]["uri"] == "test://x"
    image = tenant.result("prompts/get", {"name": "test_prompt_with_image"})
    assert image["messages"][0]["content"]["type"] == "image"
    completion = tenant.result(
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "par"},
        },
    )["completion"]
    assert completion["values"] == ["paris", "park", "party"]


# --- InputRequiredResult rounds -------------------------------------------------------------------


def test_sampling_asks_then_reports_the_answer(tenant: Tenant) -> None:
    first = tenant.tool("test_sampling", {"prompt": "Hi?"})
    assert first == {
        "resultType": "input_required",
        "inputRequests": {
            "sampling": {
                "method": "sampling/createMessage",
                "params": {
                    "messages": [{"role": "user", "content": {"type": "text", "text": "Hi?"}}],
                    "maxTokens": 100,
                },
            }
        },
    }
    answer = {
        "role": "assistant",
        "content": {"type": "text", "text": "Hello"},
        "model": "m",
        "stopReason": "endTurn",
    }
    done = tenant.tool("test_sampling", {"prompt": "Hi?"}, inputResponses={"sampling": answer})
    assert text_of(done) == "LLM response: Hello"


def test_elicitation_fixtures_carry_the_suites_schemas(tenant: Tenant) -> None:
    defaults = tenant.tool("test_elicitation_sep1034_defaults")["inputRequests"]["defaults"]
    props = defaults["params"]["requestedSchema"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == {
        "name": "John Doe",
        "age": 30,
        "score": 95.5,
        "status": "active",
        "verified": True,
    }
    enums = tenant.tool("test_elicitation_sep1330_enums")["inputRequests"]["enums"]
    props = enums["params"]["requestedSchema"]["properties"]
    assert set(props) == {
        "untitledSingle",
        "titledSingle",
        "legacyEnum",
        "untitledMulti",
        "titledMulti",
    }
    done = tenant.tool(
        "test_elicitation",
        {"message": "Who?"},
        inputResponses={"user_info": accept({"username": "u", "email": "e@x"})},
    )
    assert text_of(done) == 'User response: action=accept, content={"username":"u","email":"e@x"}'


def test_capabilities_from_meta_are_respected(tenant: Tenant) -> None:
    none: dict[str, Any] = {"io.modelcontextprotocol/clientCapabilities": {}}
    error = call(tenant, "test_missing_capability", _meta=none)["error"]
    assert error["code"] == -32021
    assert error["data"] == {"requiredCapabilities": {"sampling": {}}}
    only_sampling: dict[str, Any] = {"io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    asked = call(tenant, "test_input_required_result_capabilities", _meta=only_sampling)
    assert [r["method"] for r in asked["result"]["inputRequests"].values()] == [
        "sampling/createMessage"
    ]
    # A handshake-era request carries no capability list: the box checks the session's.
    assert "inputRequests" in tenant.tool("test_sampling", {"prompt": "x"})


def test_elicitation_round_trip_and_bad_answers(tenant: Tenant) -> None:
    name = "test_input_required_result_elicitation"
    first = call(tenant, name, _meta=ELICIT_CAPS)["result"]
    assert first["resultType"] == "input_required"
    assert "requestState" not in first
    done = call(
        tenant,
        name,
        inputResponses={
            "user_name": accept({"name": "Alice"}),
            "extra": {"action": "accept", "content": {}},
        },
    )
    assert text_of(done["result"]) == "Hello, Alice!"
    again = call(tenant, name, inputResponses={"wrong_key": accept({"data": "x"})})
    assert again["result"]["inputRequests"]["user_name"]["method"] == "elicitation/create"
    assert call(tenant, name, inputResponses={"user_name": 12345})["error"]["code"] == -32602
    assert call(tenant, name, inputResponses=None)["error"]["code"] == -32602
    bad_action = {"user_name": {"action": "maybe"}}
    assert call(tenant, name, inputResponses=bad_action)["error"]["code"] == -32602


def test_multi_round_carries_the_name_in_a_changing_state(tenant: Tenant) -> None:
    name = "test_input_required_result_multi_round"
    r1 = tenant.tool(name)
    r2 = tenant.tool(
        name, inputResponses={"step1": accept({"name": "Alice"})}, requestState=r1["requestState"]
    )
    assert list(r2["inputRequests"]) == ["step2"]
    assert r2["requestState"] != r1["requestState"]
    r3 = tenant.tool(
        name, inputResponses={"step2": accept({"color": "blue"})}, requestState=r2["requestState"]
    )
    assert text_of(r3) == "Alice's favorite color is blue."
    # A round without its answer asks again with the same state; a decline ends the flow.
    again = tenant.tool(name, inputResponses={}, requestState=r2["requestState"])
    assert list(again["inputRequests"]) == ["step2"]
    assert again["requestState"] == r2["requestState"]
    declined = tenant.tool(
        name, inputResponses={"step2": {"action": "decline"}}, requestState=r2["requestState"]
    )
    assert text_of(declined) == "Stopped at step2: the user chose decline."
    # Answers without the state they belong to start the flow over.
    restart = tenant.tool(name, inputResponses={"step1": accept({"name": "Eve"})})
    assert list(restart["inputRequests"]) == ["step1"]


def test_request_state_is_sealed(tenant: Tenant, host: Host) -> None:
    name = "test_input_required_result_tampered_state"
    state = tenant.tool(name)["requestState"]
    answer = {"confirm": accept({"ok": True})}
    assert "state-ok" in text_of(tenant.tool(name, inputResponses=answer, requestState=state))
    prefix, _payload, mac = state.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps({"tool": name, "iat": NOW_MS}).encode())
        .decode()
        .rstrip("=")
    )
    for bad in [state + "-TAMPERED", f"{prefix}.{forged_payload}.{mac}", "v1.e30.x", 42]:
        error = call(tenant, name, inputResponses=answer, requestState=bad)["error"]
        assert error["code"] == -32602, bad
        assert "requestState refused" in error["message"]
    # Issued for another tool: refused too.
    other = tenant.tool("test_input_required_result_request_state")["requestState"]
    assert call(tenant, name, inputResponses=answer, requestState=other)["error"]["code"] == -32602
    # Expired after ten minutes.
    host.now_ms += 10 * 60 * 1000 + 1
    assert call(tenant, name, inputResponses=answer, requestState=state)["error"]["code"] == -32602


def test_request_state_needs_a_key(tmp_path: Path) -> None:
    t = Tenant(MODULE, Host(config={}, now_ms=NOW_MS))
    error = call(t, "test_input_required_result_request_state")["error"]
    assert error["code"] == -32603
    assert "request_state_key" in error["message"]


def test_multiple_inputs_and_the_prompt(tenant: Tenant) -> None:
    name = "test_input_required_result_multiple_inputs"
    first = tenant.tool(name)
    methods = {k: v["method"] for k, v in first["inputRequests"].items()}
    assert methods == {
        "user_name": "elicitation/create",
        "greeting": "sampling/createMessage",
        "client_roots": "roots/list",
    }
    answers = {
        "user_name": accept({"name": "Alice"}),
        "greeting": {"role": "assistant", "content": {"type": "text", "text": "Hi"}, "model": "m"},
        "client_roots": {"roots": [{"uri": "file:///r", "name": "R"}]},
    }
    partial = tenant.tool(
        name, inputResponses={"user_name": answers["user_name"]}, requestState=first["requestState"]
    )
    assert set(partial["inputRequests"]) == {"greeting", "client_roots"}
    done = tenant.tool(name, inputResponses=answers, requestState=first["requestState"])
    assert text_of(done) == "Hi Alice; roots: 1"
    prompt = "test_input_required_result_prompt"
    asked = tenant.result("prompts/get", {"name": prompt})
    assert asked["inputRequests"]["user_context"]["method"] == "elicitation/create"
    got = tenant.result(
        "prompts/get",
        {"name": prompt, "inputResponses": {"user_context": accept({"context": "tests"})}},
    )
    assert got["messages"][0]["content"]["text"].endswith("tests")


def test_declares_and_announces_list_changes_and_resource_updates(
    tenant: Tenant, host: Host
) -> None:
    # S1: the SDK's capability flags and notification helpers, through a real module.
    caps = tenant.result(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}},
    )["capabilities"]
    assert caps["tools"] == {"listChanged": True}
    assert caps["prompts"] == {"listChanged": True}
    assert caps["resources"] == {"subscribe": True, "listChanged": False}
    for tool in ("test_trigger_tool_change", "test_trigger_prompt_change"):
        tenant.tool(tool)
    tenant.tool("test_touch_watched_resource")
    assert host.notifications == [
        {"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {}},
        {"jsonrpc": "2.0", "method": "notifications/prompts/list_changed", "params": {}},
        {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "test://watched-resource"},
        },
    ]


# --- the tasks extension (tasks.c; docs/tasks.md) ----------------------------------------------

MAY_ESCALATE: dict[str, Any] = {"smcp-box/task": {"escalate": "allowed"}}
IN_TASK: dict[str, Any] = {"smcp-box/task": {"taskId": "t-1"}}


def task_call(t: Tenant, name: str, meta: dict[str, Any], **params: Any) -> dict[str, Any]:
    return call(t, name, _meta=meta, **params)


def test_task_fixtures_declare_their_task_support(tenant: Tenant) -> None:
    tools = {tool["name"]: tool for tool in tenant.request("tools/list")["result"]["tools"]}
    support = {
        name: tools[name].get("execution", {}).get("taskSupport", "forbidden")
        for name in (
            "greet",
            "slow_compute",
            "failing_job",
            "protocol_error_job",
            "confirm_delete",
            "multi_input",
            "test_tool_with_task",
        )
    }
    assert support == {
        "greet": "forbidden",
        "slow_compute": "optional",
        "failing_job": "required",
        "protocol_error_job": "optional",
        "confirm_delete": "optional",
        "multi_input": "optional",
        "test_tool_with_task": "required",
    }


def test_task_tools_escalate_only_when_allowed(tenant: Tenant, host: Host) -> None:
    for name in ("failing_job", "protocol_error_job", "confirm_delete", "multi_input"):
        assert task_call(tenant, name, MAY_ESCALATE)["result"] == {"resultType": "task"}, name
    slow = {"seconds": 3, "label": "x"}
    assert task_call(tenant, "slow_compute", MAY_ESCALATE, arguments=slow)["result"] == {
        "resultType": "task"
    }
    # seconds = 0 answers at once even when it may escalate (the immediate-result shortcut).
    instant = task_call(tenant, "slow_compute", MAY_ESCALATE, arguments={"seconds": 0})
    assert text_of(instant["result"]).startswith("Computed")
    assert host.sleeps == [0]


def test_task_phase_outcomes(tenant: Tenant, host: Host) -> None:
    slow = task_call(tenant, "slow_compute", IN_TASK, arguments={"seconds": 2, "label": "L"})
    assert text_of(slow["result"]) == "Computed L after 2 s"
    assert host.sleeps == [2000]  # waited in the host, not by spinning
    failing = task_call(tenant, "failing_job", IN_TASK)["result"]
    assert failing["isError"] is True
    assert host.sleeps == [2000, 1000]
    error = task_call(tenant, "protocol_error_job", IN_TASK)["error"]
    assert error["code"] == -32603
    too_long = task_call(tenant, "slow_compute", IN_TASK, arguments={"seconds": 121})
    assert too_long["error"]["code"] == -32602


def test_task_inputs_one_then_two(tenant: Tenant) -> None:
    asked = task_call(tenant, "confirm_delete", IN_TASK, arguments={"filename": "a.txt"})["result"]
    assert asked["resultType"] == "input_required"
    assert asked["inputRequests"]["confirm"]["method"] == "elicitation/create"
    done = task_call(
        tenant,
        "confirm_delete",
        IN_TASK,
        arguments={"filename": "a.txt"},
        inputResponses={"confirm": accept({"confirm": True})},
    )
    assert text_of(done["result"]) == "Deleted a.txt"
    both = task_call(tenant, "multi_input", IN_TASK)["result"]
    assert sorted(both["inputRequests"]) == ["confirm", "name"]
    answered = task_call(
        tenant,
        "multi_input",
        IN_TASK,
        inputResponses={"name": accept({"name": "Ann"}), "confirm": accept({"confirm": True})},
    )
    assert text_of(answered["result"]) == "Got name=Ann, confirmed"


def test_mrtr_round_then_task_carries_the_answer(tenant: Tenant) -> None:
    first = task_call(tenant, "test_tool_with_task", MAY_ESCALATE)["result"]
    assert first["resultType"] == "input_required"
    assert "user_name" in first["inputRequests"]
    answers = {"user_name": accept({"name": "Alice"})}
    second = task_call(tenant, "test_tool_with_task", MAY_ESCALATE, inputResponses=answers)
    assert second["result"] == {"resultType": "task"}
    final = task_call(tenant, "test_tool_with_task", IN_TASK, inputResponses=answers)
    assert "Alice" in text_of(final["result"])
