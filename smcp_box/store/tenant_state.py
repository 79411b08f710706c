"""What admins changed about tenants at run time: the box's record of admin state.

The tenants folder is read-only input (under systemd it is /etc, owned by root), so everything an
admin changes through the admin API lives here, one row per tenant name:

* ``origin = 'folder'``: a tenant of the tenants folder. The row holds the admin's enable/disable,
  limit overrides, and ``removed`` (``tenant remove`` hides the tenant; its files stay).
* ``origin = 'admin'``: a tenant added through the admin API. The row holds its tenant.toml
  (sealed: ``[config]`` may hold secrets), the module's pinned sha256, and the same enable/limit
  state; ``tenant_module`` holds the module's bytes. Its files in the state directory are a copy
  the box rewrites from these when they are missing or differ (after a restore, say).

A folder tenant without a row runs as its tenant.toml says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from smcp_box.errors import StoreError

from .crypto import Crypto
from .db import Database, Row

TenantOrigin = Literal["folder", "admin"]

_TABLE = "tenant_admin"


@dataclass(frozen=True)
class TenantAdminState:
    tenant: str
    origin: TenantOrigin = "folder"
    #: None means "as the box started it" (enabled).
    enabled: bool | None = None
    #: tenant.toml ``[limits]`` keys -> values that replace the manifest's.
    limits: Mapping[str, int] = field(default_factory=dict)
    #: A folder tenant an admin removed: not served until ``tenant reload`` brings it back.
    removed: bool = False
    #: Admin-added tenants: the tenant.toml text as it was added.
    manifest: str | None = None
    #: Admin-added tenants: the sha256 their manifest pins for the module.
    module_sha256: str | None = None
    updated_at: float = 0.0


_SELECT = (
    "SELECT tenant, origin, enabled, removed, limits_enc, manifest_enc, module_sha256, updated_at"
    " FROM tenant_admin"
)
_INSERT = (
    "INSERT INTO tenant_admin (tenant, origin, enabled, removed, limits_enc, manifest_enc,"
    " module_sha256, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class TenantStates:
    def __init__(self, db: Database, crypto: Crypto, clock: Callable[[], float]) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock

    def _from_row(self, row: Row) -> TenantAdminState:
        tenant, origin, enabled, removed, limits_enc, manifest_enc, sha, updated = row
        limits = self._crypto.open_json(limits_enc, _TABLE, tenant, "limits")
        manifest = (
            None
            if manifest_enc is None
            else self._crypto.open_text(manifest_enc, _TABLE, tenant, "manifest")
        )
        return TenantAdminState(
            tenant=tenant,
            origin=origin,
            enabled=None if enabled is None else bool(enabled),
            limits={str(k): int(v) for k, v in dict(limits).items()},
            removed=bool(removed),
            manifest=manifest,
            module_sha256=sha,
            updated_at=float(updated),
        )

    def _params(self, state: TenantAdminState) -> tuple[object, ...]:
        name = state.tenant
        limits_enc = self._crypto.seal_json(dict(state.limits), _TABLE, name, "limits")
        manifest_enc = (
            None
            if state.manifest is None
            else self._crypto.seal_text(state.manifest, _TABLE, name, "manifest")
        )
        enabled = None if state.enabled is None else int(state.enabled)
        return (
            name,
            state.origin,
            enabled,
            int(state.removed),
            limits_enc,
            manifest_enc,
            state.module_sha256,
            self._clock(),
        )

    async def all(self) -> dict[str, TenantAdminState]:
        async with self._db.read() as tx:
            rows = await tx.all(_SELECT + " ORDER BY tenant")
        return {row[0]: self._from_row(row) for row in rows}

    async def get(self, tenant: str) -> TenantAdminState | None:
        async with self._db.read() as tx:
            row = await tx.one(_SELECT + " WHERE tenant = ?", (tenant,))
        return None if row is None else self._from_row(row)

    async def save(self, state: TenantAdminState) -> None:
        await self._db.write_one(
            _INSERT + " ON CONFLICT (tenant) DO UPDATE SET origin = excluded.origin,"
            " enabled = excluded.enabled, removed = excluded.removed,"
            " limits_enc = excluded.limits_enc, manifest_enc = excluded.manifest_enc,"
            " module_sha256 = excluded.module_sha256, updated_at = excluded.updated_at",
            self._params(state),
        )

    async def insert_if_absent(self, state: TenantAdminState) -> bool:
        rows = await self._db.write_one(
            _INSERT + " ON CONFLICT (tenant) DO NOTHING RETURNING tenant",
            self._params(state),
        )
        return bool(rows)

    async def save_added(self, state: TenantAdminState, module: bytes) -> None:
        """Record an admin-added tenant with its module's bytes, both or neither."""
        if state.origin != "admin" or state.module_sha256 != hashlib.sha256(module).hexdigest():
            raise ValueError("an added tenant's module must match the sha256 its state pins")
        async with self._db.write() as tx:
            await tx.run(
                _INSERT + " ON CONFLICT (tenant) DO UPDATE SET origin = excluded.origin,"
                " enabled = excluded.enabled, removed = excluded.removed,"
                " limits_enc = excluded.limits_enc, manifest_enc = excluded.manifest_enc,"
                " module_sha256 = excluded.module_sha256, updated_at = excluded.updated_at",
                self._params(state),
            )
            await tx.run(
                "INSERT INTO tenant_module (tenant, sha256, module) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET sha256 = excluded.sha256,"
                " module = excluded.module",
                (state.tenant, state.module_sha256, module),
            )

    async def module(self, tenant: str) -> bytes | None:
        """An added tenant's module bytes, checked against the hash stored with them."""
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT sha256, module FROM tenant_module WHERE tenant = ?", (tenant,)
            )
        if row is None:
            return None
        sha, module = row
        if hashlib.sha256(module).hexdigest() != sha:
            raise StoreError(f"the stored module of tenant {tenant!r} does not match its sha256")
        return bytes(module)

    async def delete(self, tenant: str) -> bool:
        async with self._db.write() as tx:
            rows = await tx.all(
                "DELETE FROM tenant_admin WHERE tenant = ? RETURNING tenant", (tenant,)
            )
            await tx.run("DELETE FROM tenant_module WHERE tenant = ?", (tenant,))
        return bool(rows)
