"""Handshake-era streams through the real box: resume with Last-Event-ID, DELETE, and sessions
that survive a restart of the box."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import legacy_headers, legacy_session, sse_events_of
from tests.e2e.conftest import make_tenants


def primes_call(request_id: int) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": "count_primes",
            "arguments": {"n": 2_000_000},
            "_meta": {"progressToken": f"tok-{request_id}"},
        },
    }


async def test_dropped_stream_resumes_with_last_event_id(
    box: BoxProcess, keys: dict[str, str]
) -> None:
    url, key = box.url("utils"), keys["utils"]
    async with httpx.AsyncClient(timeout=30) as http:
        session = await legacy_session(http, url, key)
        # Read one event carrying an id, then drop the connection mid-stream.
        async with http.stream(
            "POST", url, json=primes_call(7), headers=legacy_headers(key, session)
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen = ""
            last_id = None
            async for chunk in response.aiter_text():
                seen += chunk
                events = [e for e in sse_events_of(seen + "\n\n") if e[0]]
                if any("notifications/progress" in data for _, data in events):
                    last_id = events[-1][0]
                    break
        assert last_id is not None
        resumed = await http.get(
            url, headers={**legacy_headers(key, session), "Last-Event-ID": last_id}
        )
        assert resumed.status_code == 200
        messages = [json.loads(data) for _, data in sse_events_of(resumed.text)]
        final = [m for m in messages if m.get("id") == 7]
        assert len(final) == 1
        assert final[0]["result"]["structuredContent"]["count"] == 148933
        progress = [m["params"]["progress"] for m in messages if "method" in m]
        assert progress == sorted(progress)
        # Nothing at or before the resumed id comes again.
        ids = [event_id for event_id, _ in sse_events_of(resumed.text) if event_id]
        assert last_id not in ids


async def test_delete_ends_the_session(box: BoxProcess, keys: dict[str, str]) -> None:
    url, key = box.url("notes"), keys["notes"]
    async with httpx.AsyncClient(timeout=30) as http:
        session = await legacy_session(http, url, key)
        ended = await http.delete(url, headers=legacy_headers(key, session))
        assert ended.status_code in (200, 204)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        after = await http.post(url, json=ping, headers=legacy_headers(key, session))
        assert after.status_code == 404


async def test_sessions_and_events_survive_a_restart(tmp_path: Path) -> None:
    """Also under another box id: the box that comes back as ``box_b`` takes over the sessions
    ``box_a`` opened (docs/scale-out.md, "Sessions that move")."""
    proc = BoxProcess(
        workdir=tmp_path,
        tenants_dir=make_tenants(tmp_path),
        extra_env={"SMCP_BOX_CLUSTER_BOX_ID": "box_a"},
    )
    proc.start()
    try:
        key = proc.create_key("utils")
        url = proc.url("utils")
        async with httpx.AsyncClient(timeout=30) as http:
            session = await legacy_session(http, url, key)
            assert session.startswith("box_a-")
            first = await http.post(url, json=primes_call(3), headers=legacy_headers(key, session))
            events = sse_events_of(first.text)
            first_progress_id = next(
                event_id for event_id, data in events if "notifications/progress" in data
            )
        assert proc.stop() == 0
        proc.extra_env["SMCP_BOX_CLUSTER_BOX_ID"] = "box_b"
        proc.start()
        async with httpx.AsyncClient(timeout=30) as http:
            ping = {"jsonrpc": "2.0", "id": 4, "method": "ping"}
            alive = await http.post(url, json=ping, headers=legacy_headers(key, session))
            assert alive.status_code == 200, alive.text
            assert alive.json()["result"] == {}
            replay = await http.get(
                url, headers={**legacy_headers(key, session), "Last-Event-ID": first_progress_id}
            )
            replayed = [json.loads(d) for _, d in sse_events_of(replay.text)]
            assert any(m.get("id") == 3 and "result" in m for m in replayed)
        owners = sqlite3.connect(tmp_path / "state" / "smcp-box.db")
        try:
            assert owners.execute("SELECT owner_box, epoch FROM sessions").fetchall() == [
                ("box_b", 1)
            ]
        finally:
            owners.close()
    finally:
        assert proc.stop() == 0, proc.log()
