"""Vetting a loaded module before it is served: its tool definitions against the pin in its
tenant.toml, and their text against the description scan.

The tools are listed by :func:`smcp_box.tenancy.describe.describe_module` (the module's own
``initialize`` and ``tools/list``), run in the sandbox synchronously, with a host that offers
nothing with side effects: a tool list that needs kv or the client to be produced cannot be
pinned, so such a module fails vetting.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from smcp_box.config import SandboxSettings, VettingSettings
from smcp_box.errors import BoxError, ModuleRejected, StoreError
from smcp_box.protocol.jsonrpc import check_module_reply
from smcp_box.sandbox import Sandbox, TenantModule
from smcp_box.seams import JsonObject, ModuleDescription
from smcp_box.tenancy.describe import describe_module_sync
from smcp_box.tenancy.hostcalls import random_bytes
from smcp_box.tenancy.manifest import MANIFEST_NAME, TenantManifest, load_manifest, resolve_limits
from smcp_box.tenancy.signing import check_manifest_signature
from smcp_box.vetting.definitions import coverage
from smcp_box.vetting.report import VetReport, vet_tools

logger = logging.getLogger("smcp_box.vetting")


class _VettingHost:
    """The HostCalls of a vetting call: config and the clock, nothing that persists or waits."""

    def __init__(self, config: dict[str, str]) -> None:
        self._config = config

    def log(self, level: str, message: str) -> None:
        return None

    def config_get(self, key: str) -> str | None:
        return self._config.get(key)

    def _refuse(self) -> Any:
        raise StoreError("kv is not available while the box lists a module's tools for vetting")

    def kv_get(self, key: str) -> str | None:
        return self._refuse()  # type: ignore[no-any-return]

    def kv_set(self, key: str, value: str) -> None:
        self._refuse()

    def kv_delete(self, key: str) -> None:
        self._refuse()

    def kv_list(self, prefix: str) -> list[str]:
        return self._refuse()  # type: ignore[no-any-return]

    def kv_cas(self, key: str, expected: str | None, value: str) -> bool:
        return self._refuse()  # type: ignore[no-any-return]

    def kv_incr(self, key: str, delta: int) -> int:
        return self._refuse()  # type: ignore[no-any-return]

    def notify(self, message: JsonObject) -> None:
        return None

    def time_now_ms(self) -> int:
        return int(time.time() * 1000)

    def random_bytes(self, length: int) -> bytes:
        return random_bytes(length)


def describe_for_vetting(
    sandbox: Sandbox, module: TenantModule, manifest: TenantManifest | None
) -> ModuleDescription:
    """The module's description (:func:`describe_module`), from calls run in this thread.

    Without a manifest (a bare module being vetted) the module sees no config at all.
    """
    host = _VettingHost(manifest.config if manifest is not None else {})

    def call(message: JsonObject) -> JsonObject | None:
        outcome = sandbox.call_sync(module, json.dumps(message), host)
        return check_module_reply(outcome.parsed if outcome.reply else None, message["id"])

    described = describe_module_sync(call, tenant=module.tenant)
    if described.resources is None and isinstance(described.capabilities.get("resources"), dict):
        # resources/list failed, most likely on a refused kv call, which costs the instance
        # that made it: the pool is warmed again so that vetting leaves it as loading did.
        sandbox.top_up_sync(module)
    return described


def list_tools(
    sandbox: Sandbox, module: TenantModule, manifest: TenantManifest
) -> list[JsonObject]:
    """The module's complete tool list (empty when it declares no tools capability)."""
    return list(describe_for_vetting(sandbox, module, manifest).tools or ())


def vet_module(
    sandbox: Sandbox, module: TenantModule, manifest: TenantManifest
) -> ModuleDescription:
    """Raise ModuleRejected unless the module describes itself and its tools match their pin
    and pass the scan.

    Returns the module's description from the vetting calls, so that the tenant need not make
    the same initialize and tools/list calls again at its first request.
    """
    return vet_module_report(sandbox, module, manifest)[0]


def vet_module_report(
    sandbox: Sandbox, module: TenantModule, manifest: TenantManifest
) -> tuple[ModuleDescription, VetReport]:
    """:func:`vet_module`, also returning the report (findings and pin) of a module it passes."""
    description = describe_or_reject(sandbox, module, manifest)
    return description, check_description(manifest, description, manifest.tools_sha256)


def describe_or_reject(
    sandbox: Sandbox, module: TenantModule, manifest: TenantManifest
) -> ModuleDescription:
    """The module's description for vetting; a module that cannot give one is ModuleRejected."""
    try:
        return describe_for_vetting(sandbox, module, manifest)
    except ModuleRejected:
        raise
    except BoxError as exc:
        raise ModuleRejected(
            f"tenant {manifest.name!r}: vetting failed while listing tools: {exc.message}"
        ) from None


def check_description(
    manifest: TenantManifest,
    description: ModuleDescription,
    pinned: str | None,
    *,
    changed_ok: bool = False,
) -> VetReport:
    """Pin check and scan of a module's description; raises ModuleRejected for a blocking
    finding, and for definitions that differ from ``pinned`` unless ``changed_ok`` (the box
    serves the approved definitions instead: :mod:`smcp_box.tenancy.approvals`)."""
    report = vet_tools(manifest.name, list(description.tools or ()), pinned)
    covered, not_covered = coverage(description)
    report = replace(report, others_covered=covered, not_covered=not_covered)
    # A tenant without a pin is served (its text must still pass the scan) with a warning that
    # names the pin to add; a pin that no longer matches, or a blocking finding, is refused.
    if report.blocking or (report.pin_status == "mismatch" and not changed_ok):
        raise ModuleRejected(report.summary, data={"tenant": manifest.name})
    if report.pin_status == "unpinned":
        logger.warning(
            "tenant %s: its tool definitions are not pinned; after reviewing them (smcp-box vet "
            '%s) add tools_sha256 = "%s" to its tenant.toml',
            manifest.name,
            manifest.manifest_path.parent if manifest.manifest_path else "DIR",
            report.fingerprint,
        )
    for finding in report.warnings:
        logger.warning(
            "tenant %s: tool %s: %s (%s): %r",
            manifest.name,
            finding.tool,
            finding.rule,
            finding.field,
            finding.excerpt,
        )
    return report


def vet_folder(
    tenant_dir: Path,
    cache_dir: Path,
    defaults: SandboxSettings,
    vetting: VettingSettings | None = None,
) -> VetReport:
    """Vet one tenant folder offline (``smcp-box vet``): hash, signature, ABI, tools, pin and
    scan. A signature the box would refuse raises ModuleRejected with the reason."""
    path = tenant_dir / MANIFEST_NAME if tenant_dir.is_dir() else tenant_dir
    manifest = load_manifest(path)
    limits = resolve_limits(defaults, manifest.limit_overrides)
    wasm = manifest.read_module()
    signature = check_manifest_signature(manifest, vetting or VettingSettings())
    with Sandbox.from_settings(cache_dir, defaults) as sandbox:
        module = sandbox.load(manifest.name, wasm, limits, kind=manifest.kind)
        description = describe_for_vetting(sandbox, module, manifest)
    report = vet_tools(manifest.name, list(description.tools or ()), manifest.tools_sha256)
    covered, not_covered = coverage(description)
    return replace(
        report,
        others_covered=covered,
        not_covered=not_covered,
        publisher=signature.publisher,
        signature_warning=signature.warning,
        required_secrets=manifest.secrets,
    )
