"""API keys: hashed at rest, shown once, verified by one lookup."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from smcp_box.store import ApiKeyRecord, Store

KEY_RE = re.compile(r"smcp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


async def test_create_and_verify(store: Store, clock: Any) -> None:
    key_id, secret = await store.create_api_key("acme", "alice laptop")
    assert KEY_RE.fullmatch(secret)
    assert key_id in secret
    clock.advance(10)
    record = await store.verify_api_key(secret)
    assert record == ApiKeyRecord(
        key_id=key_id,
        tenant="acme",
        label="alice laptop",
        created_at=clock.now - 10,
        last_used=clock.now,
        revoked=False,
    )
    [listed] = await store.list_api_keys("acme")
    assert listed.last_used == clock.now
    assert secret not in repr(listed)


async def test_secret_uses_token_source(open_store: Any) -> None:
    calls: list[int] = []

    def tokens(n: int) -> bytes:
        calls.append(n)
        return bytes([len(calls)]) * n

    store = await open_store(token_source=tokens)
    key_id, secret = await store.create_api_key("acme", "k")
    assert key_id == "01" * 8
    assert secret == "smcp_" + "01" * 8 + "_" + "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"
    assert calls == [8, 32]


async def test_key_id_collision_is_retried(open_store: Any) -> None:
    store = await open_store(token_source=lambda n: b"\x07" * n)
    first, _ = await store.create_api_key("acme", "a")
    # The next source repeats the first key id once, then moves on.
    queue = [b"\x07" * 8, b"\x01" * 32, b"\x08" * 8, b"\x02" * 32]
    store2 = await open_store(token_source=lambda n: queue.pop(0))
    second, secret = await store2.create_api_key("acme", "b")
    assert (first, second) == ("07" * 8, "08" * 8)
    assert await store2.verify_api_key(secret) is not None


async def test_wrong_unknown_malformed_keys(store: Store) -> None:
    _, secret = await store.create_api_key("acme", "k")
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    unknown_id = "smcp_" + "f" * 16 + secret[len("smcp_") + 16 :]
    for candidate in [
        wrong_secret,
        unknown_id,
        "",
        "smcp_",
        secret + "x",
        secret[:-1],
        " " + secret,
        secret.upper(),
        "Bearer " + secret,
    ]:
        assert await store.verify_api_key(candidate) is None, candidate
    assert await store.verify_api_key(secret) is not None


async def test_revoke(store: Store) -> None:
    key_id, secret = await store.create_api_key("acme", "k")
    assert await store.revoke_api_key(key_id) is True
    assert await store.revoke_api_key(key_id) is False
    assert await store.revoke_api_key("0" * 16) is False
    assert await store.verify_api_key(secret) is None
    [record] = await store.list_api_keys(None)
    assert record.revoked


async def test_list_is_per_tenant(store: Store, clock: Any) -> None:
    a1, _ = await store.create_api_key("acme", "one")
    clock.advance(1)
    g1, _ = await store.create_api_key("globex", "two")
    clock.advance(1)
    a2, _ = await store.create_api_key("acme", "three")
    assert [k.key_id for k in await store.list_api_keys("acme")] == [a1, a2]
    assert [k.key_id for k in await store.list_api_keys("globex")] == [g1]
    assert [k.key_id for k in await store.list_api_keys(None)] == [a1, g1, a2]
    assert await store.list_api_keys("initech") == []


async def test_last_used_is_written_at_most_once_per_resolution(
    open_store: Any, clock: Any
) -> None:
    store = await open_store(api_key_last_used_resolution=60.0)
    _, secret = await store.create_api_key("acme", "k")
    first = await store.verify_api_key(secret)
    assert first is not None
    assert first.last_used == clock.now
    clock.advance(30)
    second = await store.verify_api_key(secret)
    assert second is not None
    assert second.last_used == first.last_used
    clock.advance(31)
    third = await store.verify_api_key(secret)
    assert third is not None
    assert third.last_used == clock.now


async def test_moving_a_key_to_another_tenant_disables_it(
    store: Store, raw_db: Callable[[], sqlite3.Connection]
) -> None:
    key_id, secret = await store.create_api_key("acme", "k")
    raw_db().execute("UPDATE api_keys SET tenant = 'globex' WHERE key_id = ?", (key_id,))
    assert await store.verify_api_key(secret) is None


async def test_keys_survive_restart(open_store: Any) -> None:
    store = await open_store()
    key_id, secret = await store.create_api_key("acme", "k")
    await store.close()
    reopened = await open_store()
    record = await reopened.verify_api_key(secret)
    assert record is not None
    assert record.key_id == key_id
