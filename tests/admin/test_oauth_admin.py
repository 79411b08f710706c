"""Admin API and CLI for the authorization server: pre-registered clients and a user's refresh
tokens, against a real box (the CLI as real processes on its socket)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from smcp_box.errors import AdminRequestFailed
from smcp_box.store.oauth import RefreshRecord
from tests.admin.support import RunningBox, running_box, serving_mcp
from tests.admin.test_cli import smcp
from tests.web.oauth_box import (
    PASSWORD,
    REDIRECT,
    authorize_url,
    exchange,
    redirect_params,
    sign_in_and_consent,
)


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


async def test_listing_a_users_tokens_shows_families_never_tokens(rb: RunningBox) -> None:
    client = await rb.client.add_oauth_client("Editor", ["http://127.0.0.1/callback"])
    expires = rb.box.clock() + 3600
    for family, client_id, tenant in (("f1", client["client_id"], "notes"), ("f2", "x", "utils")):
        await rb.box.store.oauth.save_refresh(
            f"rt-secret-{family}",
            RefreshRecord(
                family, client_id, "alice", tenant, "http://box/mcp", "mcp:tools", expires
            ),
        )
    body = await rb.client.user_tokens("alice")
    assert body["username"] == "alice"
    assert [(t["client_name"], t["client_id"], t["tenant"]) for t in body["tokens"]] == [
        ("Editor", client["client_id"], "notes"),
        (None, "x", "utils"),  # not a registered client (CIMD): its id is all there is
    ]
    assert body["tokens"][0]["scopes"] == ["mcp:tools"]
    assert body["tokens"][0]["expires_at"] == expires
    assert "rt-secret" not in json.dumps(body)
    assert (await rb.client.user_tokens("bob"))["tokens"] == []

    listed = await smcp(rb, "oauth", "tokens", "alice")
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split() == ["CLIENT", "TENANT", "SCOPES", "CREATED", "EXPIRES"]
    assert lines[1].split()[:3] == ["Editor", "notes", "mcp:tools"]
    assert lines[2].split()[:2] == ["x", "utils"]
    assert "rt-secret" not in listed.out
    nobody = await smcp(rb, "oauth", "tokens", "bob")
    assert nobody.out.strip() == "no live refresh tokens for bob"


def _notes_takes_oauth(tenants: Path) -> None:
    manifest = tenants / "notes" / "tenant.toml"
    manifest.write_text(manifest.read_text().replace('auth = "api_key"', 'auth = "oauth"'))


async def test_revoking_a_grant_refuses_its_refresh_token_even_after_granting_again(
    tmp_path: Path, module_cache: Path
) -> None:
    async with (
        running_box(tmp_path, module_cache, _notes_takes_oauth) as rb,
        serving_mcp(rb) as base,
        httpx.AsyncClient() as http,
    ):
        await rb.client.add_user("alice", PASSWORD)
        await rb.client.grant_user("alice", "notes")
        client_id = (await rb.client.add_oauth_client("Editor", [REDIRECT]))["client_id"]
        resource = f"{base}/t/notes/mcp"
        box = SimpleNamespace(base_url=base, resource=resource)
        url, verifier = authorize_url(box, client_id=client_id, scope="mcp:tools")  # type: ignore[arg-type]
        answer = await sign_in_and_consent(http, url)
        assert answer.status_code == 302, answer.text
        code = redirect_params(answer)["code"]
        issued = await exchange(box, http, code, verifier, client_id=client_id)  # type: ignore[arg-type]
        assert issued.status_code == 200, issued.text
        listed = (await rb.client.user_tokens("alice"))["tokens"]
        assert [(t["client_name"], t["tenant"]) for t in listed] == [("Editor", "notes")]

        revoked = await rb.client.revoke_user_grant("alice", "notes")
        assert (revoked["refresh_families_revoked"], revoked["consents_revoked"]) == (1, 1)
        assert (await rb.client.user_tokens("alice"))["tokens"] == []
        # Granting again must not revive what was issued before the revocation.
        await rb.client.grant_user("alice", "notes")
        refused = await http.post(
            f"{base}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": issued.json()["refresh_token"],
                "client_id": client_id,
            },
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"

        await rb.box.auditor.flush()
        rows = (await rb.client.audit(event="admin.user.revoke"))["entries"]
        assert rows[0]["detail"] == {
            "username": "alice",
            "refresh_families_revoked": 1,
            "consents_revoked": 1,
        }
        removed = await rb.client.remove_user("alice")
        assert (removed["refresh_families_revoked"], removed["consents_revoked"]) == (0, 0)
