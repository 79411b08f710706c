"""Users and grants in the encrypted store: names, sealed hashes and grants, cascades."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from smcp_box.errors import AlreadyExists, DecryptionFailed
from smcp_box.store import Store, UserRecord
from smcp_box.store.users import username_problem

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
ALL = frozenset({"mcp:tools", "mcp:resources", "mcp:prompts"})


async def test_create_get_list(store: Store, clock: Any) -> None:
    created = await store.create_user("alice", HASH)
    assert created == UserRecord("alice", HASH, clock.now, False)
    assert HASH not in repr(created)
    await store.create_user("bob@lan", HASH + "x")
    assert await store.get_user("alice") == created
    assert await store.get_user("carol") is None
    assert [u.username for u in await store.list_users()] == ["alice", "bob@lan"]


async def test_duplicate_and_invalid_names(store: Store) -> None:
    await store.create_user("alice", HASH)
    with pytest.raises(AlreadyExists, match="already exists") as info:
        await store.create_user("alice", HASH)
    assert info.value.http_status == 409
    for bad in ("", "Alice", "-x", "a b", "x" * 65, "ä"):
        with pytest.raises(ValueError, match="invalid username"):
            await store.create_user(bad, HASH)
    assert username_problem("a" * 64) is None
    assert username_problem("a.b_c-d@e") is None


async def test_password_and_disable(store: Store) -> None:
    await store.create_user("alice", HASH)
    assert await store.set_password("alice", "new-hash")
    assert (await store.get_user("alice")).password_hash == "new-hash"  # type: ignore[union-attr]
    assert not await store.set_password("nobody", "h")
    assert await store.set_user_disabled("alice", True)
    assert (await store.get_user("alice")).disabled  # type: ignore[union-attr]
    assert not await store.set_user_disabled("nobody", True)


async def test_grants(store: Store) -> None:
    await store.create_user("alice", HASH)
    assert await store.user_grants("alice") == {}
    assert await store.set_user_grant("alice", "notes", ALL)
    assert await store.set_user_grant("alice", "utils", frozenset({"mcp:prompts"}))
    assert await store.user_grants("alice") == {"notes": ALL, "utils": frozenset({"mcp:prompts"})}
    # Granting again replaces the scopes.
    assert await store.set_user_grant("alice", "notes", frozenset({"mcp:tools"}))
    assert (await store.user_grants("alice"))["notes"] == frozenset({"mcp:tools"})
    assert not await store.set_user_grant("nobody", "notes", ALL)
    assert await store.remove_user_grant("alice", "utils")
    assert not await store.remove_user_grant("alice", "utils")
    assert list(await store.user_grants("alice")) == ["notes"]


async def test_delete_user_cascades_to_grants(
    store: Store, raw_db: Callable[[], sqlite3.Connection]
) -> None:
    await store.create_user("alice", HASH)
    await store.set_user_grant("alice", "notes", ALL)
    assert await store.delete_user("alice")
    assert not await store.delete_user("alice")
    assert raw_db().execute("SELECT count(*) FROM user_grants").fetchone() == (0,)
    # A new account of the same name starts with nothing.
    await store.create_user("alice", HASH)
    assert await store.user_grants("alice") == {}


async def test_remove_tenant_grants(store: Store) -> None:
    for name in ("alice", "bob"):
        await store.create_user(name, HASH)
        await store.set_user_grant(name, "notes", ALL)
        await store.set_user_grant(name, "utils", ALL)
    assert await store.remove_tenant_grants("notes") == 2
    assert await store.user_grants("alice") == {"utils": ALL}


async def test_hashes_and_grants_sealed_and_bound_to_their_row(
    store: Store, raw_db: Callable[[], sqlite3.Connection]
) -> None:
    await store.create_user("alice", HASH)
    await store.create_user("mallory", HASH + "m")
    await store.set_user_grant("alice", "notes", ALL)
    await store.set_user_grant("mallory", "notes", frozenset({"mcp:prompts"}))
    conn = raw_db()
    raw = b"".join(bytes(row[0]) for row in conn.execute("SELECT password_enc FROM users"))
    assert b"argon2id" not in raw
    grants = b"".join(bytes(row[0]) for row in conn.execute("SELECT scopes_enc FROM user_grants"))
    assert b"mcp:" not in grants
    # Copying alice's grant onto mallory's row does not widen mallory's grant: it fails.
    conn.execute(
        "UPDATE user_grants SET scopes_enc = (SELECT scopes_enc FROM user_grants"
        " WHERE username = 'alice') WHERE username = 'mallory'"
    )
    with pytest.raises(DecryptionFailed):
        await store.user_grants("mallory")
    conn.execute(
        "UPDATE users SET password_enc = (SELECT password_enc FROM users"
        " WHERE username = 'alice') WHERE username = 'mallory'"
    )
    with pytest.raises(DecryptionFailed):
        await store.get_user("mallory")
