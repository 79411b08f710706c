"""Three boxes on one PostgreSQL behind HAProxy (from lb-config), stateless era: any box
serves any call, a dead box costs no call, a key made or revoked on one box counts on all."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from mcp.types import TextContent

from tests.e2e.clients import MODERN, connect
from tests.fleet.support import (
    DRAIN,
    FAN_OUT,
    HEARTBEATS,
    echo,
    echo_many,
    failures,
    needs_fleet,
)
from tests.support.fleet import Fleet
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, *needs_fleet]

PATH = "/t/utils/mcp"


async def test_stateless_calls_spread_over_the_three_boxes(fleet: Fleet, utils_key: str) -> None:
    before = fleet.served(PATH, 200)
    outcomes = await echo_many(fleet.url("utils"), utils_key, 90, concurrency=6)
    assert failures(outcomes) == []
    served = {box: fleet.served(PATH, 200)[box] - before[box] for box in fleet.boxes}
    assert sum(served.values()) == 90
    # Least connections among equals takes turns: every box gets a fair share.
    assert all(count >= 15 for count in served.values()), served
    named = Counter(o.box for o in outcomes)
    if None not in named:  # the boxes name themselves: the header agrees with their logs
        assert dict(named) == served


async def test_the_sdk_client_works_through_the_balancer(fleet: Fleet, utils_key: str) -> None:
    before = fleet.served(PATH, 200)
    async with connect(fleet.url("utils"), utils_key, MODERN) as client:
        tools = await client.list_tools()
        assert "echo" in {tool.name for tool in tools.tools}
        for number in range(12):
            result = await client.call_tool("echo", {"text": f"sdk {number}"})
            assert not result.is_error
            content = result.content[0]
            assert isinstance(content, TextContent)
            assert content.text == f"sdk {number}"
    served = {box: fleet.served(PATH, 200)[box] - before[box] for box in fleet.boxes}
    assert sum(1 for count in served.values() if count) >= 2, served


async def test_kill_9_of_a_box_mid_run_fails_no_call(fleet: Fleet, utils_key: str) -> None:
    """Every call the dead box had not answered is retried on another box, and none is lost:
    a box writes each reply in one system call (web/connections.py), so when it dies it has
    sent a whole reply or none of it, and HAProxy resends a request that got none. (Were head
    and body two writes, a kill between them would leave the client a reply's start that no
    proxy can take back: HAProxy's ``SD`` termination state, checked to be absent.)"""
    victim = "box2"
    killed: list[str] = []

    def kill_at_a_third(done: int) -> None:
        if done == 100 and not killed:
            fleet.kill(victim)
            killed.append(victim)

    try:
        outcomes = await echo_many(
            fleet.url("utils"), utils_key, 300, concurrency=8, after_each=kill_at_a_third
        )
        assert killed, "the run ended before the kill"
        assert len(outcomes) == 300
        assert failures(outcomes) == [], fleet.logs()
        assert fleet.replies_cut_short(victim) == 0, fleet.logs()
        fleet.wait_lb_sees(victim, "DOWN")
        # Down: new calls go to the two others only.
        before = fleet.served(PATH, 200)
        assert failures(await echo_many(fleet.url("utils"), utils_key, 20, concurrency=4)) == []
        after = fleet.served(PATH, 200)
        assert after[victim] == before[victim]
        assert sum(after.values()) - sum(before.values()) == 20
    finally:
        fleet.restart(victim)
        fleet.wait_lb_sees(victim, "UP")


async def test_a_key_created_on_one_box_works_through_every_box(fleet: Fleet) -> None:
    key = fleet.create_key("utils", on="box2")
    async with httpx.AsyncClient(timeout=30) as http:
        for box in fleet.boxes.values():
            outcome = await echo(http, box.url("utils"), key, f"direct to {box.box_id}", 1)
            assert (outcome.status, outcome.echoed) == (200, True), outcome
    assert failures(await echo_many(fleet.url("utils"), key, 9, concurrency=3)) == []


@pytest.mark.skipif(
    not FAN_OUT,
    reason="fan-out through PostgreSQL NOTIFY not built: each box keeps a key's check for 2 s",
)
async def test_a_key_revoked_on_one_box_is_refused_by_all_within_a_second(fleet: Fleet) -> None:
    key = fleet.create_key("utils", on="box1")
    async with httpx.AsyncClient(timeout=30) as http:
        # Each box has served the key (and may hold it in a cache) before it is revoked.
        for box in fleet.boxes.values():
            assert (await echo(http, box.url("utils"), key, "warm", 1)).status == 200
        fleet.box("box3").cli("key", "revoke", key)
        refused: set[str] = set()

        async def refused_by_all() -> bool:
            for box in fleet.boxes.values():
                if box.box_id not in refused:
                    outcome = await echo(http, box.url("utils"), key, "after", 2)
                    if outcome.status == 401:
                        refused.add(box.box_id)
            return refused == set(fleet.boxes)

        # Here the deadline is the requirement itself (issue 19: refused by all within a
        # second of the revocation's commit), not only a test timeout.
        await wait_until(
            refused_by_all, what="every box to refuse the revoked key", timeout=1.0, interval=0.01
        )


def test_a_box_that_comes_back_rejoins_the_rotation(fleet: Fleet, utils_key: str) -> None:
    # A clean stop (SIGTERM) rather than a kill: HAProxy sees it down, then up again.
    box = fleet.box("box1")
    assert box.stop() == 0
    fleet.wait_lb_sees("box1", "DOWN")
    fleet.restart("box1")
    fleet.wait_lb_sees("box1", "UP")
    before = fleet.served(PATH, 200)["box1"]
    outcomes = asyncio.run(echo_many(fleet.url("utils"), utils_key, 30, concurrency=3))
    assert failures(outcomes) == []
    assert fleet.served(PATH, 200)["box1"] > before


@pytest.mark.skipif(not HEARTBEATS, reason="box heartbeats (the store's fleet area) not built")
def test_lb_config_without_boxes_reads_them_from_the_heartbeats(fleet: Fleet) -> None:
    done = fleet.box("box1").cli("lb-config", "--listen", "127.0.0.1:8080")
    for box_id, box in fleet.boxes.items():
        assert f"server {box_id} 127.0.0.1:{box.port}" in done.stdout
    # A box that stopped is left out, and named.
    assert fleet.box("box3").stop() == 0
    try:
        done = fleet.box("box1").cli("lb-config", "--listen", "127.0.0.1:8080")
        assert "server box3" not in done.stdout
        assert "server box2" in done.stdout
        assert "left out box3" in done.stderr
    finally:
        fleet.restart("box3")
        fleet.wait_lb_sees("box3", "UP")


@pytest.mark.skipif(not DRAIN, reason="smcp-box drain not built")
async def test_a_drained_box_leaves_the_rotation_and_comes_back(
    fleet: Fleet, utils_key: str
) -> None:
    fleet.box("box2").cli("drain")
    try:
        # /readyz answers 503: HAProxy's checks take the box out; calls carry on elsewhere.
        fleet.wait_lb_sees("box2", "DOWN")
        before = fleet.served(PATH, 200)
        assert failures(await echo_many(fleet.url("utils"), utils_key, 30, concurrency=3)) == []
        assert fleet.served(PATH, 200)["box2"] == before["box2"]
    finally:
        fleet.box("box2").cli("drain", "--undo")
    fleet.wait_lb_sees("box2", "UP")
    before = fleet.served(PATH, 200)
    assert failures(await echo_many(fleet.url("utils"), utils_key, 30, concurrency=3)) == []
    assert fleet.served(PATH, 200)["box2"] > before["box2"]


async def test_http2_clients_are_served_through_the_balancer(fleet: Fleet, utils_key: str) -> None:
    # Without TLS, HTTP/2 with prior knowledge (h2c); HAProxy speaks HTTP/1.1 to the boxes.
    async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as http:
        outcomes = [await echo(http, fleet.url("utils"), utils_key, f"h2 {n}", n) for n in range(6)]
        health = await http.get(f"{fleet.base_url}/healthz")
    assert health.http_version == "HTTP/2"
    assert [(o.status, o.echoed) for o in outcomes] == [(200, True)] * 6
