"""``tenant.toml``: what a tenant is, which module it runs, and the limits it runs under.

A manifest is read and checked completely before anything of it is used: an unknown key, a
malformed name, a missing module or a module whose SHA-256 differs from the pinned one is an
error naming the file and the problem, and that tenant is not served (the others still are).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smcp_box.config import (
    BASELINE_MODES,
    CHANGED_DEFINITIONS_MODES,
    LIMITS,
    PUBLISHER_KEY_PATTERN,
    SandboxSettings,
    check_limits,
    check_quota,
)
from smcp_box.errors import ConfigError
from smcp_box.protocol.http import IpNetwork
from smcp_box.sandbox import Limits
from smcp_box.seams import AUTH_MODES, TENANT_KINDS, AuthMode, TenantKind
from smcp_box.tenancy.quotas import parse_networks
from smcp_box.tenancy.tasks import parse_tool_tables

MANIFEST_NAME = "tenant.toml"
TENANT_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TOP_LEVEL_KEYS = {
    "name", "description", "module", "sha256", "auth", "receipts", "tools_sha256", "limits",
    "config", "hosts", "kind", "quotas", "allowed_networks",
    "vetting", "secrets", "tools", "blobs",
}  # fmt: skip
#: Keys of a tenant.toml's ``[vetting]`` table, which may only tighten the box's [vetting].
_VETTING_KEYS = {"require_signature", "publishers", "on_changed_definitions", "baseline"}
#: Secret names (``smcp-box secret set TENANT NAME``): what config_get is asked for.
SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
#: One DNS label: letters, digits and inner hyphens (tenant.toml ``hosts`` are lowercase).
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: Names a request's Host never carries for a tenant: the box's own loopback names.
_RESERVED_HOSTS = frozenset({"localhost"})


def resolve_limits(defaults: SandboxSettings, overrides: Mapping[str, int] | None = None) -> Limits:
    """One tenant's per-call limits: the box defaults with its tenant.toml ``[limits]`` (and an
    admin's overrides) on top.

    Raises ConfigError with the message every layer shares (:func:`smcp_box.config.check_limit`)
    for an unknown limit, a value that is not an integer or one outside its bounds.
    """
    merged: dict[str, int] = {name: getattr(defaults, name) for name in LIMITS}
    merged.update(check_limits(overrides or {}))
    return Limits(**merged)


@dataclass(frozen=True)
class TenantManifest:
    name: str
    description: str
    module_path: Path
    sha256: str
    auth: AuthMode
    #: The ``[limits]`` table, checked: known names, integers within :data:`LIMITS`' bounds.
    limit_overrides: dict[str, int] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    manifest_path: Path | None = None
    #: Whether tools/call results carry the call's resource receipt in ``_meta`` (the audit
    #: log always gets it). Opt-in: the figures describe the module's behaviour (how much it
    #: computed, how much memory it holds), which a tenant may not want every caller to see.
    receipts: bool = False
    #: Fingerprint of the vetted tool definitions (``smcp-box vet`` prints it). When set, the
    #: box refuses to serve the module if its tools/list no longer matches: a module cannot
    #: change what it tells the model its tools do without being vetted again.
    tools_sha256: str | None = None
    #: Host names (tenant.toml ``hosts``) that serve this tenant at ``https://<host>/mcp``
    #: beside ``/t/<name>/mcp``; lowercase DNS names, each owned by one tenant per box.
    hosts: tuple[str, ...] = ()
    #: tenant.toml ``kind``: how the module is run (see :data:`~smcp_box.seams.TenantKind`).
    kind: TenantKind = "core"
    #: The ``[quotas]`` table, checked against :data:`~smcp_box.config.QUOTAS`.
    quota_overrides: dict[str, int | float] = field(default_factory=dict)
    #: ``allowed_networks``: the client networks that may reach this tenant (empty: any).
    allowed_networks: tuple[IpNetwork, ...] = ()
    #: ``[vetting] require_signature``: this tenant needs a trusted signature even when the box
    #: does not require one (it cannot relax a box that does).
    require_signature: bool = False
    #: ``[vetting] publishers``: the only keys this tenant accepts (each must also be trusted
    #: by the box); None accepts any the box trusts.
    publishers: tuple[str, ...] | None = None
    #: ``secrets``: names of the secrets the module needs (``smcp-box secret set``); a tenant
    #: missing one is reported by status and vet instead of failing its calls one by one.
    secrets: tuple[str, ...] = ()
    #: ``[vetting] on_changed_definitions``: "refuse" refuses this tenant's changed definitions
    #: even when the box serves the approved ones (None: as the box says).
    on_changed_definitions: str | None = None
    #: ``[vetting] baseline``: "block" blocks this tenant's tools on a far-off call even when the
    #: box only flags (None: as the box says).
    baseline: str | None = None
    #: ``[tools.NAME] task_timeout_s``: the wall-clock limit of the tool's task calls
    #: (docs/tasks.md), by tool name; tools not named use ``[tasks] default_timeout_s``.
    task_timeouts: dict[str, int] = field(default_factory=dict)
    #: ``[blobs] resources``: the box lists the tenant's blobs in resources/list (``blob:``
    #: URIs) and answers resources/read for them itself, without calling the module.
    blob_resources: bool = False

    def read_module(self) -> bytes:
        """The module's bytes, after checking them against the pinned hash."""
        try:
            data = self.module_path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"tenant {self.name!r}: cannot read module {self.module_path}: {exc.strerror}"
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256:
            raise ConfigError(
                f"tenant {self.name!r}: module {self.module_path.name} has sha256 {actual}, "
                f"but tenant.toml pins {self.sha256}; rebuild it or update the pin after "
                "vetting the new module"
            )
        return data


