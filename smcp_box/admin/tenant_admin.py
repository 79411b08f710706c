"""Admin changes to tenants: recorded in the database's admin state, never in the tenants folder.

The tenants folder is read-only input (under systemd it is /etc, owned by root). Enable/disable
and limit overrides are rows of the store's admin state; ``add`` puts the new tenant's tenant.toml
and module in the state directory (``<state_dir>/tenants/<name>/``) and records it; ``remove`` of
a folder tenant hides it (its files are never touched) and of an added tenant deletes its row and
its files. Each change is written to the database before it takes effect, so what runs is what a
restart will run. One change at a time (``Box.admin_lock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from smcp_box.box import Box
from smcp_box.errors import BoxError, ConfigError, Conflict, NotFound
from smcp_box.store.tenant_state import TenantAdminState, TenantOrigin
from smcp_box.tenancy.manifest import (
    MANIFEST_NAME,
    TenantManifest,
    discover_manifests,
    load_manifest,
)
from smcp_box.tenancy.registry import LoadReport
from smcp_box.tenancy.runtime import WasmTenant


def origin_of(box: Box, name: str) -> TenantOrigin:
    state = box.tenants.state_of(name)
    return state.origin if state is not None else "folder"


def _state(box: Box, name: str) -> TenantAdminState:
    return box.tenants.state_of(name) or TenantAdminState(name, "folder")


async def _save(box: Box, state: TenantAdminState) -> None:
    await box.store.save_tenant_state(state)
    box.tenants.set_state(state)


async def set_enabled(box: Box, name: str, enabled: bool) -> WasmTenant:
    async with box.admin_lock:
        tenant = box.tenants.require(name)
        await _save(box, replace(_state(box, name), enabled=enabled))
        tenant.set_enabled(enabled)
        return tenant


async def set_limits(box: Box, name: str, changes: dict[str, int | None]) -> WasmTenant:
    """Override limits (None drops an override) and serve the tenant under the new ones."""
    async with box.admin_lock:
        tenant = box.tenants.require(name)
        current = _state(box, name)
        limits = dict(current.limits)
        for key, value in changes.items():
            if value is None:
                limits.pop(key, None)
            else:
                limits[key] = value
        # Validate before saving, so that a bad value never reaches the database.
        await asyncio.to_thread(box.tenants.check_limits, name, limits)
        await _save(box, replace(current, limits=limits))
        assert tenant.manifest.manifest_path is not None  # check_limits read it
        return await asyncio.to_thread(box.tenants.load_tenant, tenant.manifest.manifest_path)


def find_folder_manifest(box: Box, name: str) -> Path | None:
    """The tenants folder's tenant.toml of tenant ``name`` (by folder name, then by the name
    its tenant.toml gives), whether or not it is loaded."""
    tenants_dir = box.settings.tenants_path()
    direct = tenants_dir / name / MANIFEST_NAME
    if direct.is_file():
        return direct
    with contextlib.suppress(BoxError):
        for path in discover_manifests(tenants_dir):
            with contextlib.suppress(BoxError):
                if load_manifest(path).name == name:
                    return path
    return None


@dataclass(frozen=True)
class Reloaded:
    tenant: WasmTenant
    #: A folder tenant an admin had removed, served again by this reload.
    restored: bool


async def reload(box: Box, name: str) -> Reloaded:
    """Reload one tenant from its files, with a fresh module. A folder tenant an admin removed
    is served again (as its tenant.toml says: the admin state it had is gone)."""
    async with box.admin_lock:
        registry = box.tenants
        current = registry.get(name)
        state = await box.store.tenant_state(name)
        if current is not None and current.manifest.manifest_path is not None:
            path = current.manifest.manifest_path
        elif state is not None and state.origin == "admin":
            path = registry.added_manifest_path(name)
        else:
            # A tenant that failed to load, or was removed, has no registry entry, only files.
            found = find_folder_manifest(box, name)
            if found is None:
                raise NotFound(
                    f"no tenant named {name!r}: there is no "
                    f"{box.settings.tenants_path() / name / MANIFEST_NAME}"
                )
            path = found
        if state is not None and state.removed:
            registry.drop_state(name)
            try:
                tenant = await asyncio.to_thread(registry.load_tenant, path, fresh_module=True)
            except BaseException:
                registry.set_state(state)
                raise
            await box.store.delete_tenant_state(name)
            return Reloaded(tenant, restored=True)
        tenant = await asyncio.to_thread(registry.load_tenant, path, fresh_module=True)
        return Reloaded(tenant, restored=False)


@dataclass(frozen=True)
class Removed:
    origin: TenantOrigin
    folder: Path
    #: Whether the tenant's files were deleted (only an added tenant's, in the state directory).
    files_deleted: bool


async def remove(box: Box, name: str) -> Removed:
    """Stop serving ``name``. A folder tenant is hidden (its files stay); an added tenant's row
    and files are deleted. The tenant's data (kv, keys, sessions) is the caller's."""
    async with box.admin_lock:
        registry = box.tenants
        loaded = registry.get(name)
        state = await box.store.tenant_state(name)
        if state is not None and state.origin == "admin":
            folder = registry.added_manifest_path(name).parent
            await box.store.delete_tenant_state(name)
            registry.drop_state(name)
            if loaded is not None:
                registry.remove(name)
            registry.last_report.failed.pop(str(folder), None)
            await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
            return Removed("admin", folder, files_deleted=True)
        if loaded is not None and loaded.manifest.manifest_path is not None:
            folder = loaded.manifest.manifest_path.parent
        else:
            found = None if state is not None and state.removed else find_folder_manifest(box, name)
            if found is None:
                raise NotFound(f"no tenant named {name!r} (list them: smcp-box tenant list)")
            folder = found.parent
        await _save(box, TenantAdminState(name, "folder", removed=True))
        if loaded is not None:
            registry.remove(name)
        registry.last_report.failed.pop(str(folder), None)
        return Removed("folder", folder, files_deleted=False)


async def rescan(box: Box) -> LoadReport:
    """Serve the tenants folder's new folders (and retry those that failed to load); served
    tenants keep running untouched. ``smcp-box tenant rescan``; SIGHUP reloads everything."""
    async with box.admin_lock:
        return await asyncio.to_thread(box.tenants.scan_new, box.settings.tenants_path())


@dataclass(frozen=True)
class Added:
    tenant: WasmTenant
    #: "admin": copied into the state directory; "folder": served from the tenants folder.
    origin: TenantOrigin


def in_tenants_folder(box: Box, source: str | None, manifest_text: str) -> Path | None:
    """The tenant.toml of ``source`` when ``source`` is a folder inside the tenants folder whose
    tenant.toml is the one uploaded: such a tenant is served from there, never copied."""
    if not source:
        return None
    tenants_dir = box.settings.tenants_path().resolve()
    folder = Path(source).resolve()
    if folder.name == MANIFEST_NAME:
        folder = folder.parent
    manifest_path = folder / MANIFEST_NAME
    if not folder.is_relative_to(tenants_dir) or folder == tenants_dir:
        return None
    try:
        return manifest_path if manifest_path.read_text() == manifest_text else None
    except OSError:
        return None


async def add(box: Box, manifest_text: str, module: bytes, *, source: str | None = None) -> Added:
    """Add a tenant. From a folder inside the tenants folder (``source``, the folder the admin
    named): serve it from there as a folder tenant. Else vet the new tenant (its tenant.toml
    and module), keep its files in the state directory, record it in the database and serve
    it; nothing is left behind if any step fails."""
    folder_manifest = await asyncio.to_thread(in_tenants_folder, box, source, manifest_text)
    if folder_manifest is not None:
        return Added(await _add_from_tenants_folder(box, folder_manifest), "folder")
    return Added(await _add_to_state(box, manifest_text, module), "admin")


async def _add_from_tenants_folder(box: Box, manifest_path: Path) -> WasmTenant:
    async with box.admin_lock:
        registry = box.tenants
        manifest = await asyncio.to_thread(load_manifest, manifest_path)
        name = manifest.name
        current = registry.get(name)
        if current is not None:
            served = current.manifest.manifest_path
            if served is not None and _same_file(served, manifest_path):
                raise Conflict(
                    f"tenant {name!r} is already served from {manifest_path.parent}; after "
                    f"changing its files reload it: smcp-box tenant reload {name}"
                )
            raise Conflict(
                f"a tenant named {name!r} is already served from "
                f"{served.parent if served is not None else 'elsewhere'}; rename the tenant in "
                f"{manifest_path}"
            )
        state = await box.store.tenant_state(name)
        if state is not None and state.removed:
            # Adding a removed folder tenant serves it again, as `tenant reload` would.
            registry.drop_state(name)
            try:
                tenant = await asyncio.to_thread(registry.load_tenant, manifest_path)
            except BaseException:
                registry.set_state(state)
                raise
            await box.store.delete_tenant_state(name)
            return tenant
        return await asyncio.to_thread(registry.load_tenant, manifest_path)


def _same_file(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


async def _add_to_state(box: Box, manifest_text: str, module: bytes) -> WasmTenant:
    async with box.admin_lock:
        added_dir = box.added_tenants_path()
        staging_root = added_dir / f".incoming-{secrets.token_hex(6)}"
        try:
            manifest = await asyncio.to_thread(_stage, staging_root, manifest_text, module)
            name = manifest.name
            final = added_dir / name
            await _check_free(box, name)
            await asyncio.to_thread(_move_into_place, staging_root / "tenant", final)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging_root, True)
        state = TenantAdminState(
            name, "admin", manifest=manifest_text, module_sha256=manifest.sha256
        )
        registry = box.tenants
        registry.set_state(state)
        try:
            tenant = await asyncio.to_thread(registry.load_tenant, final / MANIFEST_NAME)
            await box.store.save_added_tenant(state, module)
        except BaseException:
            # A module that does not load is not installed: leave no half-added tenant behind.
            registry.drop_state(name)
            if registry.get(name) is not None:
                registry.remove(name)
            registry.last_report.failed.pop(str(final), None)
            await asyncio.to_thread(shutil.rmtree, final, True)
            raise
        return tenant


def _stage(staging_root: Path, manifest_text: str, module: bytes) -> TenantManifest:
    """Write the tenant into a staging folder (beside its final place, so that the move is an
    atomic rename) and check its manifest and the module's pinned hash."""
    staging = staging_root / "tenant"
    try:
        staging.mkdir(parents=True, mode=0o700)
        (staging / MANIFEST_NAME).write_text(manifest_text)
        manifest = load_manifest(staging / MANIFEST_NAME)
        manifest.module_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        manifest.module_path.write_bytes(module)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the tenant into {staging_root.parent}: {exc.strerror}; the state "
            "directory must be writable by the box"
        ) from None
    manifest.read_module()  # checks the pinned sha256
    return manifest


