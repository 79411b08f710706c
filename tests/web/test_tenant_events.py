"""Tenant-wide notifications: subscriptions/listen (2026-07-28), resource subscriptions and
list changes on handshake-era GET streams, and Mcp-Param-* checks against the listed schemas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from smcp_box.web.mcp import TransportSettings
from tests.support.waiting import wait_until
from tests.web.conftest import BETA_TOKEN, BoxUnderTest, run_box
from tests.web.fakes_interactive import InteractiveRuntime
from tests.web.rawhttp import Event, initialize, modern, rpc, session_headers, sse_events
from tests.web.waiting import Changes

SUB_ID = "io.modelcontextprotocol/subscriptionId"


@pytest.fixture
async def ibox() -> AsyncIterator[BoxUnderTest]:
    async for running in run_box(
        TransportSettings(sse_keepalive_s=0.2), alpha=InteractiveRuntime()
    ):
        yield running


class Stream:
    """An open SSE response read in the background, so a test can act and then look."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.status = 0
        self.headers: httpx.Headers = httpx.Headers()
        self.opened = asyncio.Event()
        self.ended = asyncio.Event()
        self.changes = Changes()

    def messages(self) -> list[dict[str, Any]]:
        return [event.json() for event in self.events if event.data]

    async def until(self, count: int) -> list[dict[str, Any]]:
        """The messages once there are at least ``count`` (woken by each event read)."""
        await self.changes.until(lambda: len(self.messages()) >= count or self.ended.is_set())
        assert len(self.messages()) >= count, self.messages()
        return self.messages()

    async def primed(self) -> None:
        """Wait for the stream's first event (a GET stream's priming event: it is registered)."""
        await self.changes.until(lambda: bool(self.events) or self.ended.is_set())
        assert self.events


