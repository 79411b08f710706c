"""Contract: users and grants, OAuth signing keys and revoked token ids."""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.errors import AlreadyExists
from smcp_box.store import Store

from .conftest import Backend

JWK = {"kty": "OKP", "crv": "Ed25519", "x": "pub", "d": "private-part"}


async def test_users_and_grants(store: Store) -> None:
    await store.create_user("alice", "$argon2id$hash")
    with pytest.raises(AlreadyExists):
        await store.create_user("alice", "$argon2id$other")
    user = await store.get_user("alice")
    assert user is not None
    assert (user.password_hash, user.disabled) == ("$argon2id$hash", False)
    assert await store.set_user_disabled("alice", True) is True
    assert await store.set_password("alice", "$argon2id$new") is True
    assert await store.set_user_grant("alice", "t", frozenset({"tools"})) is True
    assert await store.set_user_grant("nobody", "t", frozenset()) is False
    assert await store.user_grants("alice") == {"t": frozenset({"tools"})}
    assert await store.remove_tenant_grants("t") == 1
    assert await store.delete_user("alice") is True
    assert await store.list_users() == []


async def test_one_active_signing_key_even_when_two_boxes_rotate_at_once(
    backend: Backend,
) -> None:
    boxes = [await backend.open(), await backend.open()]
    assert await boxes[0].rotate_signing_key("k1", JWK, replaces=None, now=1.0) is True
    results = await asyncio.gather(
        boxes[0].rotate_signing_key("k2", JWK, replaces="k1", now=2.0),
        boxes[1].rotate_signing_key("k3", JWK, replaces="k1", now=2.0),
    )
    assert sorted(results) == [False, True]
    keys = await boxes[1].signing_keys()
    assert [k.retired_at is None for k in keys].count(True) == 1
    assert keys[0].private_jwk == JWK
    for row in await backend.raw("SELECT jwk_enc FROM signing_keys"):
        assert b"private-part" not in bytes(row[0])
    assert await boxes[0].delete_signing_keys_retired_before(3.0) == 1


async def test_revoked_token_ids_keep_the_latest_expiry(store: Store) -> None:
    await store.revoke_token_id("jti-1", 100.0)
    await store.revoke_token_id("jti-1", 50.0)
    await store.revoke_token_id("jti-2", 10.0)
    assert await store.revoked_token_ids(20.0) == {"jti-1": 100.0}
    assert await store.prune_revoked_token_ids(20.0) == 1
