"""OAuth signing keys and revoked access tokens in the encrypted store."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from smcp_box.errors import DecryptionFailed
from smcp_box.store import Store
from tests.store.conftest import OpenStore

Raw = Callable[[], sqlite3.Connection]


def new_jwk() -> tuple[str, dict[str, str]]:
    key = OKPKey.generate_key("Ed25519", private=True)
    return key.thumbprint(), dict(key.as_dict(private=True))


async def test_rotation_retires_the_active_key_in_one_step(store: Store) -> None:
    first_kid, first = new_jwk()
    assert await store.rotate_signing_key(first_kid, first, replaces=None, now=10.0)
    second_kid, second = new_jwk()
    assert await store.rotate_signing_key(second_kid, second, replaces=first_kid, now=20.0)
    keys = await store.signing_keys()
    assert [(k.kid, k.created_at, k.retired_at) for k in keys] == [
        (first_kid, 10.0, 20.0),
        (second_kid, 20.0, None),
    ]
    assert keys[0].private_jwk == first
    assert keys[1].private_jwk == second


async def test_a_rotation_based_on_a_stale_view_changes_nothing(store: Store) -> None:
    # Two writers saw the same active key; the second one's rotation must not make a second
    # active key (nor retire the first writer's new one).
    base_kid, base = new_jwk()
    await store.rotate_signing_key(base_kid, base, replaces=None, now=1.0)
    winner_kid, winner = new_jwk()
    loser_kid, loser = new_jwk()
    assert await store.rotate_signing_key(winner_kid, winner, replaces=base_kid, now=2.0)
    assert not await store.rotate_signing_key(loser_kid, loser, replaces=base_kid, now=2.0)
    assert not await store.rotate_signing_key(loser_kid, loser, replaces=None, now=2.0)
    active = [k.kid for k in await store.signing_keys() if k.retired_at is None]
    assert active == [winner_kid]


async def test_only_retired_keys_older_than_the_cutoff_are_deleted(store: Store) -> None:
    kids = []
    for now in (1.0, 2.0, 3.0):
        kid, jwk = new_jwk()
        await store.rotate_signing_key(kid, jwk, replaces=kids[-1] if kids else None, now=now)
        kids.append(kid)
    # kids[0] retired at 2.0, kids[1] at 3.0, kids[2] active.
    assert await store.delete_signing_keys_retired_before(2.5) == 1
    assert [k.kid for k in await store.signing_keys()] == kids[1:]
    assert await store.delete_signing_keys_retired_before(1e12) == 1
    assert [k.kid for k in await store.signing_keys()] == kids[2:]


async def test_revoked_tokens_are_listed_until_they_expire(store: Store) -> None:
    await store.revoke_token_id("jti-a", 100.0)
    await store.revoke_token_id("jti-b", 200.0)
    await store.revoke_token_id("jti-a", 50.0)  # idempotent; never shortens
    assert await store.revoked_token_ids(now=0.0) == {"jti-a": 100.0, "jti-b": 200.0}
    assert await store.revoked_token_ids(now=100.0) == {"jti-b": 200.0}
    assert await store.prune_revoked_token_ids(now=150.0) == 1
    assert await store.revoked_token_ids(now=0.0) == {"jti-b": 200.0}


def _variants(text: str) -> list[bytes]:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return [text.encode(), raw]


def _file_bytes(db_path: Path) -> bytes:
    paths = [Path(f"{db_path}{suffix}") for suffix in ("", "-wal")]
    return b"".join(path.read_bytes() for path in paths if path.exists())


@pytest.mark.parametrize("encrypt", [True, False])
async def test_the_database_file_holds_no_private_key_material(
    open_store: OpenStore, db_path: Path, raw_db: Raw, encrypt: bool
) -> None:
    store = await open_store(encrypt=encrypt)
    kid, jwk = new_jwk()
    await store.rotate_signing_key(kid, jwk, replaces=None, now=1.0)
    raw_db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = _file_bytes(db_path)
    found = [needle for needle in _variants(jwk["d"]) if needle in data]
    # encrypt=False (benchmark only) is the control: the same search does find the key there.
    assert (found == []) is encrypt
    assert kid.encode() in data  # the public kid is in clear: the search sees the rows


async def test_a_key_moved_to_another_kid_does_not_open(store: Store, raw_db: Raw) -> None:
    first_kid, first = new_jwk()
    second_kid, second = new_jwk()
    await store.rotate_signing_key(first_kid, first, replaces=None, now=1.0)
    await store.rotate_signing_key(second_kid, second, replaces=first_kid, now=2.0)
    conn = raw_db()
    (sealed,) = conn.execute(
        "SELECT jwk_enc FROM signing_keys WHERE kid = ?", (first_kid,)
    ).fetchone()
    conn.execute("UPDATE signing_keys SET jwk_enc = ? WHERE kid = ?", (sealed, second_kid))
    with pytest.raises(DecryptionFailed, match="signing_keys"):
        await store.signing_keys()
