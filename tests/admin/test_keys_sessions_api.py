"""Admin API: API keys and sessions."""

from __future__ import annotations

import re

import pytest

from smcp_box.errors import AdminRequestFailed, AuthError
from tests.admin.support import RunningBox


async def test_create_key_shows_the_secret_once_with_a_client_snippet(rb: RunningBox) -> None:
    created = await rb.client.create_key("notes", "laptop")
    secret = created["key"]
    assert secret.startswith("smcp_")
    assert created["url"].endswith("/t/notes/mcp")
    assert created["header"] == f"Authorization: Bearer {secret}"
    server = created["client_config"]["mcpServers"]["notes"]
    assert server == {
        "type": "http",
        "url": created["url"],
        "headers": {"Authorization": f"Bearer {secret}"},
    }
    listed = (await rb.client.keys("notes"))["keys"]
    assert [(k["key_id"], k["label"], k["revoked"]) for k in listed] == [
        (created["key_id"], "laptop", False)
    ]
    assert secret not in str(listed)
    audit = (await rb.client.audit(event="admin.key.create"))["entries"]
    assert audit[0]["detail"] == {"label": "laptop", "key_id": created["key_id"]}
    assert secret not in str(audit)


async def test_public_tenant_key_gets_a_note(rb: RunningBox) -> None:
    manifest = rb.tenants_dir / "utils" / "tenant.toml"
    manifest.write_text(re.sub(r'(?m)^auth = ".*"$', 'auth = "none"', manifest.read_text()))
    await rb.client.reload_tenant("utils")
    created = await rb.client.create_key("utils")
    assert "public" in created["note"]
    assert "note" not in await rb.client.create_key("notes")


async def test_create_key_errors(rb: RunningBox) -> None:
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.create_key("nope")
    assert caught.value.status == 404
    for body in ({}, {"tenant": 5}, {"tenant": "notes", "label": 7}):
        with pytest.raises(AdminRequestFailed) as caught:
            await rb.client.request("POST", "/keys", json=body)
        assert caught.value.status == 400
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.request("POST", "/keys", json=["not", "an", "object"])
    assert "JSON object" in caught.value.message


async def test_revoke_takes_effect_at_once_despite_the_auth_cache(rb: RunningBox) -> None:
    created = await rb.client.create_key("notes")
    notes = rb.box.tenants.require("notes")
    headers = {"authorization": f"Bearer {created['key']}"}
    principal = await rb.box.authenticator.authenticate(notes, headers, None)
    assert principal.key_id == created["key_id"]  # now cached in the authenticator
    revoked = await rb.client.revoke_key(created["key_id"])
    assert revoked == {"revoked": created["key_id"], "tenant": "notes"}
    with pytest.raises(AuthError):
        await rb.box.authenticator.authenticate(notes, headers, None)
    audit = (await rb.client.audit(event="admin.key.revoke"))["entries"]
    assert (audit[0]["tenant"], audit[0]["outcome"]) == ("notes", "ok")


async def test_revoke_unknown_and_twice(rb: RunningBox) -> None:
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.revoke_key("0000000000000000")
    assert caught.value.status == 404
    assert "no API key with id" in caught.value.message
    created = await rb.client.create_key("notes")
    await rb.client.revoke_key(created["key_id"])
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.revoke_key(created["key_id"])
    assert caught.value.status == 409


async def test_sessions_list_and_end(rb: RunningBox) -> None:
    store = rb.box.store
    await store.create_session("notes", "sid-a", "2025-11-25", {"name": "cli", "version": "1"})
    await store.create_session("utils", "sid-b", "2025-06-18", {"name": "ide"})
    everything = (await rb.client.sessions())["sessions"]
    assert sorted(s["session_id"] for s in everything) == ["sid-a", "sid-b"]
    notes = (await rb.client.sessions("notes"))["sessions"]
    assert [(s["session_id"], s["client"], s["owner_box"]) for s in notes] == [
        ("sid-a", {"name": "cli", "version": "1"}, rb.box.box_id)
    ]
    assert await rb.client.end_session("notes", "sid-a") == {"ended": "sid-a", "tenant": "notes"}
    assert (await rb.client.sessions("notes"))["sessions"] == []
    assert await store.get_session("notes", "sid-a") is not None  # ended, kept for ended=1
    ended = (await rb.client.request("GET", "/sessions", params={"ended": "1"}))["sessions"]
    assert any(s["session_id"] == "sid-a" and s["ended"] for s in ended)
    audit = (await rb.client.audit(event="admin.session.end"))["entries"]
    assert audit[0]["tenant"] == "notes"


async def test_end_unknown_session_is_404(rb: RunningBox) -> None:
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.end_session("notes", "nope")
    assert caught.value.status == 404
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.sessions("nope")
    assert caught.value.status == 404


async def test_revoke_refuses_what_is_not_a_key_id_without_echoing_it(rb: RunningBox) -> None:
    created = await rb.client.create_key("notes", "x")
    with pytest.raises(AdminRequestFailed) as refused:
        await rb.client.revoke_key(created["key"])
    assert refused.value.status == 400
    assert created["key"] not in refused.value.message
    assert not any(k.revoked for k in await rb.box.store.list_api_keys("notes"))
