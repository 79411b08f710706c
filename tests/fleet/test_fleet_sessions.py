"""Handshake era across the fleet: a session's follow-ups reach the box that owns it (HAProxy
routes on the ``<box_id>-`` prefix of its id), and when that box dies the session carries on
on another box, with the same id and no new initialize. Other sessions are unaffected."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mcp.types import TextContent

from bench.mcpclient import open_session
from bench.peers import payload
from tests.e2e.clients import connect, parse_single_response
from tests.fleet.support import BOX_HEADER, SESSIONS_MOVE, needs_fleet
from tests.support.fleet import Fleet

pytestmark = [
    pytest.mark.slow,
    *needs_fleet,
    pytest.mark.skipif(
        not SESSIONS_MOVE, reason="sessions that move (owner and epoch on sessions) not built"
    ),
]

PATH = "/t/utils/mcp"


def call(http: httpx.Client, url: str, key: str, session_id: str, text: str) -> httpx.Response:
    """One echo tools/call in a legacy session; checked to echo ``text``."""
    response = http.post(
        url,
        content=payload.call_body("legacy", text=text),
        headers=payload.call_headers("legacy", session_id, key),
    )
    assert response.status_code == 200, response.text
    message = parse_single_response(response)
    assert message["result"]["content"][0]["text"] == text, message
    # The session keeps its id: a box that took it over does not hand out a new one.
    assert response.headers.get("mcp-session-id") in (None, session_id)
    return response


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def test_follow_ups_land_on_the_box_that_owns_the_session(
    fleet: Fleet, utils_key: str, http: httpx.Client
) -> None:
    url = fleet.url("utils")
    for _ in range(3):
        session_id = open_session(http, url, utils_key)
        owner = session_id.split("-", 1)[0]
        assert owner in fleet.boxes, session_id
        before = fleet.served(PATH)
        for number in range(10):
            response = call(http, url, utils_key, session_id, f"follow-up {number}")
            assert response.headers.get(BOX_HEADER, owner) == owner
        after = fleet.served(PATH)
        assert {box: after[box] - before[box] for box in fleet.boxes} == {
            box: 10 if box == owner else 0 for box in fleet.boxes
        }


async def test_kill_9_of_an_owner_its_sessions_carry_on_elsewhere(
    fleet: Fleet, utils_key: str, http: httpx.Client
) -> None:
    url = fleet.url("utils")
    owned: dict[str, str] = {}
    for _ in range(15):  # initialize goes to the least busy box: soon every box owns one
        session_id = open_session(http, url, utils_key)
        owned.setdefault(session_id.split("-", 1)[0], session_id)
        if len(owned) == len(fleet.boxes):
            break
    assert set(owned) == set(fleet.boxes), owned
    for box, session_id in owned.items():
        call(http, url, utils_key, session_id, f"before, on {box}")

    # The official SDK client, in a session of its own, sees nothing of what follows.
    async with connect(url, utils_key, "legacy") as client:
        first = await client.call_tool("echo", {"text": "sdk before"})
        assert not first.is_error
        victim = "box1"
        try:
            fleet.kill(victim)
            for box, session_id in owned.items():
                response = call(http, url, utils_key, session_id, f"after, was on {box}")
                if box == victim:
                    assert response.headers.get(BOX_HEADER) != victim
            for number in range(5):
                result = await client.call_tool("echo", {"text": f"sdk after {number}"})
                assert not result.is_error
                content = result.content[0]
                assert isinstance(content, TextContent)
                assert content.text == f"sdk after {number}"
            # The taken-over session stays where it went: follow-ups keep working.
            fleet.wait_lb_sees(victim, "DOWN")
            for number in range(3):
                call(http, url, utils_key, owned[victim], f"again {number}")
        finally:
            fleet.restart(victim)
            fleet.wait_lb_sees(victim, "UP")
