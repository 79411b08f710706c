"""Tenant-namespaced kv with quotas."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smcp_box.errors import KvNotAnInteger, KvQuotaExceeded
from smcp_box.store import KvQuota, Store


async def test_kv_round_trip(store: Store) -> None:
    assert await store.kv_get("acme", "greeting") is None
    await store.kv_set("acme", "greeting", "héllo wörld")
    assert await store.kv_get("acme", "greeting") == "héllo wörld"
    await store.kv_set("acme", "greeting", "bye")
    assert await store.kv_get("acme", "greeting") == "bye"
    await store.kv_set("acme", "", "empty key is a key")
    await store.kv_set("acme", "empty value", "")
    assert await store.kv_get("acme", "") == "empty key is a key"
    assert await store.kv_get("acme", "empty value") == ""
    assert await store.kv_delete("acme", "greeting") is True
    assert await store.kv_delete("acme", "greeting") is False
    assert await store.kv_get("acme", "greeting") is None


async def test_kv_list_is_sorted_and_filtered_by_prefix(store: Store) -> None:
    for key in ["user:2", "user:10", "config", "user:1", "usa"]:
        await store.kv_set("acme", key, "v")
    assert await store.kv_list("acme") == sorted(["user:2", "user:10", "config", "user:1", "usa"])
    assert await store.kv_list("acme", "user:") == ["user:1", "user:10", "user:2"]
    assert await store.kv_list("acme", "us") == ["usa", "user:1", "user:10", "user:2"]
    assert await store.kv_list("acme", "nothing") == []
    assert await store.kv_list("empty-tenant") == []


async def test_kv_usage_and_clear(store: Store) -> None:
    assert await store.kv_usage("acme") == (0, 0)
    await store.kv_set("acme", "ab", "1234")  # 2 + 4 bytes
    await store.kv_set("acme", "é", "ü")  # 2 + 2 bytes (UTF-8)
    assert await store.kv_usage("acme") == (2, 10)
    await store.kv_set("acme", "ab", "1")
    assert await store.kv_usage("acme") == (2, 7)
    await store.kv_delete("acme", "é")
    assert await store.kv_usage("acme") == (1, 3)
    await store.kv_set("globex", "k", "v")
    assert await store.kv_clear("acme") == 1
    assert await store.kv_usage("acme") == (0, 0)
    assert await store.kv_list("acme") == []
    assert await store.kv_get("globex", "k") == "v"


async def test_kv_tenant_isolation(store: Store) -> None:
    await store.kv_set("acme", "secret", "acme's")
    await store.kv_set("globex", "secret", "globex's")
    assert await store.kv_get("acme", "secret") == "acme's"
    assert await store.kv_get("globex", "secret") == "globex's"
    await store.kv_set("acme", "only-acme", "x")
    assert await store.kv_get("globex", "only-acme") is None
    assert await store.kv_list("globex") == ["secret"]
    assert await store.kv_delete("globex", "only-acme") is False
    await store.kv_clear("globex")
    assert await store.kv_list("acme") == ["only-acme", "secret"]


async def test_kv_survives_restart(open_store: Any) -> None:
    store = await open_store()
    await store.kv_set("acme", "k", "v")
    await store.close()
    reopened = await open_store()
    assert await reopened.kv_get("acme", "k") == "v"
    assert await reopened.kv_usage("acme") == (1, 2)


async def test_quota_max_keys(open_store: Any) -> None:
    store = await open_store(kv_max_keys=3)
    for i in range(3):
        await store.kv_set("acme", f"k{i}", "v")
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_keys"):
        await store.kv_set("acme", "k3", "v")
    # Overwriting an existing key is fine at the limit; other tenants have their own quota.
    await store.kv_set("acme", "k0", "new")
    await store.kv_set("globex", "k0", "v")
    assert await store.kv_usage("acme") == (3, 3 + 3 + 5)
    await store.kv_delete("acme", "k1")
    await store.kv_set("acme", "k3", "v")


async def test_quota_max_value_bytes(open_store: Any) -> None:
    store = await open_store(kv_max_value_bytes=10)
    await store.kv_set("acme", "k", "x" * 10)
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_value_bytes"):
        await store.kv_set("acme", "k", "x" * 11)
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_value_bytes"):
        await store.kv_set("acme", "k", "é" * 6)  # 12 UTF-8 bytes
    assert await store.kv_get("acme", "k") == "x" * 10


async def test_quota_max_total_bytes(open_store: Any) -> None:
    store = await open_store(kv_max_total_bytes=100)
    await store.kv_set("acme", "a", "x" * 59)  # 60 bytes
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_total_bytes"):
        await store.kv_set("acme", "b", "x" * 40)  # would be 101
    assert await store.kv_get("acme", "b") is None
    assert await store.kv_usage("acme") == (1, 60)
    await store.kv_set("acme", "b", "x" * 39)  # exactly 100
    assert await store.kv_usage("acme") == (2, 100)


async def test_quota_over_lowered_limit_still_allows_shrinking(open_store: Any) -> None:
    store = await open_store(kv_max_total_bytes=1000)
    await store.kv_set("acme", "a", "x" * 500)
    await store.close()
    store = await open_store(kv_max_total_bytes=100)
    await store.kv_set("acme", "a", "x" * 300)  # still over, but smaller
    with pytest.raises(KvQuotaExceeded):
        await store.kv_set("acme", "b", "y")
    assert await store.kv_delete("acme", "a")


async def test_quota_max_key_bytes(open_store: Any) -> None:
    store = await open_store(kv_max_key_bytes=8)
    await store.kv_set("acme", "k" * 8, "v")
    with pytest.raises(KvQuotaExceeded, match="keys may have at most"):
        await store.kv_set("acme", "k" * 9, "v")


# --- atomics: kv_cas and kv_incr ----------------------------------------------------------------


async def test_kv_cas_compares_with_the_stored_value_or_absence(store: Store) -> None:
    assert await store.kv_cas("acme", "k", None, "first") is True
    assert await store.kv_cas("acme", "k", None, "again") is False
    assert await store.kv_cas("acme", "k", "wrong", "second") is False
    assert await store.kv_get("acme", "k") == "first"
    assert await store.kv_cas("acme", "k", "first", "second") is True
    assert await store.kv_get("acme", "k") == "second"
    # The comparison is per tenant: globex has no "k".
    assert await store.kv_cas("globex", "k", "second", "stolen") is False
    assert await store.kv_get("globex", "k") is None
    assert await store.kv_usage("acme") == (1, len("k") + len("second"))


async def test_kv_cas_keeps_the_quotas(open_store: Any) -> None:
    store = await open_store(kv_max_keys=1, kv_max_value_bytes=10)
    assert await store.kv_cas("acme", "a", None, "v") is True
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_keys"):
        await store.kv_cas("acme", "b", None, "v")
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_value_bytes"):
        await store.kv_cas("acme", "a", "v", "x" * 11)
    assert await store.kv_get("acme", "a") == "v"
    assert await store.kv_usage("acme") == (1, 2)


async def test_kv_incr_counts_from_absent_and_stores_decimal_text(store: Store) -> None:
    assert await store.kv_incr("acme", "n", 1) == 1
    assert await store.kv_incr("acme", "n", 41) == 42
    assert await store.kv_incr("acme", "n", -50) == -8
    assert await store.kv_get("acme", "n") == "-8"
    await store.kv_set("acme", "m", "007")
    assert await store.kv_incr("acme", "m", 0) == 7
    assert await store.kv_get("acme", "m") == "7"


@pytest.mark.parametrize("stored", ["", "-", "1.5", " 1", "1 ", "+1", "0x10", "١٢", "1e3", "abc"])
async def test_kv_incr_refuses_a_value_that_is_not_a_decimal_integer(
    store: Store, stored: str
) -> None:
    await store.kv_set("acme", "n", stored)
    with pytest.raises(KvNotAnInteger, match="not a decimal integer; nothing was written"):
        await store.kv_incr("acme", "n", 1)
    assert await store.kv_get("acme", "n") == stored


async def test_kv_incr_refuses_to_overflow_i64(store: Store) -> None:
    top = (1 << 63) - 1
    await store.kv_set("acme", "n", str(top))
    with pytest.raises(KvNotAnInteger, match="overflows i64"):
        await store.kv_incr("acme", "n", 1)
    assert await store.kv_incr("acme", "n", -top) == 0
    assert await store.kv_incr("acme", "n", -(1 << 63)) == -(1 << 63)
    with pytest.raises(KvNotAnInteger, match="overflows i64"):
        await store.kv_incr("acme", "n", -1)
    await store.kv_set("acme", "huge", "9" * 30)
    with pytest.raises(KvNotAnInteger):
        await store.kv_incr("acme", "huge", 0)


async def test_kv_incr_keeps_the_quotas(open_store: Any) -> None:
    store = await open_store(kv_max_keys=1)
    assert await store.kv_incr("acme", "a", 1) == 1
    with pytest.raises(KvQuotaExceeded, match=r"\[store\] kv_max_keys"):
        await store.kv_incr("acme", "b", 1)
    assert await store.kv_get("acme", "b") is None


async def test_kv_incr_from_many_tasks_at_once_loses_nothing(store: Store) -> None:
    results = await asyncio.gather(*(store.kv_incr("acme", "n", 1) for _ in range(100)))
    assert sorted(results) == list(range(1, 101))
    assert await store.kv_get("acme", "n") == "100"


async def test_a_tenants_own_kv_quota_replaces_the_box_limits_at_its_boundary(
    open_store: Any,
) -> None:
    store = await open_store(kv_max_keys=100, kv_max_total_bytes=10_000)
    keys = KvQuota(max_keys=2)
    await store.kv_set("acme", "k0", "v", keys)
    await store.kv_set("acme", "k1", "v", keys)  # exactly at its quota: written
    with pytest.raises(KvQuotaExceeded, match=r"tenant.toml \[quotas\] kv_max_keys") as info:
        await store.kv_set("acme", "k2", "v", keys)  # one above: refused
    assert info.value.data == {"quota": "kv_max_keys"}
    await store.kv_set("acme", "k2", "v")  # without the tenant's quota the box's 100 applies
    with pytest.raises(KvQuotaExceeded, match="kv_max_keys"):
        await store.kv_incr("acme", "counter", 1, keys)
    with pytest.raises(KvQuotaExceeded, match="kv_max_keys"):
        await store.kv_cas("acme", "fresh", None, "v", keys)

    size = KvQuota(max_total_bytes=20)  # keys and values together
    await store.kv_set("globex", "a", "x" * 9, size)  # 10 bytes
    await store.kv_set("globex", "b", "x" * 9, size)  # 20: exactly at its quota
    with pytest.raises(KvQuotaExceeded, match=r"tenant.toml \[quotas\] kv_max_total_bytes") as info:
        await store.kv_set("globex", "c", "", size)  # 21: one above
    assert info.value.data == {"quota": "kv_max_total_bytes"}
    assert await store.kv_usage("globex") == (2, 20)
    # A tenant's quota may also be above the box's default.
    bigger = KvQuota(max_keys=200)
    for i in range(101):
        await store.kv_set("initech", f"k{i}", "v", bigger)
    assert (await store.kv_usage("initech"))[0] == 101
