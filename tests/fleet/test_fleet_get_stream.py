"""Handshake era across the fleet: a session's GET stream outlives a ``kill -9`` of its owner.

A 2025-11-25 session opens its GET stream through HAProxy, so it lands on the owner box. The
session's tenant-wide events (``notifications/tools/list_changed``) are triggered through
*other* boxes and reach the stream through the change feed, each persisted with an event id.
The client has taken in only some of them when the owner dies. It resumes with
``Last-Event-ID`` through HAProxy, which sends it to a live box: that box takes the session
over, replays from the shared event log what the client had not taken in, then follows live
while more events are triggered on yet another box. Every event after the id arrives exactly
once, in order (consecutive event numbers of one stream, no gap, no duplicate), and a POST on
the same session id then works without a new initialize. Another session's GET stream, on a
box that lives, hears every change without a break.

The boundary, as on one box: a tenant-wide change made while the session has no GET stream
attached anywhere (after the kill, before the client resumes) goes to no stream and is never
in its log, so no resume can replay it. What the log holds is replayed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smcp_box.store.sessions import parse_event_id
from tests.e2e.boxproc import REPO
from tests.e2e.clients import ACCEPT_BOTH, modern_request, parse_single_response
from tests.fleet.support import BOX_HEADER, SESSIONS_MOVE, needs_fleet
from tests.support.fleet import Fleet, fresh_database, running_fleet
from tests.support.waiting import wait_until
from tests.web.rawhttp import Event, sse_events

pytestmark = [
    pytest.mark.slow,
    *needs_fleet,
    pytest.mark.skipif(
        not SESSIONS_MOVE, reason="sessions that move (owner and epoch on sessions) not built"
    ),
]

TENANT = "conformance"
LEGACY = "2025-11-25"
TOOLS_CHANGED = "notifications/tools/list_changed"
PROMPTS_CHANGED = "notifications/prompts/list_changed"
#: The whole test, start to finish (the fleet is started by the fixture, outside it).
TEST_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def stream_fleet(
    fleet_postgres: str, tmp_path_factory: pytest.TempPathFactory, fleet_cache: Path
) -> Iterator[Fleet]:
    """Three boxes serving the conformance tenant (public; its tools announce list changes)."""
    tenants = tmp_path_factory.mktemp("stream-fleet-tenants")
    shutil.copytree(REPO / "tests" / "tenants" / "conformance", tenants / TENANT)
    with running_fleet(
        tenants, dsn=fresh_database(fleet_postgres), cache_dir=fleet_cache
    ) as running:
        yield running


def legacy_headers(session_id: str | None = None, **extra: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": ACCEPT_BOTH,
        "MCP-Protocol-Version": LEGACY,
        **extra,
    }
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
    return headers


def rpc(request_id: int | None, method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


async def open_legacy_session(http: httpx.AsyncClient, url: str) -> str:
    """initialize, then notifications/initialized, through the balancer; the session id."""
    init = {
        "protocolVersion": LEGACY,
        "capabilities": {},
        "clientInfo": {"name": "fleet-get-stream", "version": "1"},
    }
    reply = await http.post(url, content=rpc(0, "initialize", init), headers=legacy_headers())
    assert reply.status_code == 200, reply.text
    session_id = reply.headers["mcp-session-id"]
    done = await http.post(
        url, content=rpc(None, "notifications/initialized"), headers=legacy_headers(session_id)
    )
    assert done.status_code in (200, 202), done.text
    return session_id


async def session_elsewhere(http: httpx.AsyncClient, url: str, box: str) -> tuple[str, str]:
    """A new session through the balancer that another box than ``box`` owns (initialize
    goes to the box with the fewest connections: soon one that is not ``box``)."""
    for _ in range(15):
        session_id = await open_legacy_session(http, url)
        owner = session_id.split("-", 1)[0]
        if owner != box:
            return session_id, owner
    raise AssertionError(f"every new session went to {box}")


async def trigger(http: httpx.AsyncClient, fleet: Fleet, box: str, tool: str) -> None:
    """A stateless tools/call of one of the tenant's notifying tools, sent straight to ``box``
    (not through the balancer): the notification it causes crosses the change feed."""
    body = modern_request(1, "tools/call", {"name": tool, "arguments": {}})
    headers = {
        "Content-Type": "application/json",
        "Accept": ACCEPT_BOTH,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    reply = await http.post(fleet.box(box).url(TENANT), json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    assert not parse_single_response(reply)["result"].get("isError"), reply.text


async def collect(response: httpx.Response, into: list[Event]) -> None:
    """Append every event of an SSE body to ``into`` until the stream ends or breaks (the box
    behind it killed: HAProxy cuts the reply short)."""
    try:
        async for event in sse_events(response):
            into.append(event)
    except httpx.TransportError:
        pass


def methods(events: list[Event]) -> list[str]:
    return [json.loads(e.data).get("method", "") for e in events if e.data]


def changes(events: list[Event], method: str = TOOLS_CHANGED) -> list[Event]:
    return [e for e in events if e.data and json.loads(e.data).get("method") == method]


def event_number(event: Event) -> tuple[int, int]:
    assert event.id is not None, f"an event without an id: {event}"
    parsed = parse_event_id(event.id)
    assert parsed is not None, f"not an event id of the box: {event.id!r}"
    return parsed


async def count_at_least(events: list[Event], wanted: int, method: str = TOOLS_CHANGED) -> bool:
    return len(changes(events, method)) >= wanted


@contextlib.asynccontextmanager
async def reading(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], into: list[Event]
) -> AsyncIterator[httpx.Response]:
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        task = asyncio.create_task(collect(response, into))
        try:
            yield response
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_get_stream_resumed_after_kill_9_of_its_owner_loses_and_repeats_nothing(
    stream_fleet: Fleet,
) -> None:
    fleet = stream_fleet
    url = fleet.url(TENANT)
    heard: list[Event] = []
    async with (
        asyncio.timeout(TEST_DEADLINE_S),
        httpx.AsyncClient(timeout=20) as http,
        contextlib.AsyncExitStack() as streams,
    ):
        session_id = await open_legacy_session(http, url)
        owner = session_id.split("-", 1)[0]
        assert owner in fleet.boxes, session_id
        others = [box for box in fleet.boxes if box != owner]

        # 1. The GET stream, through the balancer: on the owner. Five changes made on another
        # box reach it; the client takes in only the first three (its Last-Event-ID).
        before: list[Event] = []
        get = legacy_headers(session_id, Accept="text/event-stream")
        async with reading(http, url, get, before) as response:
            assert response.headers.get(BOX_HEADER) == owner
            # A bystander: another session, on a box that survives, whose GET stream stays
            # open throughout and must hear every change, the kill notwithstanding.
            bystander_id, bystander_box = await session_elsewhere(http, url, owner)
            bystander_get = legacy_headers(bystander_id, Accept="text/event-stream")
            bystander = await streams.enter_async_context(reading(http, url, bystander_get, heard))
            assert bystander.headers.get(BOX_HEADER) == bystander_box
            for _ in range(5):
                await trigger(http, fleet, others[0], "test_trigger_tool_change")
            await wait_until(
                lambda: count_at_least(before, 5),
                what="five tools/list_changed on the owner's GET stream",
                detail=lambda: (methods(before), fleet.logs()),
            )
            fleet.kill(owner)
        seen = changes(before)
        assert len(seen) == 5, methods(before)
        stream_seq = event_number(seen[0])[0]
        numbers = [event_number(e) for e in seen]
        assert numbers == [(stream_seq, numbers[0][1] + i) for i in range(5)], numbers
        last_taken_in = seen[2]
        assert last_taken_in.id is not None

        # 2. Resume through the balancer with Last-Event-ID: the owner is dead, so HAProxy
        # sends the GET to a live box, which takes the session over and replays the two
        # events the client had not taken in from the shared log, then follows live.
        after: list[Event] = []
        resume = legacy_headers(
            session_id, Accept="text/event-stream", **{"Last-Event-ID": last_taken_in.id}
        )
        async with reading(http, url, resume, after) as response:
            assert response.headers.get("mcp-session-id") in (None, session_id)
            serving = response.headers.get(BOX_HEADER)
            assert serving in others, f"the stream was served by {serving!r}, not a live box"
            await wait_until(
                lambda: count_at_least(after, 2),
                what="the two events the client missed, replayed",
                detail=lambda: (methods(after), fleet.logs()),
            )
            # More changes while the owner stays dead, made on a box that is not the one
            # serving the stream (when the header names it): they cross the change feed.
            elsewhere = next(box for box in others if box != serving)
            for _ in range(4):
                await trigger(http, fleet, elsewhere, "test_trigger_tool_change")
            # A different change last: once it is here, everything before it is too, and any
            # duplicate would have shown before it.
            await trigger(http, fleet, elsewhere, "test_trigger_prompt_change")
            await wait_until(
                lambda: count_at_least(after, 1, PROMPTS_CHANGED),
                what="the closing prompts/list_changed on the resumed stream",
                detail=lambda: (methods(after), fleet.logs()),
            )
        resumed = [e for e in after if e.data]
        # Exactly once, in order: the events after Last-Event-ID are the rest of the same
        # stream, numbered on from it with no gap and no repeat.
        assert methods(resumed) == [TOOLS_CHANGED] * 6 + [PROMPTS_CHANGED], methods(after)
        first = event_number(last_taken_in)[1] + 1
        assert [event_number(e) for e in resumed] == [
            (stream_seq, first + i) for i in range(len(resumed))
        ], [e.id for e in after]
        assert [e.id for e in resumed[:2]] == [e.id for e in seen[3:]]

        # The bystander's stream never broke: all ten changes, in one run of event numbers.
        await wait_until(
            lambda: count_at_least(heard, 1, PROMPTS_CHANGED),
            what="the closing prompts/list_changed on the bystander's stream",
            detail=lambda: (methods(heard), fleet.logs()),
        )
        told = [e for e in heard if e.data]
        assert methods(told) == [TOOLS_CHANGED] * 9 + [PROMPTS_CHANGED], methods(heard)
        start = event_number(told[0])
        assert [event_number(e) for e in told] == [
            (start[0], start[1] + i) for i in range(len(told))
        ], [e.id for e in heard]

        # 3. The same session id still works for a POST: no new initialize.
        reply = await http.post(
            url, content=rpc(7, "tools/list"), headers=legacy_headers(session_id)
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers.get("mcp-session-id") in (None, session_id)
        assert reply.headers.get(BOX_HEADER) != owner
        assert parse_single_response(reply)["result"]["tools"], reply.text
