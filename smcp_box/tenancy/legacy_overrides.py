"""Carrying the old ``admin-overrides.json`` files into the database's admin state.

Before admin state lived in the database, enable/disable and limit overrides were saved in
``admin-overrides.json`` beside a tenant's tenant.toml. At start, such a file is imported when the
database has no row for that tenant yet; the file is left in place (the tenants folder is
read-only to the box) and ignored from then on, which the log says each time it sees one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

from smcp_box.errors import BoxError, ConfigError
from smcp_box.store.tenant_state import TenantAdminState
from smcp_box.tenancy.manifest import discover_manifests, load_manifest

logger = logging.getLogger("smcp_box.tenants")

LEGACY_OVERRIDES_NAME = "admin-overrides.json"


class AdminStateStore(Protocol):
    async def add_tenant_state_if_absent(self, state: TenantAdminState) -> bool: ...


def read_legacy_overrides(path: Path, tenant: str) -> TenantAdminState:
    """The admin state a legacy ``admin-overrides.json`` describes; ConfigError if malformed."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a JSON object")
    enabled = raw.get("enabled")
    limits = raw.get("limits", {})
    if enabled is not None and not isinstance(enabled, bool):
        raise ConfigError(f"{path}: 'enabled' must be true or false")
    if not isinstance(limits, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in limits.values()
    ):
        raise ConfigError(f"{path}: 'limits' must be an object of integers")
    return TenantAdminState(tenant, "folder", enabled=enabled, limits=dict(limits))


async def import_legacy_overrides(tenants_dir: Path, store: AdminStateStore) -> list[str]:
    """Import every ``admin-overrides.json`` of the tenants folder whose tenant has no admin
    state in the database yet; returns the names of the tenants imported."""
    try:
        manifests = discover_manifests(tenants_dir)
    except BoxError:
        return []  # the load that follows reports a missing tenants folder
    imported: list[str] = []
    for manifest_path in manifests:
        path = manifest_path.parent / LEGACY_OVERRIDES_NAME
        if not path.is_file():
            continue
        try:
            name = load_manifest(manifest_path).name
            state = read_legacy_overrides(path, name)
        except BoxError as exc:
            logger.error("%s not imported into the database: %s", path, exc.message)
            continue
        if await store.add_tenant_state_if_absent(state):
            imported.append(name)
            logger.warning(
                "imported %s into the database (tenant %s: enabled=%s, limits=%s); the box "
                "keeps admin state in its database now and ignores this file: delete it",
                path,
                name,
                state.enabled,
                dict(state.limits),
            )
        else:
            logger.warning(
                "ignoring %s: tenant %s's admin state is in the database (admin changes no "
                "longer go to the tenants folder); delete the file",
                path,
                name,
            )
    return imported
