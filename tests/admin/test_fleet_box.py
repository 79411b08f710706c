"""A real box in its fleet role: the ``Smcp-Box`` header on every response, draining through
the admin API and CLI while a call is in flight, and the fleet in ``status`` (one SQLite box).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitRequestParams, ElicitResult

from smcp_box.box import Box
from smcp_box.errors import ConfigError
from smcp_box.store import Store, load_data_key
from smcp_box.store.fleet import Beat
from tests.admin.support import (
    REPO,
    RunningBox,
    box_settings,
    running_box,
    serving_mcp,
    short_runtime_dir,
)
from tests.admin.test_cli import smcp
from tests.e2e.clients import ACCEPT_BOTH, LEGACY, modern_headers, modern_request
from tests.support.waiting import wait_until

BOX_ID = "alpha_1"


def add_conformance(tenants: Path) -> None:
    """The conformance tenant: public, and its elicitation tool holds a call in flight until
    the client answers."""
    shutil.copytree(REPO / "tests" / "tenants" / "conformance", tenants / "conformance")


@pytest.fixture
async def fleet_box(tmp_path: Path, module_cache: Path) -> AsyncIterator[RunningBox]:
    async with running_box(
        tmp_path, module_cache, add_conformance, {"cluster.box_id": BOX_ID}
    ) as running:
        yield running


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": LEGACY,
        "capabilities": {},
        "clientInfo": {"name": "fleet-tests", "version": "1"},
    },
}
LEGACY_HEADERS = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json"}


async def every_kind_of_response(base: str) -> dict[str, httpx.Response]:
    """One response of each kind the box's port gives, by a name for failure messages."""
    mcp = f"{base}/t/conformance/mcp"
    async with httpx.AsyncClient(timeout=10) as http:
        return {
            "mcp initialize (lean path)": await http.post(
                mcp, json=INITIALIZE, headers=LEGACY_HEADERS
            ),
            "mcp GET (Quart path)": await http.get(mcp, headers={"Accept": "text/event-stream"}),
            "mcp unknown tenant": await http.post(
                f"{base}/t/nobody/mcp", json=INITIALIZE, headers=LEGACY_HEADERS
            ),
            "oauth metadata": await http.get(f"{base}/.well-known/oauth-authorization-server"),
            "oauth authorize page": await http.get(f"{base}/oauth/authorize"),
            "healthz": await http.get(f"{base}/healthz"),
            "readyz": await http.get(f"{base}/readyz"),
            "metrics": await http.get(f"{base}/metrics"),
            "404": await http.get(f"{base}/no/such/page"),
            "landing": await http.get(f"{base}/"),
        }


async def test_every_response_names_its_box(fleet_box: RunningBox) -> None:
    async with serving_mcp(fleet_box) as base:
        responses = await every_kind_of_response(base)
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses["mcp initialize (lean path)"] == 200
    assert statuses["404"] == 404
    assert statuses["mcp unknown tenant"] == 404
    for name, response in responses.items():
        assert response.headers.get("smcp-box") == BOX_ID, name


async def test_box_header_false_leaves_it_out(tmp_path: Path, module_cache: Path) -> None:
    overrides = {"cluster.box_id": BOX_ID, "cluster.box_header": False}
    async with (
        running_box(tmp_path, module_cache, add_conformance, overrides) as rb,
        serving_mcp(rb) as base,
    ):
        responses = await every_kind_of_response(base)
    assert responses["mcp initialize (lean path)"].status_code == 200
    for name, response in responses.items():
        assert "smcp-box" not in response.headers, name


