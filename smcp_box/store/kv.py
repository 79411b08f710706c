"""Tenant-namespaced key-value data, with per-tenant quotas.

Both key names and values are sealed. A key is found by ``lookup("kv", tenant, key)``, so the
tenant is part of every lookup and of every AAD: one tenant can never read, list or overwrite
another's keys, even by guessing names. Listing decrypts the tenant's key names and filters them
here, since sealed names cannot be range-scanned by prefix.

Usage is counted in UTF-8 bytes of key plus value, per tenant, in ``kv_usage`` (kept exact by
triggers). A write is refused only when it would *grow* usage past a limit, so a tenant that is
over a lowered limit can still shrink or delete its data.

Each operation is one transaction, atomic on its own. ``kv_cas`` and ``kv_incr`` read and write
in the same transaction: they are how a tenant whose calls run in parallel does read-modify-write.
Every write that reads first (the quota check included) takes the tenant's kv lock
(``Tx.lock``), so writes of one tenant run one at a time even when several boxes share a
PostgreSQL database; on SQLite the one connection already does that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smcp_box.config import StoreSettings
from smcp_box.errors import KvNotAnInteger, KvQuotaExceeded

from .crypto import Crypto
from .db import Database, Tx

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

#: The box's defaults, from the one settings tree (``[store] kv_*``).
_SETTINGS = StoreSettings()


@dataclass(frozen=True)
class KvLimits:
    max_keys: int = _SETTINGS.kv_max_keys
    max_value_bytes: int = _SETTINGS.kv_max_value_bytes
    max_total_bytes: int = _SETTINGS.kv_max_total_bytes
    #: Not a setting: a key is a name, and names this long are already a mistake.
    max_key_bytes: int = 1024


@dataclass(frozen=True)
class KvQuota:
    """One tenant's own kv quota (tenant.toml ``[quotas]``) over the box's ``[store]`` limits;
    0 keeps the box's limit."""

    max_keys: int = 0
    max_total_bytes: int = 0


