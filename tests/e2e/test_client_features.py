"""Client features through a real box and real modules: server-to-client requests for
handshake-era clients, subscriptions and list changes, Mcp-Param-* checks, and cancellation
that stops the wasm.

One box of its own serves the conformance tenant (public, tests/tenants/conformance) and
``spinner``, the fault module with one call slot and a 20 s wall-clock limit: if a cancelled
spin kept running, the next call would find the slot taken and be refused as busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    TextContent,
)

from tests.e2e.boxproc import REPO, BoxProcess
from tests.e2e.clients import ACCEPT_BOTH, LEGACY, modern_headers, modern_request, sse_events_of
from tests.e2e.conftest import FAULTS_SOURCE
from tests.ops.support import busy_calls
from tests.support.waiting import wait_until

SUB_ID = "io.modelcontextprotocol/subscriptionId"
SPINNER_LIMITS = (
    "memory_mib = 16\nfuel = 100000000000\ntimeout_ms = 20000\nmax_concurrent_calls = 1\n"
)


@pytest.fixture(scope="module")
def fbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProcess]:
    workdir = tmp_path_factory.mktemp("features")
    tenants = workdir / "tenants"
    shutil.copytree(REPO / "tests" / "tenants" / "conformance", tenants / "conformance")
    spinner = tenants / "spinner"
    spinner.mkdir()
    subprocess.run(
        ["sh", str(REPO / "sdk" / "c" / "cc.sh"), str(spinner / "faults.wasm"), str(FAULTS_SOURCE)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    digest = hashlib.sha256((spinner / "faults.wasm").read_bytes()).hexdigest()
    (spinner / "tenant.toml").write_text(
        f'name = "spinner"\nmodule = "faults.wasm"\nsha256 = "{digest}"\nauth = "none"\n'
        f"[limits]\n{SPINNER_LIMITS}"
    )
    proc = BoxProcess(workdir=workdir, tenants_dir=tenants)
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"smcp-box exited with {code}:\n{proc.log()}"


def legacy_headers(session: str | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": ACCEPT_BOTH,
        "MCP-Protocol-Version": LEGACY,
    }
    if session is not None:
        headers["Mcp-Session-Id"] = session
    return headers


async def open_session(http: httpx.AsyncClient, url: str) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "e2e", "version": "1"},
        },
    }
    response = await http.post(url, json=init, headers=legacy_headers())
    assert response.status_code == 200, response.text
    capabilities = response.json()["result"]["capabilities"]
    # S1: the C SDK lets the tenant declare what the box now delivers.
    assert capabilities["resources"]["subscribe"] is True
    assert capabilities["tools"]["listChanged"] is True
    return str(response.headers["mcp-session-id"])


@contextlib.asynccontextmanager
async def sse_lines(
    http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> AsyncIterator[list[dict[str, Any]]]:
    """Collect the JSON messages of an SSE response in the background."""
    seen: list[dict[str, Any]] = []
    opened = asyncio.Event()

    async def read() -> None:
        async with http.stream(method, url, **kwargs) as response:
            assert response.status_code == 200, await response.aread()
            opened.set()
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    seen.append(json.loads(line[6:]))

    task = asyncio.create_task(read())
    await asyncio.wait_for(opened.wait(), 10)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(seen: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    await wait_until(
        lambda: len(seen) >= count, what=f"{count} SSE message(s)", detail=lambda: seen
    )
    return seen


async def test_handshake_era_sdk_client_is_asked_for_sampling_and_elicitation(
    fbox: BoxProcess,
) -> None:
    async def sampling(_: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="a sampled answer"), model="m"
        )

    async def elicitation(_: Any, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"username": "ada", "email": "a@b.c"})

    http = httpx2.AsyncClient(timeout=httpx2.Timeout(15.0, read=30.0))
    transport = streamable_http_client(fbox.url("conformance"), http_client=http)
    async with (
        http,
        Client(
            transport, mode="legacy", sampling_callback=sampling, elicitation_callback=elicitation
        ) as client,
    ):
        sampled = await client.call_tool("test_sampling", {"prompt": "Say something"})
        elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
    assert sampled.content[0].text == "LLM response: a sampled answer"  # type: ignore[union-attr]
    assert "ada" in elicited.content[0].text  # type: ignore[union-attr]


async def test_resource_subscription_and_list_changes_reach_the_get_stream(
    fbox: BoxProcess,
) -> None:
    url = fbox.url("conformance")
    async with httpx.AsyncClient(timeout=15) as http:
        session = await open_session(http, url)
        headers = legacy_headers(session)
        subscribe = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "resources/subscribe",
            "params": {"uri": "test://watched-resource"},
        }
        assert (await http.post(url, json=subscribe, headers=headers)).json()["result"] == {}
        async with sse_lines(http, "GET", url, headers=headers) as seen:
            for request_id, tool in enumerate(
                ["test_touch_watched_resource", "test_trigger_tool_change"], start=2
            ):
                call = {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": {}},
                }
                reply = await http.post(url, json=call, headers=headers)
                assert reply.headers["content-type"] == "application/json"
            update, changed = await until(seen, 2)
    assert update == {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": "test://watched-resource"},
    }
    assert changed["method"] == "notifications/tools/list_changed"


async def test_listen_stream_gets_the_modules_list_changes(fbox: BoxProcess) -> None:
    url = fbox.url("conformance")
    listen = modern_request(
        7, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}
    )
    headers = modern_headers("unused", "subscriptions/listen")
    del headers["Authorization"]
    async with (
        httpx.AsyncClient(timeout=15) as http,
        sse_lines(http, "POST", url, json=listen, headers=headers) as seen,
    ):
        (ack,) = await until(seen, 1)
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        call = modern_request(
            8, "tools/call", {"name": "test_trigger_tool_change", "arguments": {}}
        )
        call_headers = modern_headers("unused", "tools/call", "test_trigger_tool_change")
        del call_headers["Authorization"]
        await http.post(url, json=call, headers=call_headers)
        _, changed = await until(seen, 2)
    assert changed["method"] == "notifications/tools/list_changed"
    assert changed["params"]["_meta"] == {SUB_ID: 7}


async def test_mcp_param_headers_are_checked_against_the_modules_schema(
    fbox: BoxProcess,
) -> None:
    url = fbox.url("conformance")
    body = modern_request(
        3, "tools/call", {"name": "test_x_mcp_header", "arguments": {"region": "eu"}}
    )
    headers = modern_headers("unused", "tools/call", "test_x_mcp_header")
    del headers["Authorization"]
    async with httpx.AsyncClient(timeout=15) as http:
        missing = await http.post(url, json=body, headers=headers)
        assert missing.status_code == 400
        assert missing.json()["error"]["code"] == -32020
        headers["Mcp-Param-Region"] = "eu"
        matching = await http.post(url, json=body, headers=headers)
    assert matching.status_code == 200
    assert matching.json()["result"]["content"][0]["text"] == "region: eu"


def spin_call(request_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "spin", "arguments": {}},
    }


async def wait_until_spinning(fbox: BoxProcess) -> None:
    async def spinning() -> bool:
        return await busy_calls(fbox.base_url, "spinner") == 1

    await wait_until(spinning, what="the spin to be running in wasm", detail=fbox.log)


async def assert_slot_is_free(fbox: BoxProcess, http: httpx.AsyncClient, url: str) -> None:
    """The spinner has one call slot, and its spin would run for 20 s: the slot coming free
    within the test's deadline proves the cancelled spin was stopped; a quick "ok" proves the
    tenant serves again."""

    async def free() -> bool:
        return await busy_calls(fbox.base_url, "spinner") == 0

    await wait_until(free, what="the cancelled spin to free its slot", detail=fbox.log)
    ok = modern_request(50, "tools/call", {"name": "ok", "arguments": {}})
    headers = modern_headers("unused", "tools/call", "ok")
    del headers["Authorization"]
    reply = (await http.post(url, json=ok, headers=headers)).json()
    assert reply["result"]["content"][0]["text"] == "still serving", reply


async def test_notifications_cancelled_stops_the_running_wasm(fbox: BoxProcess) -> None:
    url = fbox.url("spinner")
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            url,
            json={
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": LEGACY,
                    "capabilities": {},
                    "clientInfo": {"name": "e2e", "version": "1"},
                },
            },
            headers=legacy_headers(),
        )
        session = response.headers["mcp-session-id"]
        headers = legacy_headers(session)
        spinning = asyncio.create_task(http.post(url, json=spin_call(1), headers=headers))
        await wait_until_spinning(fbox)
        cancel = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": 1, "reason": "changed my mind"},
        }
        assert (await http.post(url, json=cancel, headers=headers)).status_code == 202
        answered = await asyncio.wait_for(spinning, 10)
        # No reply for a cancelled request: an SSE stream with nothing in it.
        assert answered.headers["content-type"] == "text/event-stream"
        assert sse_events_of(answered.text) == []
        await assert_slot_is_free(fbox, http, url)


async def test_closing_a_modern_response_stops_the_running_wasm(fbox: BoxProcess) -> None:
    url = fbox.url("spinner")
    headers = modern_headers("unused", "tools/call", "spin")
    del headers["Authorization"]
    body = modern_request(1, "tools/call", {"name": "spin", "arguments": {}})
    async with httpx.AsyncClient(timeout=30) as impatient:
        spinning = asyncio.create_task(impatient.post(url, json=body, headers=headers))
        await wait_until_spinning(fbox)
        spinning.cancel()  # the client gives up and closes its connection
        with pytest.raises(asyncio.CancelledError):
            await spinning
    async with httpx.AsyncClient(timeout=30) as http:
        await assert_slot_is_free(fbox, http, url)