async def _check_free(box: Box, name: str) -> None:
    if box.tenants.get(name) is not None:
        raise Conflict(
            f"a tenant named {name!r} already exists; remove it first or reload it after "
            "replacing its module"
        )
    state = await box.store.tenant_state(name)
    if state is not None and state.origin == "admin":
        raise Conflict(
            f"a tenant named {name!r} was already added (it failed to load: see smcp-box "
            "tenant list); remove it first"
        )
    folder = await asyncio.to_thread(find_folder_manifest, box, name)
    if folder is not None:
        removed = state is not None and state.removed
        if removed:
            hint = (
                f", removed by an admin; serve it again with smcp-box tenant reload {name}, "
                "or add this one under another name"
            )
        elif str(folder.parent) in box.tenants.last_report.failed:
            hint = (
                f" but failed to load (smcp-box tenant list says why); fix it there and run "
                f"smcp-box tenant reload {name}"
            )
        else:
            hint = (
                " but is not served yet: the box picks up new folders with smcp-box tenant "
                f"rescan (or smcp-box tenant reload {name}, or SIGHUP)"
            )
        raise Conflict(
            f"a tenant named {name!r} already exists in the tenants folder ({folder.parent})" + hint
        )


def _move_into_place(staging: Path, final: Path) -> None:
    try:
        if final.exists():
            # Files of an added tenant that the database no longer records (a crash half-way
            # through a remove): nothing refers to them.
            shutil.rmtree(final)
        staging.rename(final)
    except OSError as exc:
        raise ConfigError(f"cannot move the tenant into {final}: {exc.strerror}") from None
