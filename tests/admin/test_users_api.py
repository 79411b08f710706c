"""Admin API: local users and their per-tenant grants, against a real box."""

from __future__ import annotations

import json

import pytest

from smcp_box.auth.passwords import verify_password
from smcp_box.errors import AdminRequestFailed
from tests.admin.support import RunningBox

PASSWORD = "correct horse battery"


async def refused(awaitable: object, status: int) -> str:
    with pytest.raises(AdminRequestFailed) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.status == status, caught.value.message
    return caught.value.message


async def test_user_lifecycle_with_grants_and_audit(rb: RunningBox) -> None:
    added = await rb.client.add_user("alice", PASSWORD)
    assert added["username"] == "alice"
    assert added["grants"] == {}
    stored = await rb.box.store.get_user("alice")
    assert stored is not None
    assert verify_password(stored.password_hash, PASSWORD)

    granted = await rb.client.grant_user("alice", "notes")
    assert granted["scopes"] == ["mcp:tools", "mcp:resources", "mcp:prompts"]
    assert "auth 'api_key'" in granted["note"]  # the example tenants use API keys
    await rb.client.grant_user("alice", "utils", ["mcp:prompts"])
    [listed] = (await rb.client.users())["users"]
    assert listed["grants"] == {
        "notes": ["mcp:tools", "mcp:resources", "mcp:prompts"],
        "utils": ["mcp:prompts"],
    }
    assert "password" not in json.dumps(listed)

    await rb.client.set_user_password("alice", "another password")
    stored = await rb.box.store.get_user("alice")
    assert stored is not None
    assert verify_password(stored.password_hash, "another password")

    assert await rb.client.revoke_user_grant("alice", "utils") == {
        "username": "alice",
        "revoked": "utils",
        "refresh_families_revoked": 0,
        "consents_revoked": 0,
    }
    assert await rb.client.remove_user("alice") == {
        "removed": "alice",
        "grants_removed": ["notes"],
        "refresh_families_revoked": 0,
        "consents_revoked": 0,
    }
    assert (await rb.client.users())["users"] == []

    await rb.box.auditor.flush()
    rows = (await rb.client.audit(limit=20))["entries"]
    events = [
        (r["event"], r["tenant"], r["outcome"])
        for r in reversed(rows)
        if r["event"].startswith("admin.user.")
    ]
    assert events == [
        ("admin.user.add", None, "ok"),
        ("admin.user.grant", "notes", "ok"),
        ("admin.user.grant", "utils", "ok"),
        ("admin.user.passwd", None, "ok"),
        ("admin.user.revoke", "utils", "ok"),
        ("admin.user.remove", None, "ok"),
    ]
    grant_rows = (await rb.client.audit(event="admin.user.grant"))["entries"]
    assert grant_rows[0]["detail"] == {"username": "alice", "scopes": ["mcp:prompts"]}
    everything = json.dumps(rows)
    assert PASSWORD not in everything
    assert "another password" not in everything
    assert "argon2" not in everything


async def test_bad_input(rb: RunningBox) -> None:
    await rb.client.add_user("alice", PASSWORD)
    assert "already exists" in await refused(rb.client.add_user("alice", PASSWORD), 409)
    assert "invalid username" in await refused(rb.client.add_user("Alice", PASSWORD), 400)
    assert "8 to 1024" in await refused(rb.client.add_user("bob", "short"), 400)
    assert "8 to 1024" in await refused(rb.client.set_user_password("alice", ""), 400)
    assert "no user named 'bob'" in await refused(rb.client.set_user_password("bob", PASSWORD), 404)
    assert "no tenant named 'nope'" in await refused(rb.client.grant_user("alice", "nope"), 404)
    assert "no user named" in await refused(rb.client.grant_user("bob", "notes"), 404)
    message = await refused(rb.client.grant_user("alice", "notes", ["mcp:everything"]), 400)
    assert "unknown scope mcp:everything" in message
    assert "at least one scope" in await refused(rb.client.grant_user("alice", "notes", []), 400)
    assert "no grant" in await refused(rb.client.revoke_user_grant("alice", "notes"), 404)
    assert "no user named" in await refused(rb.client.remove_user("bob"), 404)
    assert await rb.box.store.user_grants("alice") == {}
    # Failures are audited too, without the password.
    await rb.box.auditor.flush()
    failed = (await rb.client.audit(event="admin.user.add", outcome="error"))["entries"]
    assert len(failed) == 3
    assert PASSWORD not in json.dumps(failed)