async def test_drain_refuses_new_sessions_and_lets_calls_in_flight_finish(
    fleet_box: RunningBox,
) -> None:
    box = fleet_box.box
    asked, release = asyncio.Event(), asyncio.Event()

    async def elicitation(_: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.set()
        await release.wait()  # the call stays in flight on the box until this returns
        return ElicitResult(action="accept", content={"username": "ada", "email": "a@b.c"})

    async with serving_mcp(fleet_box) as base, httpx.AsyncClient(timeout=10) as http:
        url = f"{base}/t/conformance/mcp"
        sdk_http = httpx2.AsyncClient(timeout=httpx2.Timeout(15.0, read=30.0))
        async with (
            sdk_http,
            Client(
                streamable_http_client(url, http_client=sdk_http),
                mode="legacy",
                elicitation_callback=elicitation,
            ) as client,
        ):
            in_flight = asyncio.create_task(
                client.call_tool("test_elicitation", {"message": "Who are you?"})
            )
            await asyncio.wait_for(asked.wait(), 15)

            drained = await smcp(fleet_box, "drain")
            assert drained.code == 0, drained.err
            assert f"box {BOX_ID} is draining" in drained.out

            ready = await http.get(f"{base}/readyz")
            assert ready.status_code == 503
            assert any("draining" in problem for problem in ready.json()["problems"])
            refused = await http.post(url, json=INITIALIZE, headers=LEGACY_HEADERS)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["code"] == -32058
            assert "draining" in refused.json()["error"]["message"]
            [row] = await box.store.fleet.boxes(dead_after_s=box.settings.cluster.dead_after_s)
            assert (row.box_id, row.status) == (BOX_ID, "draining")

            # The call in flight finishes; the open session and stateless calls carry on.
            release.set()
            result = await asyncio.wait_for(in_flight, 15)
            assert "ada" in result.content[0].text  # type: ignore[union-attr]
            again = await client.call_tool("test_simple_text", {})
            assert again.is_error is False
            stateless = await http.post(
                url,
                json=modern_request(1, "tools/call", {"name": "test_simple_text", "arguments": {}}),
                headers=modern_headers("unused", "tools/call", "test_simple_text"),
            )
            assert stateless.status_code == 200, stateless.text
            assert "error" not in stateless.json()

        second = await fleet_box.client.drain()
        assert (second["draining"], second["changed"]) == (True, False)
        undone = await smcp(fleet_box, "drain", "--undo")
        assert undone.code == 0, undone.err
        assert f"box {BOX_ID} serves again" in undone.out
        assert (await http.get(f"{base}/readyz")).status_code == 200
        welcome = await http.post(url, json=INITIALIZE, headers=LEGACY_HEADERS)
        assert welcome.status_code == 200, welcome.text
        [row] = await box.store.fleet.boxes(dead_after_s=box.settings.cluster.dead_after_s)
        assert row.status == "up"

    await box.auditor.flush()
    events = [(r.event, r.detail.get("changed")) for r in await box.store.audit_page(limit=50)]
    assert ("admin.drain", True) in events
    assert ("admin.drain", False) in events
    assert ("admin.drain.undo", True) in events


async def test_status_shows_the_one_box_and_its_database(fleet_box: RunningBox) -> None:
    body = await fleet_box.client.status()
    [only] = body["fleet"]
    assert (only["box_id"], only["status"], only["this_box"]) == (BOX_ID, "up", True)
    assert only["address"] == f"127.0.0.1:{fleet_box.settings.server.port}"
    assert body["box"] == {
        "box_id": BOX_ID,
        "address": only["address"],
        "draining": False,
        "draining_since": None,
    }
    database = body["database"]
    assert (database["backend"], database["reachable"], database["error"]) == (
        "sqlite",
        True,
        None,
    )
    assert database["location"] == str(fleet_box.settings.database_path())

    text = await smcp(fleet_box, "status")
    assert text.code == 0, text.err
    assert f"box {BOX_ID} at {only['address']}" in text.out
    assert f"database: sqlite {database['location']}, " in text.out
    assert "BOX" in text.out
    line = next(line for line in text.out.splitlines() if line.startswith(f"* {BOX_ID}"))
    address, status, age = line.split()[2:5]
    assert (address, status) == (only["address"], "up")
    assert int(age) < fleet_box.settings.cluster.dead_after_s
    raw = json.loads((await smcp(fleet_box, "status", "--json")).out)
    assert raw["fleet"][0]["box_id"] == BOX_ID


async def test_a_box_refuses_to_start_under_an_id_a_live_box_holds(
    tmp_path: Path, module_cache: Path
) -> None:
    """The database's heartbeat row says another process, elsewhere, beat a second ago."""
    settings = box_settings(tmp_path, module_cache, short_runtime_dir(), {"cluster.box_id": BOX_ID})
    state = settings.state_path()
    state.mkdir(parents=True, mode=0o700)
    key = load_data_key(state, settings.credentials_path())
    async with await Store.open(settings.database_path(), key) as store:
        await store.fleet.claim(
            Beat(BOX_ID, "otherhost/1/x", "10.1.2.3:8765", "0.1.0"), dead_after_s=10.0
        )
    with pytest.raises(ConfigError) as refused:
        await Box.start(settings)
    assert "10.1.2.3:8765" in refused.value.message
    assert "[cluster] box_id" in refused.value.message
    # Nothing was left open or locked: a box under another id starts on the same state.
    other = dataclasses.replace(
        settings, cluster=dataclasses.replace(settings.cluster, box_id="b2")
    )
    box = await Box.start(other)
    try:
        ids = [b.box_id for b in await box.store.fleet.boxes(dead_after_s=10.0)]
        assert ids == [BOX_ID, "b2"]
    finally:
        await box.stop()
    async with await Store.open(settings.database_path(), key) as store:
        statuses = {b.box_id: b.status for b in await store.fleet.boxes(dead_after_s=1e9)}
    # A clean stop marks the row gone at once, however long dead_after_s is.
    assert statuses == {BOX_ID: "up", "b2": "gone"}


async def test_the_heartbeat_runs_and_counts_open_sessions(
    tmp_path: Path, module_cache: Path
) -> None:
    overrides = {"cluster.box_id": BOX_ID, "cluster.heartbeat_s": 0.1, "cluster.dead_after_s": 1.0}
    async with (
        running_box(tmp_path, module_cache, add_conformance, overrides) as rb,
        serving_mcp(rb) as base,
        httpx.AsyncClient(timeout=10) as http,
    ):
        store = rb.box.store
        [first] = await store.fleet.boxes(dead_after_s=1.0)
        assert first.sessions == 0
        opened = await http.post(
            f"{base}/t/conformance/mcp", json=INITIALIZE, headers=LEGACY_HEADERS
        )
        assert opened.status_code == 200

        async def beat_counts_the_session() -> bool:
            [row] = await store.fleet.boxes(dead_after_s=1.0)
            return row.last_beat > first.last_beat and row.sessions == 1

        await wait_until(beat_counts_the_session, what="a heartbeat counting the new session")


async def test_a_box_whose_id_was_taken_over_says_so(
    fleet_box: RunningBox, caplog: pytest.LogCaptureFixture
) -> None:
    box = fleet_box.box
    assert await box.heartbeat() is True
    # Another process claims the id as if this box had been silent past dead_after_s.
    await box.store.fleet.claim(
        Beat(BOX_ID, "elsewhere/1/x", "10.9.9.9:8765", "0.1.0"), dead_after_s=0.0
    )
    assert await box.heartbeat() is False
    assert "taken over by another process" in caplog.text
    [row] = await box.store.fleet.boxes(dead_after_s=10.0)
    assert row.address == "10.9.9.9:8765"  # the new holder's row is left alone


async def test_a_start_that_fails_after_the_claim_frees_the_id(
    tmp_path: Path, module_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smcp_box.tenancy.tasks import TaskRunner

    settings = box_settings(tmp_path, module_cache, short_runtime_dir(), {"cluster.box_id": BOX_ID})

    async def broken(self: TaskRunner) -> None:
        raise ConfigError("recovery failed (a test's doing)")

    with monkeypatch.context() as patched:
        patched.setattr(TaskRunner, "recover", broken)
        with pytest.raises(ConfigError, match="a test's doing"):
            await Box.start(settings)
    # This process may start under the same id at once: the failed start marked its row.
    box = await Box.start(settings)
    try:
        [row] = await box.store.fleet.boxes(dead_after_s=10.0)
        assert (row.instance, row.status) == (box.instance, "up")
    finally:
        await box.stop()
