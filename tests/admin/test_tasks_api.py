"""GET /v1/tasks: the tenants' tasks as admins see them (docs/tasks.md), without their data."""

from __future__ import annotations

import pytest

from smcp_box.errors import AdminRequestFailed
from tests.admin.support import RunningBox


async def _task(rb: RunningBox, tenant: str, tool: str, secret: str) -> str:
    record = await rb.box.store.tasks.create(
        tenant,
        "key:abc",
        tool,
        {"name": tool, "arguments": {"secret": secret}},
        ttl_ms=60_000,
        poll_interval_ms=1000,
        timeout_s=10,
        max_open=5,
    )
    return record.task_id


async def test_tasks_are_listed_by_prefix_tool_status_and_age(rb: RunningBox) -> None:
    notes_id = await _task(rb, "notes", "note_create", "hunter2")
    utils_id = await _task(rb, "utils", "echo", "swordfish")
    await rb.box.store.tasks.complete("utils", utils_id, {"content": [{"type": "text"}]})
    body = await rb.client.tasks()
    rows = {row["tenant"]: row for row in body["tasks"]}
    assert set(rows) == {"notes", "utils"}
    assert rows["notes"]["task"] == notes_id[:8] + "…"
    assert rows["notes"]["tool"] == "note_create"
    assert rows["notes"]["status"] == "working"
    assert rows["utils"]["status"] == "completed"
    assert rows["notes"]["age_s"] >= 0
    assert sorted(rows["notes"]) == [
        "age_s",
        "created_at",
        "status",
        "task",
        "tenant",
        "tool",
        "updated_at",
    ]
    # Neither the whole id (the owner's handle on the result) nor any params are shown.
    text = str(body)
    assert notes_id not in text
    assert "hunter2" not in text
    assert "swordfish" not in text
    only_notes = await rb.client.tasks("notes")
    assert [row["tenant"] for row in only_notes["tasks"]] == ["notes"]


async def test_unknown_tenant_and_bad_cursor_are_refused(rb: RunningBox) -> None:
    with pytest.raises(AdminRequestFailed) as unknown:
        await rb.client.tasks("nope")
    assert unknown.value.status == 404
    with pytest.raises(AdminRequestFailed) as bad:
        await rb.client.request("GET", "/tasks", params={"cursor": "not-a-cursor"})
    assert bad.value.status == 400
    assert "cursor" in bad.value.message
