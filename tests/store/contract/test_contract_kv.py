"""Contract: kv with its atomics and quotas, on both backends, from one box and from two."""

from __future__ import annotations

import asyncio

import pytest

from smcp_box.errors import KvNotAnInteger, KvQuotaExceeded
from smcp_box.store import Store

from .conftest import Backend


async def test_set_get_list_delete(store: Store) -> None:
    assert await store.kv_get("t", "a") is None
    await store.kv_set("t", "a/1", "one")
    await store.kv_set("t", "a/2", "two")
    await store.kv_set("t", "b", "bee")
    await store.kv_set("t", "a/1", "uno")
    assert await store.kv_get("t", "a/1") == "uno"
    assert await store.kv_list("t", "a/") == ["a/1", "a/2"]
    assert await store.kv_list("other") == []
    assert await store.kv_get("other", "a/1") is None
    assert await store.kv_delete("t", "a/2") is True
    assert await store.kv_delete("t", "a/2") is False
    assert await store.kv_list("t") == ["a/1", "b"]


async def test_usage_is_exact_through_every_change(store: Store) -> None:
    await store.kv_set("t", "ab", "cde")
    assert await store.kv_usage("t") == (1, 5)
    await store.kv_set("t", "ab", "c")
    assert await store.kv_usage("t") == (1, 3)
    await store.kv_set("t", "x", "yz")
    assert await store.kv_usage("t") == (2, 6)
    await store.kv_delete("t", "ab")
    assert await store.kv_usage("t") == (1, 3)
    assert await store.kv_clear("t") == 1
    assert await store.kv_usage("t") == (0, 0)


async def test_cas(store: Store) -> None:
    assert await store.kv_cas("t", "k", None, "1") is True
    assert await store.kv_cas("t", "k", None, "2") is False
    assert await store.kv_cas("t", "k", "0", "2") is False
    assert await store.kv_cas("t", "k", "1", "2") is True
    assert await store.kv_get("t", "k") == "2"


async def test_incr(store: Store) -> None:
    assert await store.kv_incr("t", "n", 5) == 5
    assert await store.kv_incr("t", "n", -7) == -2
    await store.kv_set("t", "s", "x1")
    with pytest.raises(KvNotAnInteger):
        await store.kv_incr("t", "s", 1)
    assert await store.kv_get("t", "s") == "x1"
    await store.kv_set("t", "big", str((1 << 63) - 1))
    with pytest.raises(KvNotAnInteger, match="overflows"):
        await store.kv_incr("t", "big", 1)


async def test_quota_refuses_growth_and_writes_nothing(backend: Backend) -> None:
    store = await backend.open(kv_max_keys=2)
    await store.kv_set("t", "a", "1")
    await store.kv_set("t", "b", "2")
    with pytest.raises(KvQuotaExceeded, match="kv_max_keys"):
        await store.kv_set("t", "c", "3")
    assert await store.kv_list("t") == ["a", "b"]
    await store.kv_set("t", "a", "changed")  # an existing key may still change


async def test_concurrent_incr_from_two_boxes_loses_nothing(backend: Backend) -> None:
    boxes = [await backend.open(), await backend.open()]
    await asyncio.gather(*(boxes[i % 2].kv_incr("t", "n", 1) for i in range(60)))
    assert await boxes[0].kv_get("t", "n") == "60"
    assert await boxes[1].kv_get("t", "n") == "60"


async def test_concurrent_cas_has_exactly_one_winner(backend: Backend) -> None:
    boxes = [await backend.open(), await backend.open()]
    won = await asyncio.gather(
        *(boxes[i % 2].kv_cas("t", "lock", None, f"owner-{i}") for i in range(20))
    )
    assert sum(won) == 1
    winner = won.index(True)
    assert await boxes[1].kv_get("t", "lock") == f"owner-{winner}"


async def test_quota_holds_across_two_boxes(backend: Backend) -> None:
    boxes = [await backend.open(kv_max_keys=5) for _ in range(2)]
    results = await asyncio.gather(
        # Names of one length: whichever five win, they hold 5 x (3 + 1) bytes.
        *(boxes[i % 2].kv_set("t", f"k{i:02d}", "v") for i in range(12)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, KvQuotaExceeded)]
    assert len(refused) == 7
    assert await boxes[0].kv_usage("t") == (5, 5 * 4)


async def test_values_and_names_are_stored_encrypted(backend: Backend) -> None:
    store = await backend.open()
    await store.kv_set("t", "plain-key-name", "plain-secret-value")
    rows = await backend.raw("SELECT key_hash, key_enc, value_enc FROM kv")
    assert len(rows) == 1
    for column in rows[0]:
        assert b"plain-" not in bytes(column)
