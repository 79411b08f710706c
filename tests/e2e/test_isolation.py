"""Tenants never reach each other: keys, sessions and kv; and nothing sensitive is readable in
the database file."""

from __future__ import annotations

import httpx

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import (
    legacy_headers,
    legacy_session,
    modern_call_tool,
    modern_headers,
    modern_request,
)


async def test_a_key_works_only_for_its_own_tenant(box: BoxProcess, keys: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        body = modern_request(1, "tools/list", {})
        own = await http.post(
            box.url("utils"), json=body, headers=modern_headers(keys["utils"], "tools/list")
        )
        assert own.status_code == 200
        foreign = await http.post(
            box.url("utils"), json=body, headers=modern_headers(keys["notes"], "tools/list")
        )
        assert foreign.status_code == 401
        assert foreign.headers["www-authenticate"].lower().startswith("bearer")
        assert keys["notes"] not in foreign.text
        bogus = await http.post(
            box.url("utils"),
            json=body,
            headers=modern_headers(keys["utils"][:-4] + "AAAA", "tools/list"),
        )
        assert bogus.status_code == 401
        anonymous = dict(modern_headers(keys["utils"], "tools/list"))
        del anonymous["Authorization"]
        missing = await http.post(box.url("utils"), json=body, headers=anonymous)
        assert missing.status_code == 401


async def test_a_session_belongs_to_its_tenant(box: BoxProcess, keys: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        session = await legacy_session(http, box.url("notes"), keys["notes"])
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        elsewhere = await http.post(
            box.url("notes2"), json=ping, headers=legacy_headers(keys["notes2"], session)
        )
        assert elsewhere.status_code == 404
        home = await http.post(
            box.url("notes"), json=ping, headers=legacy_headers(keys["notes"], session)
        )
        assert home.status_code == 200


async def test_kv_is_namespaced_per_tenant(box: BoxProcess, keys: dict[str, str]) -> None:
    marker = "isolation-marker-7f3a"
    async with httpx.AsyncClient(timeout=30) as http:
        made = await modern_call_tool(
            http, box.url("notes"), keys["notes"], "note_create", {"title": marker, "body": "x"}
        )
        assert "error" not in made
        assert not made["result"].get("isError")
        mine = await modern_call_tool(
            http, box.url("notes"), keys["notes"], "note_search", {"query": marker}
        )
        assert mine["result"]["structuredContent"]["count"] == 1
        theirs = await modern_call_tool(
            http, box.url("notes2"), keys["notes2"], "note_search", {"query": marker}
        )
        assert theirs["result"]["structuredContent"]["count"] == 0


async def test_database_holds_no_plaintext(box: BoxProcess, keys: dict[str, str]) -> None:
    title, body = "plaintext-title-c0ffee", "plaintext-body-5ecret"
    async with httpx.AsyncClient(timeout=30) as http:
        made = await modern_call_tool(
            http, box.url("notes"), keys["notes"], "note_create", {"title": title, "body": body}
        )
        assert "error" not in made
        session = await legacy_session(http, box.url("utils"), keys["utils"])
        call = {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {
                "name": "echo",
                "arguments": {"text": "payload-marker-beef"},
                "_meta": {"progressToken": "p"},
            },
        }
        await http.post(box.url("utils"), json=call, headers=legacy_headers(keys["utils"], session))
    state = box.workdir / "state"
    raw = b"".join(p.read_bytes() for p in state.iterdir() if p.name.startswith("smcp-box.db"))
    assert raw, "no database files found"
    for secret in [title, body, session, keys["notes"], keys["utils"], "payload-marker-beef"]:
        assert secret.encode() not in raw, f"{secret!r} is readable in the database"
