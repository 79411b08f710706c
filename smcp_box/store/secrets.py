"""Per-tenant secrets (``smcp-box secret set``): values a module reads with ``config_get``.

Each value is sealed (AES-256-GCM) with its tenant and name in the AAD, so a value moved to
another tenant's or name's row no longer opens. Names are not secret: they are listed, audited
and declared in tenant.toml (``secrets = [...]``); values never leave the store except to the
box's memory, from which only the tenant's own module reads them.
"""

from __future__ import annotations

from collections.abc import Callable

from .crypto import Crypto
from .db import Database

_TABLE = "tenant_secrets"


class Secrets:
    def __init__(self, db: Database, crypto: Crypto, clock: Callable[[], float]) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock

    async def set(self, tenant: str, name: str, value: str) -> None:
        sealed = self._crypto.seal_text(value, _TABLE, tenant, name, "value")
        await self._db.write_one(
            "INSERT INTO tenant_secrets (tenant, name, value_enc, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (tenant, name) DO UPDATE SET value_enc = excluded.value_enc,"
            " updated_at = excluded.updated_at",
            (tenant, name, sealed, self._clock()),
        )

    async def delete(self, tenant: str, name: str) -> bool:
        rows = await self._db.write_one(
            "DELETE FROM tenant_secrets WHERE tenant = ? AND name = ? RETURNING name",
            (tenant, name),
        )
        return bool(rows)

    async def delete_tenant(self, tenant: str) -> int:
        rows = await self._db.write_one(
            "DELETE FROM tenant_secrets WHERE tenant = ? RETURNING name", (tenant,)
        )
        return len(rows)

    async def names(self, tenant: str | None = None) -> list[tuple[str, str, float]]:
        """(tenant, name, updated_at) of every secret, or of one tenant's; never the values."""
        query = "SELECT tenant, name, updated_at FROM tenant_secrets"
        params: tuple[str, ...] = ()
        if tenant is not None:
            query += " WHERE tenant = ?"
            params = (tenant,)
        async with self._db.read() as tx:
            rows = await tx.all(query + " ORDER BY tenant, name", params)
        return [(str(t), str(n), float(u)) for t, n, u in rows]

    async def all(self) -> dict[str, dict[str, str]]:
        """Every value, opened: tenant -> name -> value (what the box serves modules from)."""
        async with self._db.read() as tx:
            rows = await tx.all("SELECT tenant, name, value_enc FROM tenant_secrets")
        values: dict[str, dict[str, str]] = {}
        for tenant, name, sealed in rows:
            value = self._crypto.open_text(sealed, _TABLE, tenant, name, "value")
            values.setdefault(tenant, {})[name] = value
        return values