@dataclass(frozen=True)
class _SealedRow:
    key_hash: bytes
    key_enc: bytes
    value_enc: bytes
    size: int


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

    async def kv_set(self, tenant: str, key: str, value: str, quota: KvQuota | None = None) -> None:
        row = self._sealed(tenant, key, value)
        async with self._db.write() as tx:
            await tx.lock("kv", tenant)
            await self._put(tx, tenant, row, quota)

    async def kv_cas(
        self,
        tenant: str,
        key: str,
        expected: str | None,
        value: str,
        quota: KvQuota | None = None,
    ) -> bool:
        """Set key to value only if its current value equals ``expected`` (None: only if the
        key is absent), in one transaction; True if it wrote. Quotas apply as for kv_set, and
        only when the comparison succeeds (a refused compare writes nothing)."""
        row = self._sealed(tenant, key, value)
        async with self._db.write() as tx:
            await tx.lock("kv", tenant)
            if await self._current(tx, tenant, row.key_hash) != expected:
                return False
            await self._put(tx, tenant, row, quota)
        return True

    async def kv_incr(self, tenant: str, key: str, delta: int, quota: KvQuota | None = None) -> int:
        """Add ``delta`` to the decimal integer under key (absent counts as 0) and store the
        sum as decimal text, in one transaction; returns the sum.

        Raises KvNotAnInteger, writing nothing, when the current value is not a decimal i64
        (an optional ``-`` and ASCII digits, nothing else) or the sum leaves the i64 range.
        """
        if not I64_MIN <= delta <= I64_MAX:
            raise KvNotAnInteger(f"kv_incr: the delta {delta} is outside the i64 range")
        self._check_key(key.encode())
        key_hash = self._key_hash(tenant, key)
        async with self._db.write() as tx:
            await tx.lock("kv", tenant)
            current = await self._current(tx, tenant, key_hash)
            total = (0 if current is None else _parse_i64(key, current)) + delta
            if not I64_MIN <= total <= I64_MAX:
                raise KvNotAnInteger(
                    f"kv_incr: {current} + {delta} overflows i64 under key {key!r}; nothing "
                    "was written"
                )
            await self._put(tx, tenant, self._sealed(tenant, key, str(total)), quota)
        return total

    def _check_key(self, key_bytes: bytes) -> None:
        if len(key_bytes) > self.limits.max_key_bytes:
            raise KvQuotaExceeded(
                f"The kv key is {len(key_bytes)} bytes; keys may have at most "
                f"{self.limits.max_key_bytes}. Use a shorter key.",
                data={"quota": "kv_max_key_bytes"},
            )

    def _check_value(self, value_bytes: bytes) -> None:
        if len(value_bytes) > self.limits.max_value_bytes:
            raise KvQuotaExceeded(
                f"The kv value is {len(value_bytes)} bytes; the limit ([store] "
                f"kv_max_value_bytes) is {self.limits.max_value_bytes}. Split the value or "
                "store less.",
                data={"quota": "kv_max_value_bytes"},
            )

    def _sealed(self, tenant: str, key: str, value: str) -> _SealedRow:
        """The row to write, after the size checks that need no database. Sealing happens
        here, before the caller takes the database, to keep transactions short."""
        key_bytes, value_bytes = key.encode(), value.encode()
        self._check_key(key_bytes)
        self._check_value(value_bytes)
        key_hash = self._key_hash(tenant, key)
        return _SealedRow(
            key_hash=key_hash,
            key_enc=self._crypto.seal(key_bytes, "kv", tenant, key_hash, "key"),
            value_enc=self._crypto.seal(value_bytes, "kv", tenant, key_hash, "value"),
            size=len(key_bytes) + len(value_bytes),
        )

    async def _current(self, tx: Tx, tenant: str, key_hash: bytes) -> str | None:
        """The value under key_hash, read inside the caller's write transaction."""
        row = await tx.one(
            "SELECT value_enc FROM kv WHERE tenant = ? AND key_hash = ?", (tenant, key_hash)
        )
        return (
            None if row is None else self._crypto.open_text(row[0], "kv", tenant, key_hash, "value")
        )

    async def _put(
        self, tx: Tx, tenant: str, put: _SealedRow, quota: KvQuota | None = None
    ) -> None:
        """Upsert inside the caller's write transaction, refusing growth past the quotas: the
        tenant's own (``quota``) where it sets one, else the box's."""
        limits = self.limits
        max_keys, keys_setting = limits.max_keys, "[store] kv_max_keys"
        max_bytes, bytes_setting = limits.max_total_bytes, "[store] kv_max_total_bytes"
        if quota is not None and quota.max_keys:
            max_keys, keys_setting = quota.max_keys, "tenant.toml [quotas] kv_max_keys"
        if quota is not None and quota.max_total_bytes:
            max_bytes = quota.max_total_bytes
            bytes_setting = "tenant.toml [quotas] kv_max_total_bytes"
        key_hash, size = put.key_hash, put.size
        row = await tx.one(
            "SELECT (SELECT size FROM kv WHERE tenant = ?1 AND key_hash = ?2),"
            " (SELECT keys FROM kv_usage WHERE tenant = ?1),"
            " (SELECT bytes FROM kv_usage WHERE tenant = ?1)",
            (tenant, key_hash),
        )
        assert row is not None
        old_size, keys, total = row[0], row[1] or 0, row[2] or 0
        if old_size is None and keys + 1 > max_keys:
            raise KvQuotaExceeded(
                f"Tenant {tenant!r} already has {keys} kv keys; the limit "
                f"({keys_setting}) is {max_keys}. Delete keys first.",
                data={"quota": "kv_max_keys"},
            )
        new_total = total - (old_size or 0) + size
        if new_total > max_bytes and size > (old_size or 0):
            raise KvQuotaExceeded(
                f"Tenant {tenant!r} would use {new_total} kv bytes; the limit "
                f"({bytes_setting}) is {max_bytes}. Delete data first.",
                data={"quota": "kv_max_total_bytes"},
            )
        await tx.run(
            "INSERT INTO kv (tenant, key_hash, key_enc, value_enc, size, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, key_hash) DO UPDATE SET"
            " key_enc = excluded.key_enc, value_enc = excluded.value_enc,"
            " size = excluded.size, updated_at = excluded.updated_at",
            (tenant, key_hash, put.key_enc, put.value_enc, size, self._clock()),
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


def _parse_i64(key: str, text: str) -> int:
    """The decimal i64 in ``text`` (``-?[0-9]+``, nothing else), or KvNotAnInteger."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise KvNotAnInteger(
            f"kv_incr: the value under key {key!r} is {shown!r}, not a decimal integer; nothing "
            "was written. Store counters only through kv_incr, or kv_set a decimal first."
        )
    value = int(text)
    if not I64_MIN <= value <= I64_MAX:
        raise KvNotAnInteger(f"kv_incr: the value under key {key!r} is outside the i64 range")
    return value
