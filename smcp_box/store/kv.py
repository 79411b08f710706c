"""Tenant-namespaced key-value data, with per-tenant quotas.

Both key names and values are sealed. A key is found by ``lookup("kv", tenant, key)``, so the
tenant is part of every lookup and of every AAD: one tenant can never read, list or overwrite
another's keys, even by guessing names. Listing decrypts the tenant's key names and filters them
here, since sealed names cannot be range-scanned by prefix.

Usage is counted in UTF-8 bytes of key plus value, per tenant, in ``kv_usage`` (kept exact by
triggers). A write is refused only when it would *grow* usage past a limit, so a tenant that is
over a lowered limit can still shrink or delete its data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smcp_box.config import StoreSettings
from smcp_box.errors import KvQuotaExceeded

from .crypto import Crypto
from .db import Database

#: The box's defaults, from the one settings tree (``[store] kv_*``).
_SETTINGS = StoreSettings()


@dataclass(frozen=True)
class KvLimits:
    max_keys: int = _SETTINGS.kv_max_keys
    max_value_bytes: int = _SETTINGS.kv_max_value_bytes
    max_total_bytes: int = _SETTINGS.kv_max_total_bytes
    #: Not a setting: a key is a name, and names this long are already a mistake.
    max_key_bytes: int = 1024


class Kv:
    def __init__(
        self, db: Database, crypto: Crypto, clock: Callable[[], float], limits: KvLimits
    ) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock
        self.limits = limits

    def _key_hash(self, tenant: str, key: str) -> bytes:
        return self._crypto.lookup("kv", tenant, key)

    async def kv_get(self, tenant: str, key: str) -> str | None:
        key_hash = self._key_hash(tenant, key)
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT value_enc FROM kv WHERE tenant = ? AND key_hash = ?", (tenant, key_hash)
            )
        if row is None:
            return None
        return self._crypto.open_text(row[0], "kv", tenant, key_hash, "value")

    async def kv_set(self, tenant: str, key: str, value: str) -> None:
        key_bytes, value_bytes = key.encode(), value.encode()
        limits = self.limits
        if len(key_bytes) > limits.max_key_bytes:
            raise KvQuotaExceeded(
                f"The kv key is {len(key_bytes)} bytes; keys may have at most "
                f"{limits.max_key_bytes}. Use a shorter key."
            )
        if len(value_bytes) > limits.max_value_bytes:
            raise KvQuotaExceeded(
                f"The kv value is {len(value_bytes)} bytes; the limit ([store] kv_max_value_bytes) "
                f"is {limits.max_value_bytes}. Split the value or store less."
            )
        key_hash = self._key_hash(tenant, key)
        size = len(key_bytes) + len(value_bytes)
        key_enc = self._crypto.seal(key_bytes, "kv", tenant, key_hash, "key")
        value_enc = self._crypto.seal(value_bytes, "kv", tenant, key_hash, "value")
        async with self._db.write() as tx:
            row = await tx.one(
                "SELECT (SELECT size FROM kv WHERE tenant = ?1 AND key_hash = ?2),"
                " (SELECT keys FROM kv_usage WHERE tenant = ?1),"
                " (SELECT bytes FROM kv_usage WHERE tenant = ?1)",
                (tenant, key_hash),
            )
            assert row is not None
            old_size, keys, total = row[0], row[1] or 0, row[2] or 0
            if old_size is None and keys + 1 > limits.max_keys:
                raise KvQuotaExceeded(
                    f"Tenant {tenant!r} already has {keys} kv keys; the limit "
                    f"([store] kv_max_keys) is {limits.max_keys}. Delete keys first."
                )
            new_total = total - (old_size or 0) + size
            if new_total > limits.max_total_bytes and size > (old_size or 0):
                raise KvQuotaExceeded(
                    f"Tenant {tenant!r} would use {new_total} kv bytes; the limit ([store] "
                    f"kv_max_total_bytes) is {limits.max_total_bytes}. Delete data first."
                )
            await tx.run(
                "INSERT INTO kv (tenant, key_hash, key_enc, value_enc, size, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, key_hash) DO UPDATE SET"
                " key_enc = excluded.key_enc, value_enc = excluded.value_enc,"
                " size = excluded.size, updated_at = excluded.updated_at",
                (tenant, key_hash, key_enc, value_enc, size, self._clock()),
            )

    async def kv_delete(self, tenant: str, key: str) -> bool:
        rows = await self._db.write_one(
            "DELETE FROM kv WHERE tenant = ? AND key_hash = ? RETURNING 1",
            (tenant, self._key_hash(tenant, key)),
        )
        return bool(rows)

    async def kv_list(self, tenant: str, prefix: str = "") -> list[str]:
        async with self._db.read() as tx:
            rows = await tx.all("SELECT key_hash, key_enc FROM kv WHERE tenant = ?", (tenant,))
        keys = (
            self._crypto.open_text(enc, "kv", tenant, key_hash, "key") for key_hash, enc in rows
        )
        return sorted(key for key in keys if key.startswith(prefix))

    async def kv_usage(self, tenant: str) -> tuple[int, int]:
        """(number of keys, bytes of keys plus values) used by the tenant."""
        async with self._db.read() as tx:
            row = await tx.one("SELECT keys, bytes FROM kv_usage WHERE tenant = ?", (tenant,))
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def kv_clear(self, tenant: str) -> int:
        """Delete all of the tenant's keys; returns how many there were."""
        async with self._db.write() as tx:
            rows = await tx.all("DELETE FROM kv WHERE tenant = ? RETURNING 1", (tenant,))
            await tx.run("DELETE FROM kv_usage WHERE tenant = ?", (tenant,))
        return len(rows)