def load_manifest(path: Path) -> TenantManifest:
    """Parse and check one tenant.toml; raise ConfigError naming the file and the problem."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        # A wasm module passed where a tenant.toml belongs is the usual cause.
        raise ConfigError(
            f"{path}: not a tenant.toml (the file is not UTF-8 text); `smcp-box vet` takes a "
            "tenant folder, its tenant.toml or a .wasm module"
        ) from None
    try:
        return _manifest_from_mapping(raw, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


def _manifest_from_mapping(raw: dict[str, Any], path: Path) -> TenantManifest:
    unknown = sorted(set(raw) - _TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}")
    name = _required_str(raw, "name")
    if not TENANT_NAME_PATTERN.match(name):
        raise ConfigError(
            f"tenant name {name!r} must be 1-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    sha256 = _required_str(raw, "sha256").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ConfigError("sha256 must be the 64-hex-digit SHA-256 of the module")
    auth = raw.get("auth", "api_key")
    if auth not in AUTH_MODES:
        raise ConfigError(
            f"auth must be 'api_key', 'oauth', 'both' or 'none', not {auth!r} (docs/oauth.md)"
        )
    limits = raw.get("limits", {})
    if not isinstance(limits, dict):
        raise ConfigError("[limits] must be a table")
    try:
        limits = check_limits(limits)
    except ConfigError as exc:
        raise ConfigError(f"[limits] {exc.message}") from None
    config = raw.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(v, str) for v in config.values()):
        raise ConfigError("[config] must be a table of string values")
    module = Path(_required_str(raw, "module"))
    if module.is_absolute() or ".." in module.parts:
        raise ConfigError("module must be a path inside the tenant's folder")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError("description must be a string")
    receipts = raw.get("receipts", False)
    if not isinstance(receipts, bool):
        raise ConfigError(f"receipts must be true or false, not {receipts!r}")
    tools_sha256 = raw.get("tools_sha256")
    if tools_sha256 is not None and (
        not isinstance(tools_sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", tools_sha256)
    ):
        raise ConfigError("tools_sha256 must be the 64-hex-digit fingerprint `smcp-box vet` prints")
    hosts = _hosts(raw.get("hosts", []))
    kind = _kind(raw.get("kind", "core"))
    quotas = raw.get("quotas", {})
    if not isinstance(quotas, dict):
        raise ConfigError("[quotas] must be a table")
    try:
        quotas = {name: check_quota(name, value) for name, value in quotas.items()}
    except ConfigError as exc:
        raise ConfigError(f"[quotas] {exc.message}") from None
    networks = parse_networks(raw.get("allowed_networks", []))
    require_signature, publishers = _vetting(raw.get("vetting", {}))
    on_changed, baseline = _vetting_modes(raw.get("vetting", {}))
    secrets = _secrets(raw.get("secrets", []))
    task_timeouts = parse_tool_tables(raw.get("tools", {}))
    blob_resources = _blobs(raw.get("blobs", {}))
    return TenantManifest(
        name=name,
        description=description,
        module_path=path.parent / module,
        sha256=sha256,
        auth=auth,
        limit_overrides=dict(limits),
        config=dict(config),
        manifest_path=path,
        receipts=receipts,
        tools_sha256=tools_sha256,
        hosts=hosts,
        kind=kind,
        quota_overrides=quotas,
        allowed_networks=networks,
        require_signature=require_signature,
        publishers=publishers,
        secrets=secrets,
        on_changed_definitions=on_changed,
        baseline=baseline,
        task_timeouts=task_timeouts,
        blob_resources=blob_resources,
    )


def _blobs(table: object) -> bool:
    """tenant.toml ``[blobs]``: ``resources = true`` serves the blobs as MCP resources."""
    if not isinstance(table, dict) or set(table) - {"resources"}:
        raise ConfigError("[blobs] must be a table with at most: resources = true or false")
    resources = table.get("resources", False)
    if not isinstance(resources, bool):
        raise ConfigError(f"[blobs] resources must be true or false, not {resources!r}")
    return resources


def _vetting(table: object) -> tuple[bool, tuple[str, ...] | None]:
    if not isinstance(table, dict):
        raise ConfigError("[vetting] must be a table")
    unknown = sorted(set(table) - _VETTING_KEYS)
    if unknown:
        raise ConfigError(
            f"[vetting] has unknown key(s) {', '.join(unknown)} (known: "
            f"{', '.join(sorted(_VETTING_KEYS))})"
        )
    required = table.get("require_signature", False)
    if not isinstance(required, bool):
        raise ConfigError(f"[vetting] require_signature must be true or false, not {required!r}")
    publishers = table.get("publishers")
    if publishers is None:
        return required, None
    if not isinstance(publishers, list) or not all(
        isinstance(key, str) and re.fullmatch(PUBLISHER_KEY_PATTERN, key) for key in publishers
    ):
        raise ConfigError(
            "[vetting] publishers must be a list of publisher keys as `smcp-box publisher "
            'keygen` prints them, e.g. ["ed25519:<base64>"]'
        )
    return required, tuple(publishers)


def _vetting_modes(table: dict[str, Any]) -> tuple[str | None, str | None]:
    """``on_changed_definitions`` and ``baseline`` of a (checked) ``[vetting]`` table."""
    found: list[str | None] = []
    for key, modes in (
        ("on_changed_definitions", CHANGED_DEFINITIONS_MODES),
        ("baseline", BASELINE_MODES),
    ):
        value = table.get(key)
        if value is not None and value not in modes:
            raise ConfigError(
                f"[vetting] {key} must be " + " or ".join(repr(m) for m in modes) + f", not "
                f"{value!r}"
            )
        found.append(value)
    return found[0], found[1]


def _secrets(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ConfigError('secrets must be a list of secret names, e.g. secrets = ["API_TOKEN"]')
    for name in value:
        if not SECRET_NAME_PATTERN.match(name):
            raise ConfigError(
                f"secrets entry {name!r} is not a secret name: 1-128 characters of letters, "
                "digits, '_', '.' and '-', starting with a letter or '_'"
            )
    return tuple(dict.fromkeys(value))


#: Kinds this build can run; the others are refused by name when a tenant.toml asks for them.
RUNNABLE_KINDS: frozenset[TenantKind] = frozenset({"core", "component", "stdio"})


def _kind(kind: object) -> TenantKind:
    for known in TENANT_KINDS:
        if kind == known:
            if known not in RUNNABLE_KINDS:
                raise ConfigError(f"kind {known!r} is not supported by this box yet")
            return known
    raise ConfigError(f"kind must be one of {', '.join(map(repr, TENANT_KINDS))}, not {kind!r}")


def check_host_name(host: object) -> str:
    """``host`` if it is a lowercase DNS name a tenant may own; ConfigError saying why not.

    No ports (one name serves on whatever port the box listens on), no wildcards (a request's
    Host names exactly one tenant), no IP addresses (an address is the box's, not a tenant's).
    """
    if not isinstance(host, str) or not host:
        raise ConfigError(f"hosts entries must be non-empty strings, not {host!r}")
    why = None
    if host != host.lower():
        why = "write it in lowercase"
    elif ":" in host or "/" in host:
        why = "give the bare name, without scheme, port or path"
    elif "*" in host:
        why = "wildcards are not supported; list each name"
    elif len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        why = "use dot-separated labels of a-z, 0-9 and inner '-' (at most 253 characters)"
    elif host.replace(".", "").isdigit():
        why = "an IP address is the box's; give a DNS name"
    elif host in _RESERVED_HOSTS or host.endswith(".localhost"):
        why = "localhost names always reach the whole box; give another name"
    if why is not None:
        raise ConfigError(f"hosts entry {host!r} is not a host name a tenant can use: {why}")
    return host


def _hosts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError('hosts must be a list of host names, e.g. hosts = ["notes.box.lan"]')
    hosts = [check_host_name(host) for host in value]
    repeated = sorted({host for host in hosts if hosts.count(host) > 1})
    if repeated:
        raise ConfigError(f"hosts lists {', '.join(repeated)} more than once")
    return tuple(hosts)


def _required_str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key!r} is required and must be a non-empty string")
    return value


def discover_manifests(tenants_dir: Path) -> list[Path]:
    """Every ``*/tenant.toml`` directly below ``tenants_dir``, in name order."""
    if not tenants_dir.is_dir():
        raise ConfigError(f"tenants folder {tenants_dir} does not exist")
    return sorted(tenants_dir.glob(f"*/{MANIFEST_NAME}"))
