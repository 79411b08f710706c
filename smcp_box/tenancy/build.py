"""``smcp-box build DIR``: build a tenant folder's module from source and pin it in tenant.toml.

The language is recognised by the folder's build file (:data:`BUILDERS`); each builder writes
the module tenant.toml names. Then the module's sha256 and its tool definitions' fingerprint
(what ``smcp-box vet`` computes, by running the module in the sandbox) are written to the
``sha256`` and ``tools_sha256`` lines, so the box serves exactly what was built.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from smcp_box.config import SandboxSettings
from smcp_box.errors import ConfigError
from smcp_box.sandbox import Sandbox
from smcp_box.tenancy.gobuild import build_go
from smcp_box.tenancy.manifest import MANIFEST_NAME, load_manifest, resolve_limits
from smcp_box.tenancy.vet import list_tools
from smcp_box.vetting.pins import tools_fingerprint

#: Build file in the tenant folder -> the builder for its language (returns the module path).
BUILDERS: dict[str, Callable[[Path], Path]] = {"go.mod": build_go}


def build_module(tenant_dir: Path) -> Path:
    for marker, builder in BUILDERS.items():
        if (tenant_dir / marker).is_file():
            return builder(tenant_dir)
    raise ConfigError(
        f"{tenant_dir}: nothing to build; smcp-box build knows folders with "
        + ", ".join(BUILDERS)
        + " (C tenants: see tenants/build.py)"
    )


def set_pin(text: str, key: str, value: str) -> str:
    """``text`` (a tenant.toml) with ``key = "value"``, replacing the line or adding it after
    the ``module`` line."""
    line = f'{key} = "{value}"'
    pattern = re.compile(rf"^{key}[ \t]*=.*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(line, text, count=1)
    module = re.search(r"^module[ \t]*=.*$", text, re.MULTILINE)
    if module is None:
        raise ConfigError(f'{MANIFEST_NAME} has no module = "..." line')
    return text[: module.end()] + "\n" + line + text[module.end() :]


def build_and_pin(tenant_dir: Path, cache_dir: Path, defaults: SandboxSettings) -> tuple[str, str]:
    """Build, then pin; returns (sha256, tools_sha256)."""
    manifest_path = tenant_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ConfigError(f"{tenant_dir}: no {MANIFEST_NAME}")
    module = build_module(tenant_dir)
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    text = set_pin(manifest_path.read_text(encoding="utf-8"), "sha256", digest)
    manifest_path.write_text(text, encoding="utf-8")
    manifest = load_manifest(manifest_path)
    limits = resolve_limits(defaults, manifest.limit_overrides)
    with Sandbox(cache_dir) as sandbox:
        loaded = sandbox.load(manifest.name, manifest.read_module(), limits, manifest.kind)
        fingerprint = tools_fingerprint(list_tools(sandbox, loaded, manifest))
    manifest_path.write_text(set_pin(text, "tools_sha256", fingerprint), encoding="utf-8")
    return digest, fingerprint


def run_build_command(tenant_dir: Path, cache_dir: Path, defaults: SandboxSettings) -> int:
    digest, fingerprint = build_and_pin(tenant_dir, cache_dir, defaults)
    print(f"{tenant_dir}: sha256 {digest}\n{tenant_dir}: tools_sha256 {fingerprint}")
    return 0
