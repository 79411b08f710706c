"""The tasks extension's wire rules (protocol/tasks.py): negotiation, task support, rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from smcp_box.errors import InvalidParams, MissingClientCapability
from smcp_box.protocol.tasks import (
    ACK,
    TASKS_EXTENSION,
    advertises_tasks,
    create_task_result,
    detailed_task,
    input_responses_param,
    iso8601,
    missing_extension,
    negotiated,
    task_id_param,
    tool_task_support,
    unknown_task,
)

CAPS = "io.modelcontextprotocol/clientCapabilities"


@dataclass
class View:
    status: str = "working"
    task_id: str = "t1"
    created_at: float = 1_785_234_600.5
    updated_at: float = 1_785_234_601.0
    ttl_ms: int = 3_600_000
    poll_interval_ms: int = 1_000
    input_requests: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def test_negotiation_is_read_from_the_request_meta() -> None:
    assert negotiated({"_meta": {CAPS: {"extensions": {TASKS_EXTENSION: {}}}}})
    assert not negotiated({"_meta": {CAPS: {"extensions": {"other": {}}}}})
    assert not negotiated({"_meta": {CAPS: {}}})
    assert not negotiated({"_meta": {CAPS: {"extensions": [TASKS_EXTENSION]}}})
    assert not negotiated({})
    assert not negotiated(None)


def test_missing_extension_names_the_required_capability() -> None:
    err = missing_extension("tasks/get")
    assert isinstance(err, MissingClientCapability)
    assert err.to_jsonrpc_error()["code"] == -32021
    assert err.data == {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}}


def test_task_support_of_a_tool_definition() -> None:
    assert tool_task_support({"execution": {"taskSupport": "optional"}}) == "optional"
    assert tool_task_support({"execution": {"taskSupport": "required"}}) == "required"
    assert tool_task_support({"execution": {"taskSupport": "sometimes"}}) == "forbidden"
    assert tool_task_support({"name": "x"}) == "forbidden"
    assert tool_task_support(None) == "forbidden"
    assert advertises_tasks([{"name": "a"}, {"execution": {"taskSupport": "required"}}])
    assert not advertises_tasks([{"name": "a"}])


def test_params_are_checked() -> None:
    assert task_id_param({"taskId": "abc"}) == "abc"
    for bad in ({}, {"taskId": 5}, {"taskId": ""}, None):
        with pytest.raises(InvalidParams, match="taskId"):
            task_id_param(bad)
    assert input_responses_param({"inputResponses": {"k": {}}}) == {"k": {}}
    with pytest.raises(InvalidParams, match="inputResponses"):
        input_responses_param({"inputResponses": []})
    assert unknown_task("zz").to_jsonrpc_error()["code"] == -32602


def test_timestamps_are_iso8601_utc_with_milliseconds() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00.000Z"
    assert iso8601(1_785_234_600.5) == "2026-07-28T10:30:00.500Z"


def test_create_task_result_is_flat() -> None:
    created = create_task_result(View())
    assert created == {
        "resultType": "task",
        "taskId": "t1",
        "status": "working",
        "createdAt": "2026-07-28T10:30:00.500Z",
        "lastUpdatedAt": "2026-07-28T10:30:01.000Z",
        "ttlMs": 3_600_000,
        "pollIntervalMs": 1_000,
    }


def test_detailed_task_inlines_by_status() -> None:
    working = detailed_task(View())
    assert working["resultType"] == "complete"
    assert not {"result", "error", "inputRequests", "requestState"} & set(working)
    done = detailed_task(View(status="completed", result={"content": []}))
    assert done["result"] == {"content": []}
    assert "error" not in done
    failed = detailed_task(View(status="failed", error={"code": -1, "message": "x"}))
    assert failed["error"] == {"code": -1, "message": "x"}
    assert "result" not in failed
    waiting = detailed_task(View(status="input_required", input_requests={"k": {"method": "m"}}))
    assert waiting["inputRequests"] == {"k": {"method": "m"}}
    assert detailed_task(View(status="cancelled")).keys() == working.keys()
    assert dict(ACK) == {"resultType": "complete"}


async def test_a_store_record_renders(tmp_path: Any) -> None:
    from smcp_box.store import Store

    async with await Store.open(tmp_path / "t.db", bytes(32)) as store:
        record = await store.tasks.create(
            "t", "o", "tool", {"name": "tool"}, ttl_ms=5_000, poll_interval_ms=250,
            timeout_s=5, max_open=1,
        )  # fmt: skip
        assert create_task_result(record)["ttlMs"] == 5_000
        assert detailed_task(record)["taskId"] == record.task_id


def test_the_sync_phase_decides_whether_a_call_may_escalate() -> None:
    from smcp_box.protocol.tasks import is_escalation, may_escalate, with_escalation_allowed

    optional = {"name": "build", "execution": {"taskSupport": "optional"}}
    required = {"name": "job", "execution": {"taskSupport": "required"}}
    plain = {"name": "greet"}
    asked = {"name": "build", "_meta": {CAPS: {"extensions": {TASKS_EXTENSION: {}}}}}
    legacy_hint = {"name": "greet", "task": {"ttl": 1000}}
    assert may_escalate(asked, optional)
    assert may_escalate(asked, required)
    assert not may_escalate(asked, plain)
    assert not may_escalate({"name": "build"}, optional)
    assert not may_escalate(legacy_hint, plain)
    with pytest.raises(MissingClientCapability, match="'job'") as caught:
        may_escalate({"name": "job"}, required)
    assert caught.value.data == {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}}
    sent = with_escalation_allowed(asked)
    assert sent["_meta"]["smcp-box/task"] == {"escalate": "allowed"}
    assert sent["_meta"][CAPS] == asked["_meta"][CAPS]
    assert "smcp-box/task" not in asked["_meta"]  # the client's params are not changed
    assert is_escalation({"resultType": "task"})
    assert not is_escalation({"resultType": "complete", "content": []})
    assert not is_escalation(None)