@contextlib.asynccontextmanager
async def reading(
    http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> AsyncIterator[Stream]:
    stream = Stream()

    async def read() -> None:
        try:
            async with http.stream(method, url, **kwargs) as response:
                stream.status, stream.headers = response.status_code, response.headers
                stream.opened.set()
                async for event in sse_events(response):
                    stream.events.append(event)
                    stream.changes.note()
        finally:
            stream.opened.set()
            stream.ended.set()
            stream.changes.note()

    task = asyncio.create_task(read())
    await asyncio.wait_for(stream.opened.wait(), 5)
    try:
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def listen(notifications: dict[str, Any], request_id: Any = "L1") -> tuple[dict[str, str], Any]:
    return modern("subscriptions/listen", {"notifications": notifications}, request_id)


async def call_modern(
    http: httpx.AsyncClient, box: BoxUnderTest, tool: str, arguments: dict[str, Any] | None = None
) -> httpx.Response:
    headers, body = modern(
        "tools/call", {"name": tool, "arguments": arguments or {}}, 99, name=tool
    )
    if tool == "region" and arguments and "region" in arguments:
        headers["Mcp-Param-Region"] = arguments["region"]
    return await http.post(box.url(), headers=headers, json=body)


async def test_listen_acknowledges_then_delivers_what_was_asked(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = listen({"toolsListChanged": True, "resourcesListChanged": True})
    async with (
        reading(http, "POST", ibox.url(), headers=headers, json=body) as tools,
        reading(
            http, "POST", ibox.url(), headers=headers, json=listen({"promptsListChanged": True})[1]
        ) as prompts,
    ):
        assert tools.status == 200
        assert tools.headers["content-type"] == "text/event-stream"
        (ack,) = await tools.until(1)
        # Only what the tenant declares is acknowledged (no resources.listChanged here).
        assert ack == {
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": {"notifications": {"toolsListChanged": True}, "_meta": {SUB_ID: "L1"}},
        }
        await prompts.until(1)
        changed = await call_modern(http, ibox, "change")
        # The emitting call's own response carries nothing of it: plain JSON.
        assert changed.headers["content-type"] == "application/json"
        assert changed.json()["result"]["content"][0]["text"] == "changed"
        _, note = await tools.until(2)
        assert note["method"] == "notifications/tools/list_changed"
        assert note["params"]["_meta"] == {SUB_ID: "L1"}
        await call_modern(http, ibox, "change_prompts")
        _, prompt_note = await prompts.until(2)
        assert prompt_note["method"] == "notifications/prompts/list_changed"
        # Never a type the filter did not ask for. Events reach each stream in the order they
        # happen, so one more event of each stream's own type, arriving right after, shows
        # that nothing else came in between.
        await call_modern(http, ibox, "change")
        await call_modern(http, ibox, "change_prompts")
        tools_seen = [m["method"] for m in (await tools.until(3))[1:]]
        prompts_seen = [m["method"] for m in (await prompts.until(3))[1:]]
        assert tools_seen == ["notifications/tools/list_changed"] * 2
        assert prompts_seen == ["notifications/prompts/list_changed"] * 2
    # Closed streams are unregistered once the server notices (at the latest at the next
    # keep-alive it fails to write).
    transport = ibox.transport
    assert transport is not None
    await wait_until(
        lambda: transport.events.listener_count("alpha") == 0, what="the listener to be dropped"
    )


async def test_listen_for_resource_updates(ibox: BoxUnderTest, http: httpx.AsyncClient) -> None:
    headers, body = listen({"resourceSubscriptions": ["mem://a"]}, 7)
    async with reading(http, "POST", ibox.url(), headers=headers, json=body) as stream:
        (ack,) = await stream.until(1)
        assert ack["params"]["notifications"] == {"resourceSubscriptions": ["mem://a"]}
        await call_modern(http, ibox, "touch", {"uri": "mem://b"})
        await call_modern(http, ibox, "touch", {"uri": "mem://a"})
        _, update = await stream.until(2)
        assert update["params"] == {"uri": "mem://a", "_meta": {SUB_ID: 7}}


async def test_shutdown_ends_listen_streams_with_their_result(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    headers, body = listen({"toolsListChanged": True}, 3)
    async with reading(http, "POST", ibox.url(), headers=headers, json=body) as stream:
        await stream.until(1)
        assert ibox.transport is not None
        await ibox.transport.aclose()
        await asyncio.wait_for(stream.ended.wait(), 5)
    assert stream.messages()[-1] == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {"resultType": "complete", "_meta": {SUB_ID: 3}},
    }


async def test_listen_refusals(ibox: BoxUnderTest, http: httpx.AsyncClient) -> None:
    # A tenant that declares nothing to listen to: 404 -32601 (what the suite accepts then).
    headers, body = listen({"toolsListChanged": True}, 4)
    headers["Authorization"] = f"Bearer {BETA_TOKEN}"
    response = await http.post(ibox.url("beta"), headers=headers, json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == -32601
    assert response.json()["id"] == 4
    headers, body = modern("subscriptions/listen", {"notifications": "all"}, 5)
    bad = await http.post(ibox.url(), headers=headers, json=body)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == -32602
    # The handshake era has no subscriptions/listen.
    session = await initialize(http, ibox)
    legacy = await http.post(
        ibox.url(), headers=session_headers(session), json=rpc("subscriptions/listen", {})
    )
    assert legacy.json()["error"]["code"] == -32601


async def test_legacy_subscriptions_deliver_updates_on_the_get_stream(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, ibox)
    other = await initialize(http, ibox)
    headers = session_headers(session)

    async def post(message: dict[str, Any]) -> httpx.Response:
        return await http.post(ibox.url(), headers=headers, json=message)

    subscribed = await post(rpc("resources/subscribe", {"uri": "mem://a"}, 1))
    assert subscribed.json()["result"] == {}
    refused = await post(rpc("resources/subscribe", {"uri": "file:///etc"}, 2))
    assert refused.json()["error"]["code"] == -32602
    assert (await ibox.session(session)).state["subscriptions"] == ["mem://a"]

    async with (
        reading(http, "GET", ibox.url(), headers=headers) as mine,
        reading(http, "GET", ibox.url(), headers=session_headers(other)) as theirs,
    ):
        await mine.primed()
        await theirs.primed()
        touched = await post(rpc("tools/call", {"name": "touch", "arguments": {"uri": "mem://a"}}))
        # The caller's own request stream does not carry the update: it is on the GET stream.
        assert touched.headers["content-type"] == "application/json"
        await post(rpc("tools/call", {"name": "touch", "arguments": {"uri": "mem://b"}}, 3))
        (update,) = await mine.until(1)
        assert update == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "mem://a"},
        }
        # List changes go to every session's GET stream.
        await post(rpc("tools/call", {"name": "change", "arguments": {}}, 4))
        assert (await mine.until(2))[1]["method"] == "notifications/tools/list_changed"
        assert [m["method"] for m in await theirs.until(1)] == ["notifications/tools/list_changed"]
        unsubscribed = await post(rpc("resources/unsubscribe", {"uri": "mem://a"}, 5))
        assert unsubscribed.json()["result"] == {}
        await post(rpc("tools/call", {"name": "touch", "arguments": {"uri": "mem://a"}}, 6))
        # No update after unsubscribing: the next event on the stream (a list change, sent
        # after the touch) comes right after the previous one.
        await post(rpc("tools/call", {"name": "change", "arguments": {}}, 7))
        assert [m["method"] for m in (await mine.until(3))[2:]] == [
            "notifications/tools/list_changed"
        ]
    assert (await ibox.session(session)).state["subscriptions"] == []
    # GET-stream frames are persisted like any other, so a dropped reader can resume them.
    stored = [e.stream_id for e in ibox.stored(session)]
    assert stored.count("standalone") == 4  # priming, the update, the two list changes


async def test_mcp_param_headers_are_checked_against_the_listed_schema(
    ibox: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    ok = await call_modern(http, ibox, "region", {"region": "eu-west"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["result"]["content"][0]["text"] == "region eu-west"
    headers, body = modern(
        "tools/call", {"name": "region", "arguments": {"region": "eu"}}, 8, name="region"
    )
    for sent, why in [(None, "missing"), ("us", "does not match"), ("=?base64?ZXU?=", "match")]:
        if sent is not None:
            headers["Mcp-Param-Region"] = sent
        response = await http.post(ibox.url(), headers=headers, json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], response.json()["id"]) == (-32020, 8)
        assert why in error["message"]
    # The base64 sentinel of the right value is the same value.
    headers["Mcp-Param-Region"] = "=?base64?ZXU=?="
    assert (await http.post(ibox.url(), headers=headers, json=body)).status_code == 200
    # The schema came from the description: no tools/list per request.
    assert ibox.alpha.tools_list_calls == 0

    # The module changes its tools (region is now mirrored as Zone) and says so: the box asks
    # for the new list once, and checks against it from then on.
    await call_modern(http, ibox, "change")
    stale = await call_modern(http, ibox, "region", {"region": "eu"})
    assert stale.status_code == 400
    assert "Mcp-Param-Zone" in stale.json()["error"]["message"]
    headers, body = modern(
        "tools/call", {"name": "region", "arguments": {"region": "eu"}}, 9, name="region"
    )
    headers["Mcp-Param-Zone"] = "eu"
    assert (await http.post(ibox.url(), headers=headers, json=body)).status_code == 200
    assert ibox.alpha.tools_list_calls == 1
