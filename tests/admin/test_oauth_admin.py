"""Admin API and CLI for the authorization server: pre-registered clients and a user's refresh
tokens, against a real box (the CLI as real processes on its socket)."""

from __future__ import annotations

import json

import pytest

from smcp_box.admin.errors import AdminRequestFailed
from smcp_box.store.oauth import RefreshRecord
from tests.admin.support import RunningBox
from tests.admin.test_cli import smcp


async def test_client_lifecycle_through_the_api(rb: RunningBox) -> None:
    added = await rb.client.add_oauth_client("Editor", ["http://127.0.0.1/callback"])
    assert added["kind"] == "preregistered"
    assert added["client_id"].startswith("pre_")
    stored = await rb.box.store.oauth.get_client(added["client_id"])
    assert stored is not None
    assert stored.redirect_uris == ("http://127.0.0.1/callback",)
    listed = (await rb.client.oauth_clients())["clients"]
    assert [c["client_name"] for c in listed] == ["Editor"]

    for name, uris, why in (
        ("", ["http://127.0.0.1/cb"], "client_name"),
        ("X", [], "redirect_uris"),
        ("X", ["http://evil.example/cb"], "loopback"),
    ):
        with pytest.raises(AdminRequestFailed) as caught:
            await rb.client.add_oauth_client(name, uris)
        assert caught.value.status == 400
        assert why in caught.value.message

    assert await rb.client.remove_oauth_client(added["client_id"]) == {
        "removed": added["client_id"]
    }
    with pytest.raises(AdminRequestFailed) as caught:
        await rb.client.remove_oauth_client(added["client_id"])
    assert caught.value.status == 404
    await rb.box.auditor.flush()
    events = [row.event for row in await rb.box.store.audit_page(limit=100)]
    assert "admin.oauth.client.add" in events
    assert "admin.oauth.client.remove" in events


async def test_revoking_a_users_refresh_tokens(rb: RunningBox) -> None:
    record = RefreshRecord(
        family="f1",
        client_id="c",
        username="alice",
        tenant="notes",
        resource="http://box/t/notes/mcp",
        scope="mcp:tools",
        expires_at=rb.box.clock() + 3600,
    )
    await rb.box.store.oauth.save_refresh("rt-secret", record)
    answer = await rb.client.revoke_user_tokens("alice", "utils")
    assert answer["revoked"] == 0
    assert (await rb.client.revoke_user_tokens("alice"))["revoked"] == 1
    assert await rb.box.store.oauth.find_refresh("rt-secret") is None


async def test_oauth_client_commands(rb: RunningBox) -> None:
    added = await smcp(
        rb,
        "oauth",
        "client",
        "add",
        "My Editor",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--json",
    )
    assert added.code == 0, added.err
    client_id = json.loads(added.out)["client_id"]
    listed = await smcp(rb, "oauth", "client", "list")
    assert listed.out.splitlines()[0].split()[:4] == ["CLIENT", "ID", "KIND", "CREATED"]
    assert client_id in listed.out
    assert "My Editor" in listed.out
    removed = await smcp(rb, "oauth", "client", "remove", client_id)
    assert removed.code == 0, removed.err
    assert (await smcp(rb, "oauth", "client", "list")).out.strip().startswith("no OAuth clients")
    revoked = await smcp(rb, "oauth", "revoke-tokens", "alice")
    assert revoked.out.strip() == "revoked 0 refresh token(s) of alice"
