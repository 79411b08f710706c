"""Contract: API keys, on both backends and across boxes."""

from __future__ import annotations

from smcp_box.store import Store

from .conftest import Backend


async def test_create_verify_list_revoke(store: Store) -> None:
    key_id, secret = await store.create_api_key("t", "ci")
    record = await store.verify_api_key(secret)
    assert record is not None
    assert (record.key_id, record.tenant, record.label) == (
        key_id,
        "t",
        "ci",
    )
    assert await store.verify_api_key(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert [k.key_id for k in await store.list_api_keys("t")] == [key_id]
    assert await store.list_api_keys("other") == []
    assert await store.revoke_api_key(key_id) is True
    assert await store.revoke_api_key(key_id) is False
    assert await store.verify_api_key(secret) is None
    listed = await store.list_api_keys()
    assert [k.revoked for k in listed] == [True]


async def test_a_key_made_on_one_box_works_on_another_until_revoked(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    key_id, secret = await first.create_api_key("t", "shared")
    assert await second.verify_api_key(secret) is not None
    assert await second.revoke_api_key(key_id) is True
    assert await first.verify_api_key(secret) is None


async def test_only_a_keyed_hash_of_the_secret_is_stored(backend: Backend) -> None:
    store = await backend.open()
    _, secret = await store.create_api_key("t", "label")
    raw_secret = secret.rsplit("_", 1)[1].encode()
    for row in await backend.raw("SELECT * FROM api_keys"):
        for value in row:
            shown = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
            assert raw_secret not in shown
