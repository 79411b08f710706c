"""Publisher signatures for tenants: what of a tenant.toml is signed, signing a tenant folder,
and the check the loader and ``smcp-box vet`` make (:mod:`smcp_box.vetting.signatures`)."""

from __future__ import annotations

import logging
from pathlib import Path

from smcp_box.config import VettingSettings
from smcp_box.tenancy.manifest import MANIFEST_NAME, TenantManifest, load_manifest
from smcp_box.vetting.signatures import (
    SignatureCheck,
    SignedFields,
    check_signature,
    effective_policy,
    load_private_key,
    public_key_text,
    sign,
)

logger = logging.getLogger("smcp_box.vetting")


def signed_fields(manifest: TenantManifest) -> SignedFields:
    """The security-relevant fields of the tenant.toml itself (an admin's limit overrides are
    the box's own business and are not part of what the publisher signed)."""
    return SignedFields(
        name=manifest.name,
        kind=manifest.kind,
        module_sha256=manifest.sha256,
        tools_sha256=manifest.tools_sha256,
        limits=manifest.limit_overrides,
        auth=manifest.auth,
    )


def check_manifest_signature(manifest: TenantManifest, vetting: VettingSettings) -> SignatureCheck:
    """The tenant's signature verdict under the box's ``[vetting]`` tightened by its own;
    ModuleRejected when refused. Call it with the manifest as read from tenant.toml."""
    policy = effective_policy(
        vetting.trusted_publishers,
        vetting.require_signature,
        manifest.publishers,
        manifest.require_signature,
    )
    return check_signature(manifest.name, manifest.module_path, signed_fields(manifest), policy)


def log_signature(
    manifest: TenantManifest, check: SignatureCheck, vetting: VettingSettings
) -> None:
    """Log the verdict on a newly loaded module. An unsigned one is a warning on a box that
    trusts publishers (signatures are in use, so a missing one stands out), else only info."""
    if check.warning is not None:
        level = logging.WARNING if vetting.trusted_publishers else logging.INFO
        logger.log(level, "%s", check.warning)
    else:
        logger.info("tenant %s: module signed by %s", manifest.name, check.publisher)


def sign_tenant(tenant_dir: Path, key_path: Path) -> tuple[Path, str]:
    """Sign a tenant folder's module and tenant.toml; return the signature's path and the key.

    The module must match the tenant.toml's sha256: a publisher signs what it has vetted.
    """
    manifest_path = tenant_dir / MANIFEST_NAME if tenant_dir.is_dir() else tenant_dir
    manifest = load_manifest(manifest_path)
    manifest.read_module()
    key = load_private_key(key_path)
    path = sign(signed_fields(manifest), key, manifest.module_path)
    return path, public_key_text(key.public_key())


__all__ = ["check_manifest_signature", "log_signature", "sign_tenant", "signed_fields"]
