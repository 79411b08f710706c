"""Durable tasks across a restart (docs/tasks.md): the official SDK client starts tasks on the
conformance tenant of a subprocess box and goes away; the box is restarted; the finished task's
result is fetched, and the task that was running when the box stopped reads as failed with the
reason. mcp 2.3.0 has no tasks client, so the test declares the extension through the SDK's
own extension hook (a claim for ``resultType: "task"``) and polls ``tasks/get`` over raw httpx.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Result

from smcp_box.protocol.tasks import TASKS_EXTENSION
from tests.e2e.boxproc import REPO, BoxProcess
from tests.e2e.clients import ACCEPT_BOTH, MODERN, parse_single_response
from tests.support.waiting import wait_until

INTERRUPTED = "the box stopped while this task was running"


class CreatedTask(Result):
    """The flat CreateTaskResult, as the SDK parses a claimed result."""

    result_type: Literal["task"]
    task_id: str
    status: str
    ttl_ms: int


async def _not_resolved(created: CreatedTask, ctx: ClaimContext) -> CallToolResult:
    raise AssertionError("the test takes claimed results itself (allow_claimed=True)")


class TasksExtension(ClientExtension):
    """Advertises the tasks extension and lets CreateTaskResult through."""

    identifier = TASKS_EXTENSION

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=_not_resolved)]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[BoxProcess]:
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tests" / "tenants" / "conformance", tenants / "conformance")
    proc = BoxProcess(workdir=tmp_path, tenants_dir=tenants)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def start_tasks_with_the_sdk(url: str) -> tuple[str, str]:
    """(a task that finishes in a second, one that runs for a minute); the client then exits."""
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(15.0, read=30.0))
    transport = streamable_http_client(url, http_client=http)
    async with http, Client(transport, mode=MODERN, extensions=[TasksExtension()]) as client:
        ids = []
        for seconds in (1, 60):
            created = await client.session.call_tool(
                "slow_compute",
                {"seconds": seconds, "label": f"restart-{seconds}"},
                allow_claimed=True,
            )
            assert isinstance(created, CreatedTask), created
            assert created.status == "working"
            ids.append(created.task_id)
    return ids[0], ids[1]


async def tasks_get(http: httpx.AsyncClient, url: str, task_id: str) -> dict[str, Any]:
    """tasks/get from a fresh stateless request: no session ties a client to its task."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "later", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS_EXTENSION: {}}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tasks/get",
        "params": {"taskId": task_id, "_meta": meta},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": ACCEPT_BOTH,
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tasks/get",
        "Mcp-Name": task_id,
    }
    reply = parse_single_response(await http.post(url, json=body, headers=headers))
    assert "result" in reply, reply
    return dict(reply["result"])


async def test_a_task_outlives_its_client_and_a_restart(box: BoxProcess) -> None:
    url = box.url("conformance")
    quick, long_running = await start_tasks_with_the_sdk(url)
    async with httpx.AsyncClient(timeout=30) as http:

        async def quick_done() -> bool:
            return (await tasks_get(http, url, quick))["status"] == "completed"

        await wait_until(quick_done, what="the one-second task to complete")
        assert (await tasks_get(http, url, long_running))["status"] == "working"

    assert box.stop() == 0
    box.start()

    async with httpx.AsyncClient(timeout=30) as http:
        done = await tasks_get(http, url, quick)
        assert done["status"] == "completed"
        assert done["result"]["content"][0]["text"] == "Computed restart-1 after 1 s"
        interrupted = await tasks_get(http, url, long_running)
        assert interrupted["status"] == "failed"
        assert "result" not in interrupted
        assert INTERRUPTED in interrupted["error"]["message"]


async def test_a_task_running_at_a_crash_reads_failed_after_the_restart(box: BoxProcess) -> None:
    url = box.url("conformance")
    _, running = await start_tasks_with_the_sdk(url)
    proc = box.proc
    assert proc is not None
    proc.kill()  # SIGKILL: no shutdown path runs; the restart's recovery must notice
    proc.wait()
    box.proc = None
    box.start()
    async with httpx.AsyncClient(timeout=30) as http:
        crashed = await tasks_get(http, url, running)
    assert crashed["status"] == "failed"
    assert INTERRUPTED in crashed["error"]["message"]
