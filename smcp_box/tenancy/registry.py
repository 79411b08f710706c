"""The set of tenants the box serves, loaded from the tenants folder.

A tenant whose manifest or module is broken is left out with its error kept for ``status`` and
the log; it never stops the box or the other tenants from starting.

Admin changes (enable/disable, limit overrides) persist in ``admin-overrides.json`` beside the
tenant's tenant.toml, so that the vetted manifest is never rewritten by the box and a restart
keeps what the admin chose. Overridden limits win over the manifest's ``[limits]``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from smcp_box.config import SandboxSettings
from smcp_box.errors import BoxError, ConfigError, TenantNotFound
from smcp_box.sandbox import Sandbox
from smcp_box.seams import Auditor
from smcp_box.tenancy.hostcalls import KeyValueStore
from smcp_box.tenancy.manifest import discover_manifests, load_manifest, resolve_limits
from smcp_box.tenancy.runtime import WasmTenant
from smcp_box.tenancy.vet import vet_module

logger = logging.getLogger("smcp_box.tenants")

ADMIN_OVERRIDES_NAME = "admin-overrides.json"


@dataclass(frozen=True)
class AdminOverrides:
    """What an admin changed about a tenant through the admin API."""

    #: None means "as the box started it" (enabled).
    enabled: bool | None = None
    #: tenant.toml ``[limits]`` keys -> values that replace the manifest's.
    limits: dict[str, int] = field(default_factory=dict)


def read_admin_overrides(folder: Path) -> AdminOverrides:
    path = folder / ADMIN_OVERRIDES_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return AdminOverrides()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc}); fix or delete it") from None
    enabled = raw.get("enabled") if isinstance(raw, dict) else None
    limits = raw.get("limits", {}) if isinstance(raw, dict) else None
    if enabled is not None and not isinstance(enabled, bool):
        raise ConfigError(f"{path}: 'enabled' must be true or false")
    if not isinstance(limits, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in limits.values()
    ):
        raise ConfigError(f"{path}: 'limits' must be an object of integers")
    return AdminOverrides(enabled=enabled, limits=dict(limits))


def write_admin_overrides(folder: Path, overrides: AdminOverrides) -> None:
    path = folder / ADMIN_OVERRIDES_NAME
    body = {"enabled": overrides.enabled, "limits": overrides.limits}
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        # Atomic, so that a crash leaves the old file or the new one, never half of one.
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ConfigError(
            f"cannot save the change in {path}: {exc.strerror}; the tenants folder must be "
            "writable by the box for admin changes to persist"
        ) from None


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    #: tenant folder or name -> why it was not loaded
    failed: dict[str, str] = field(default_factory=dict)


class TenantRegistry:
    """Implements the transport's TenantDirectory protocol."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        kv: KeyValueStore,
        defaults: SandboxSettings,
        clock: Callable[[], float],
        auditor: Auditor | None = None,
    ) -> None:
        self._sandbox = sandbox
        self._kv = kv
        self._defaults = defaults
        self._clock = clock
        #: Handed to every tenant loaded, for its tools/call and limit-hit audit rows.
        self.auditor = auditor
        self._tenants: dict[str, WasmTenant] = {}
        self.last_report = LoadReport()

    def get(self, name: str) -> WasmTenant | None:
        return self._tenants.get(name)

    def set_defaults(self, defaults: SandboxSettings) -> None:
        """Box-wide limit defaults for the next load (SIGHUP applies them with a reload)."""
        self._defaults = defaults

    def modules(self) -> dict[str, str]:
        """Tenant name -> sha256 of the module it serves."""
        return {tenant.name: tenant.module.sha256 for tenant in self.all()}

    def names(self) -> list[str]:
        return sorted(self._tenants)

    def all(self) -> list[WasmTenant]:
        return [self._tenants[name] for name in self.names()]

    def load_folder(self, tenants_dir: Path) -> LoadReport:
        """(Re)load every tenant below ``tenants_dir``; tenants no longer there are dropped."""
        report = LoadReport()
        fresh: dict[str, WasmTenant] = {}
        for manifest_path in discover_manifests(tenants_dir):
            try:
                tenant = self._load_one(manifest_path)
            except BoxError as exc:
                report.failed[str(manifest_path.parent)] = exc.message
                logger.error("tenant not loaded: %s", exc.message)
                continue
            if tenant.name in fresh:
                report.failed[str(manifest_path.parent)] = f"duplicate tenant name {tenant.name!r}"
                logger.error("tenant not loaded: duplicate name %r", tenant.name)
                continue
            fresh[tenant.name] = tenant
            report.loaded.append(tenant.name)
            if tenant.auth_mode == "none":
                logger.warning(
                    'tenant %s is PUBLIC (auth = "none" in its tenant.toml): anyone who can '
                    "reach the box can call it without a key",
                    tenant.name,
                )
        for gone in set(self._tenants) - set(fresh):
            self._sandbox.unload(gone)
        self._tenants = fresh
        self.last_report = report
        return report

    def _load_one(self, manifest_path: Path, *, fresh: bool = False) -> WasmTenant:
        manifest = load_manifest(manifest_path)
        overrides = read_admin_overrides(manifest_path.parent)
        if overrides.limits:
            merged = {**manifest.limit_overrides, **overrides.limits}
            manifest = replace(manifest, limit_overrides=merged)
        limits = resolve_limits(self._defaults, manifest.limit_overrides)
        previous = self._tenants.get(manifest.name)
        if overrides.enabled is not None:
            enabled = overrides.enabled
        else:
            enabled = previous.enabled if previous is not None else True
        if not fresh and previous is not None and previous.module.sha256 == manifest.sha256:
            # Same module: keep the warm pool and cached description; limits may have changed.
            module = previous.module
            if module.limits != limits:
                module = self._sandbox.load(manifest.name, manifest.read_module(), limits)
        else:
            module = self._sandbox.load(manifest.name, manifest.read_module(), limits)
        # The description depends only on the module: a tenant object that ran this very module
        # already has it, and vetting learns it from the same calls the warm-up would make.
        same_module = previous is not None and module is previous.module
        description = previous.known_description if previous is not None and same_module else None
        if not same_module or (
            previous is not None and manifest.tools_sha256 != previous.manifest.tools_sha256
        ):
            description = vet_module(self._sandbox, module, manifest)
        return WasmTenant(
            manifest,
            module,
            sandbox=self._sandbox,
            kv=self._kv,
            clock=self._clock,
            enabled=enabled,
            auditor=self.auditor,
            inline_fuel=self._defaults.inline_fuel,
            description=description,
        )

    # --- admin operations: one tenant at a time ------------------------------------------

    def require(self, name: str) -> WasmTenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            raise TenantNotFound(
                f"no tenant named {name!r} is loaded (list them: smcp-box tenant list)"
            )
        return tenant

    def load_tenant(self, manifest_path: Path, *, fresh_module: bool = False) -> WasmTenant:
        """Load (or reload) the tenant of one tenant.toml and serve it.

        On failure the tenant's previous version, if any, keeps serving and the error is kept in
        ``last_report.failed``. ``fresh_module`` compiles and pools the module anew even when its
        hash is unchanged (drops warm instances).
        """
        folder_key = str(manifest_path.parent)
        try:
            tenant = self._load_one(manifest_path, fresh=fresh_module)
            other = self._tenants.get(tenant.name)
            other_path = other.manifest.manifest_path if other is not None else None
            if other_path is not None and other_path.resolve() != manifest_path.resolve():
                raise ConfigError(
                    f"duplicate tenant name {tenant.name!r}: {other_path.parent} already uses it"
                )
        except BoxError as exc:
            self.last_report.failed[folder_key] = exc.message
            raise
        self._tenants[tenant.name] = tenant
        self.last_report.failed.pop(folder_key, None)
        if tenant.name not in self.last_report.loaded:
            self.last_report.loaded.append(tenant.name)
        return tenant

    def set_enabled(self, name: str, enabled: bool) -> WasmTenant:
        tenant = self.require(name)
        folder = self._folder_of(tenant)
        write_admin_overrides(folder, replace(read_admin_overrides(folder), enabled=enabled))
        tenant.set_enabled(enabled)
        return tenant

    def set_limits(self, name: str, changes: Mapping[str, int | None]) -> WasmTenant:
        """Override limits (None drops an override) and serve the tenant under the new ones."""
        tenant = self.require(name)
        folder = self._folder_of(tenant)
        overrides = read_admin_overrides(folder)
        limits = dict(overrides.limits)
        for key, value in changes.items():
            if value is None:
                limits.pop(key, None)
            else:
                limits[key] = value
        manifest = load_manifest(folder / "tenant.toml")
        # Validate before saving, so that a bad value never reaches the file.
        resolve_limits(self._defaults, {**manifest.limit_overrides, **limits})
        write_admin_overrides(folder, replace(overrides, limits=limits))
        return self.load_tenant(folder / "tenant.toml")

    def remove(self, name: str) -> WasmTenant:
        """Stop serving ``name`` and drop its module; its folder and data are the caller's."""
        tenant = self.require(name)
        del self._tenants[name]
        self._sandbox.unload(name)
        with contextlib.suppress(ValueError):
            self.last_report.loaded.remove(name)
        return tenant

    @staticmethod
    def _folder_of(tenant: WasmTenant) -> Path:
        if tenant.manifest.manifest_path is None:
            raise ConfigError(f"tenant {tenant.name!r} was not loaded from a tenant.toml")
        return tenant.manifest.manifest_path.parent
