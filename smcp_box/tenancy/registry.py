"""The set of tenants the box serves: the tenants folder's, and those added through the admin API.

A tenant whose manifest or module is broken is left out with its error kept for ``status`` and
the log; it never stops the box or the other tenants from starting.

The tenants folder is read-only input: the box never writes there. What admins change at run
time (enable/disable, limit overrides, removing a folder tenant, adding a tenant) is the store's
admin state (:class:`~smcp_box.store.tenant_state.TenantAdminState`), which the registry is given
as a snapshot at each load and kept up to date by the admin API (``admin/tenant_admin.py``).
Overridden limits win over the manifest's ``[limits]``. Tenants added through the admin API live
in ``added_dir`` (``<state_dir>/tenants/<name>/``) and load alongside the folder's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from smcp_box.config import (
    BASELINE_MODES,
    CHANGED_DEFINITIONS_MODES,
    QuotaSettings,
    SandboxSettings,
    VettingSettings,
)
from smcp_box.errors import BoxError, ConfigError, TenantNotFound
from smcp_box.sandbox import Sandbox
from smcp_box.seams import Auditor
from smcp_box.store.blobs import Blobs
from smcp_box.store.tenant_state import TenantAdminState
from smcp_box.tenancy.approvals import DefinitionApprovals, strictest
from smcp_box.tenancy.baselines import TenantBaselines
from smcp_box.tenancy.hostcalls import KeyValueStore
from smcp_box.tenancy.manifest import (
    MANIFEST_NAME,
    TenantManifest,
    discover_manifests,
    load_manifest,
    resolve_limits,
)
from smcp_box.tenancy.quotas import TenantPolicy, resolve_quotas
from smcp_box.tenancy.runtime import WasmTenant
from smcp_box.tenancy.secrets import TenantSecrets
from smcp_box.tenancy.signing import check_manifest_signature, log_signature
from smcp_box.tenancy.vet import check_description, describe_or_reject
from smcp_box.vetting.baseline import BaselineRule
from smcp_box.vetting.definitions import others_view

logger = logging.getLogger("smcp_box.tenants")


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
        quota_defaults: QuotaSettings | None = None,
        vetting: VettingSettings | None = None,
        secrets: TenantSecrets | None = None,
        blobs: Blobs | None = None,
    ) -> None:
        self._sandbox = sandbox
        #: The box's blob store, handed to every tenant loaded for its blob imports.
        self.blobs = blobs
        #: The box's [vetting] settings: who may publish the modules loaded.
        self._vetting = vetting or VettingSettings()
        #: Every tenant's secrets, shared with each tenant loaded (kept current by the admin API).
        self.secrets = secrets or TenantSecrets()
        #: Approved tool definitions and pending changes (loaded from the store by the box).
        self.approvals = DefinitionApprovals()
        #: Every tenant's per-tool behaviour baselines (loaded from the store by the box).
        self.baselines = TenantBaselines(BaselineRule(warmup=self._vetting.baseline_warmup_calls))
        self._kv = kv
        self._defaults = defaults
        self._quota_defaults = quota_defaults or QuotaSettings()
        self._clock = clock
        #: Handed to every tenant loaded, for its tools/call and limit-hit audit rows.
        self.auditor = auditor
        self._tenants: dict[str, WasmTenant] = {}
        #: tenant.toml ``hosts`` of the tenants served: host name -> tenant name.
        self._hosts: dict[str, str] = {}
        #: The admin state the tenants were loaded with, kept current by every admin change.
        self._states: dict[str, TenantAdminState] = {}
        #: Where tenants added through the admin API live; None: no such tenants.
        self.added_dir: Path | None = None
        self.last_report = LoadReport()

    def get(self, name: str) -> WasmTenant | None:
        return self._tenants.get(name)

    def by_host(self, host: str) -> WasmTenant | None:
        """The tenant whose tenant.toml ``hosts`` lists ``host`` (a bare name, no port)."""
        name = self._hosts.get(host.lower().rstrip("."))
        return self._tenants.get(name) if name is not None else None

    def hosts(self) -> dict[str, str]:
        """Host name -> tenant name, for every host a served tenant lists."""
        return dict(self._hosts)

    def set_defaults(self, defaults: SandboxSettings, quotas: QuotaSettings | None = None) -> None:
        """Box-wide limit (and quota) defaults for the next load (SIGHUP applies them with a
        reload)."""
        self._defaults = defaults
        if quotas is not None:
            self._quota_defaults = quotas

    def policy(self, name: str) -> TenantPolicy | None:
        """What :class:`~smcp_box.tenancy.quotas.Admission` applies to tenant ``name``."""
        tenant = self._tenants.get(name)
        return tenant.policy if tenant is not None else None

    def set_vetting(self, vetting: VettingSettings) -> None:
        """Box-wide [vetting] settings for the next load (SIGHUP applies them with a reload)."""
        self._vetting = vetting
        self.baselines.rule = replace(self.baselines.rule, warmup=vetting.baseline_warmup_calls)

    def modules(self) -> dict[str, str]:
        """Tenant name -> sha256 of the module it serves."""
        return {tenant.name: tenant.module.sha256 for tenant in self.all()}

    def names(self) -> list[str]:
        return sorted(self._tenants)

    def all(self) -> list[WasmTenant]:
        return [self._tenants[name] for name in self.names()]

    def state_of(self, name: str) -> TenantAdminState | None:
        """The admin state of ``name`` as last loaded or changed; None: no admin change."""
        return self._states.get(name)

    def set_state(self, state: TenantAdminState) -> None:
        self._states[state.tenant] = state

    def drop_state(self, name: str) -> None:
        self._states.pop(name, None)

    def added_manifest_path(self, name: str) -> Path:
        if self.added_dir is None:
            raise ConfigError("this registry has no folder for tenants added by an admin")
        return self.added_dir / name / MANIFEST_NAME

    def load_folder(
        self,
        tenants_dir: Path,
        states: Mapping[str, TenantAdminState] | None = None,
        added_dir: Path | None = None,
    ) -> LoadReport:
        """(Re)load every tenant below ``tenants_dir`` and every admin-added tenant of
        ``states`` (files below ``added_dir``); tenants no longer there are dropped.

        An admin-added tenant wins a name clash with a folder tenant: the folder's is reported
        as failed, naming both places.
        """
        if states is not None:
            self._states = dict(states)
        if added_dir is not None:
            self.added_dir = added_dir
        report = LoadReport()
        fresh: dict[str, WasmTenant] = {}
        added = sorted(name for name, st in self._states.items() if st.origin == "admin")
        claimed: dict[str, str] = {}
        for name in added:
            manifest_path = self.added_manifest_path(name)
            try:
                _claim_hosts(load_manifest(manifest_path), claimed)
                tenant = self._load_one(manifest_path)
                if tenant.name != name:
                    raise ConfigError(
                        f"{manifest_path}: names tenant {tenant.name!r}, but it was added as "
                        f"{name!r}; remove it and add it again"
                    )
            except BoxError as exc:
                report.failed[str(manifest_path.parent)] = exc.message
                logger.error("tenant not loaded: %s", exc.message)
                continue
            fresh[name] = tenant
            claimed.update(dict.fromkeys(tenant.manifest.hosts, name))
            report.loaded.append(name)
        for manifest_path in discover_manifests(tenants_dir):
            try:
                manifest = load_manifest(manifest_path)
            except BoxError as exc:
                # A removed tenant whose manifest no longer parses stays hidden by folder name.
                if not self._removed(manifest_path.parent.name):
                    report.failed[str(manifest_path.parent)] = exc.message
                    logger.error("tenant not loaded: %s", exc.message)
                continue
            if self._removed(manifest.name):
                logger.info(
                    "tenant %s (%s) is not served: an admin removed it (smcp-box tenant reload "
                    "%s serves it again)",
                    manifest.name,
                    manifest_path.parent,
                    manifest.name,
                )
                continue
            try:
                if manifest.name in added:
                    raise ConfigError(
                        f"duplicate tenant name {manifest.name!r}: a tenant added through the "
                        f"admin API ({self.added_manifest_path(manifest.name).parent}) already "
                        "uses it and is served instead; rename this folder's tenant, or remove "
                        f"the added one (smcp-box tenant remove {manifest.name})"
                    )
                if manifest.name not in fresh:
                    _claim_hosts(manifest, claimed)
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
            claimed.update(dict.fromkeys(tenant.manifest.hosts, tenant.name))
            report.loaded.append(tenant.name)
        for tenant in fresh.values():
            if tenant.auth_mode == "none":
                logger.warning(
                    'tenant %s is PUBLIC (auth = "none" in its tenant.toml): anyone who can '
                    "reach the box can call it without a key",
                    tenant.name,
                )
        for gone in set(self._tenants) - set(fresh):
            self._sandbox.unload(gone)
        self._tenants = fresh
        self._hosts = claimed
        report.loaded.sort()
        self.last_report = report
        return report

    def scan_new(self, tenants_dir: Path) -> LoadReport:
        """Load the tenants folder's tenants that are not served yet: new folders, and folders
        that failed to load before. Served tenants are left alone (a full reload is SIGHUP's
        job) and so are folder tenants an admin removed.

        The report names what this scan loaded and what it could not load.
        """
        report = LoadReport()
        served = {
            tenant.manifest.manifest_path.parent.resolve()
            for tenant in self._tenants.values()
            if tenant.manifest.manifest_path is not None
        }
        for manifest_path in discover_manifests(tenants_dir):
            folder = manifest_path.parent
            if folder.resolve() in served:
                continue
            try:
                manifest = load_manifest(manifest_path)
            except BoxError as exc:
                if not self._removed(folder.name):
                    report.failed[str(folder)] = exc.message
                    self.last_report.failed[str(folder)] = exc.message
                continue
            if self._removed(manifest.name):
                continue
            try:
                tenant = self.load_tenant(manifest_path)
            except BoxError as exc:
                report.failed[str(folder)] = exc.message
                logger.error("tenant not loaded: %s", exc.message)
                continue
            report.loaded.append(tenant.name)
            logger.info("tenant %s: picked up from %s", tenant.name, folder)
        self.last_report.loaded.sort()
        report.loaded.sort()
        return report

    def unserved_fingerprint(self, tenants_dir: Path) -> tuple[tuple[str, int, int], ...]:
        """What a periodic scan compares: the tenants folder's subfolders no tenant is served
        from, with every file in them (path, mtime, size). It changes when a folder appears
        and when a file of an unserved folder is written (a copy that was half done when the
        last scan failed to load it), and not otherwise; a few stat() calls per check."""
        served = {
            tenant.manifest.manifest_path.parent.resolve()
            for tenant in self._tenants.values()
            if tenant.manifest.manifest_path is not None
        }
        entries: list[tuple[str, int, int]] = []
        try:
            folders = sorted(path for path in tenants_dir.iterdir() if path.is_dir())
        except OSError:
            return ()
        for folder in folders:
            if folder.resolve() in served or folder.name.startswith("."):
                continue
            for path in sorted(folder.rglob("*")):
                with contextlib.suppress(OSError):
                    info = path.stat()
                    entries.append((str(path), info.st_mtime_ns, info.st_size))
            with contextlib.suppress(OSError):
                entries.append((str(folder), folder.stat().st_mtime_ns, 0))
        return tuple(entries)

    def removed_names(self) -> list[str]:
        """Folder tenants an admin removed (hidden; their files are untouched)."""
        return sorted(name for name in self._states if self._removed(name))

    def _removed(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.origin == "folder" and state.removed

    def _load_one(self, manifest_path: Path, *, fresh: bool = False) -> WasmTenant:
        manifest = load_manifest(manifest_path)
        overrides = self._states.get(manifest.name) or TenantAdminState(manifest.name)
        # The database's copy is the vetted one: the state directory's must still match.
        recorded = overrides.manifest if overrides.origin == "admin" else None
        if recorded is not None and manifest_path.read_text() != recorded:
            raise ConfigError(
                f"{manifest_path} differs from the tenant.toml recorded when tenant "
                f"{manifest.name!r} was added; remove the tenant and add it again"
            )
        # Checked on the tenant.toml as written (before an admin's limit overrides), at every
        # load and reload: a changed signature, key list or signed field takes effect at once.
        signature = check_manifest_signature(manifest, self._vetting)
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
                module = self._sandbox.load(
                    manifest.name, manifest.read_module(), limits, kind=manifest.kind
                )
        else:
            module = self._sandbox.load(
                manifest.name, manifest.read_module(), limits, kind=manifest.kind
            )
        # The description depends only on the module: a tenant object that ran this very module
        # already has it, and vetting learns it from the same calls the warm-up would make.
        same_module = previous is not None and module is previous.module
        description = previous.known_description if previous is not None and same_module else None
        if description is None:
            description = describe_or_reject(self._sandbox, module, manifest)
        # Held to the approved definitions (tenant.toml's pin or the latest approval): a module
        # whose definitions changed serves the approved ones, or is refused here.
        verdict = self.approvals.judge(
            manifest,
            list(description.tools or ()),
            strictest(
                CHANGED_DEFINITIONS_MODES,
                self._vetting.on_changed_definitions,
                manifest.on_changed_definitions,
            ),
            self._clock(),
            others_view(description.prompts, description.resource_templates, description.resources),
        )
        report = previous.vet_report if previous is not None and same_module else None
        if report is None or report.pinned != verdict.approved_sha256:
            report = check_description(
                manifest, description, verdict.approved_sha256, changed_ok=bool(verdict.pending)
            )
        if not same_module:
            log_signature(manifest, signature, self._vetting)
        missing = self.secrets.missing(manifest.name, manifest.secrets)
        if missing:
            logger.warning(
                "tenant %s: its tenant.toml needs secret(s) %s, not set on this box; its module "
                "reads nothing for them until they are (smcp-box secret set %s NAME)",
                manifest.name,
                ", ".join(missing),
                manifest.name,
            )
        tenant = WasmTenant(
            manifest,
            module,
            sandbox=self._sandbox,
            kv=self._kv,
            clock=self._clock,
            enabled=enabled,
            auditor=self.auditor,
            inline_fuel=self._defaults.inline_fuel,
            description=description,
            policy=TenantPolicy(
                resolve_quotas(self._quota_defaults, manifest.quota_overrides),
                manifest.allowed_networks,
            ),
            secrets=self.secrets,
            blobs=self.blobs,
        )
        tenant.vet_report = report
        tenant.signature = signature
        tenant.hold_to_definitions(verdict.served, verdict.pending, verdict.served_others)
        tenant.baselines = self.baselines
        tenant.baseline_block = (
            strictest(BASELINE_MODES, self._vetting.baseline, manifest.baseline) == "block"
        )
        if previous is not None:
            # A reload that keeps the tenant (same module or a new one) keeps its counters: the
            # very object, so calls still running on the previous version count here too. So
            # does its fuel budget: a reload must not hand out a fresh minute.
            tenant.stats = previous.stats
            tenant.fuel_window = previous.fuel_window
        return tenant

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
            # Checked before the module is loaded: a clash leaves the sandbox untouched.
            _claim_hosts(load_manifest(manifest_path), self._hosts)
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
        self._hosts = {host: name for host, name in self._hosts.items() if name != tenant.name}
        self._hosts.update(dict.fromkeys(tenant.manifest.hosts, tenant.name))
        self.last_report.failed.pop(folder_key, None)
        if tenant.name not in self.last_report.loaded:
            self.last_report.loaded.append(tenant.name)
        return tenant

    def base_limit_overrides(self, name: str) -> dict[str, int]:
        """The ``[limits]`` of ``name``'s tenant.toml, without the admin's overrides."""
        tenant = self.require(name)
        if tenant.manifest.manifest_path is None:
            raise ConfigError(f"tenant {name!r} was not loaded from a tenant.toml")
        return dict(load_manifest(tenant.manifest.manifest_path).limit_overrides)

    def check_limits(self, name: str, admin_limits: Mapping[str, int]) -> None:
        """Raise ConfigError unless ``admin_limits`` on top of the manifest's are valid."""
        resolve_limits(self._defaults, {**self.base_limit_overrides(name), **admin_limits})

    def remove(self, name: str) -> WasmTenant:
        """Stop serving ``name`` and drop its module; its folder and data are the caller's."""
        tenant = self.require(name)
        del self._tenants[name]
        self.approvals.forget(name)
        self._hosts = {host: owner for host, owner in self._hosts.items() if owner != name}
        self._sandbox.unload(name)
        with contextlib.suppress(ValueError):
            self.last_report.loaded.remove(name)
        return tenant


def _claim_hosts(manifest: TenantManifest, claimed: Mapping[str, str]) -> None:
    """Raise ConfigError when another tenant in ``claimed`` (host -> tenant) has one of
    ``manifest``'s hosts: a request's Host must name one tenant, so the later one is refused."""
    for host in manifest.hosts:
        owner = claimed.get(host)
        if owner is not None and owner != manifest.name:
            raise ConfigError(
                f"duplicate host {host!r}: tenants {owner!r} and {manifest.name!r} both list it "
                f"in hosts; tenant {owner!r} keeps it and {manifest.name!r} is not served until "
                "one of them drops it"
            )
