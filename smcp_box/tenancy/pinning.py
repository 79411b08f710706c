"""Pinning a built tenant module in its tenant.toml: the ``sha256`` and ``tools_sha256`` lines.

One implementation for ``smcp-box build`` and the repository's ``tenants/build.py``. The lines
may hold any quoted value before (a placeholder such as ``"<hex sha256 of the module file>"``);
a missing line is added (``sha256`` after ``module``, ``tools_sha256`` after ``sha256``), and a
comment after the value is kept. The tools pin is the fingerprint ``smcp-box vet`` computes: the
module's tools/list, run in the box's sandbox with the tenant's ``[config]`` and ``[limits]``.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import tomllib
from pathlib import Path

from smcp_box.config import SandboxSettings, check_limits
from smcp_box.errors import ConfigError
from smcp_box.sandbox import Sandbox
from smcp_box.seams import TENANT_KINDS
from smcp_box.tenancy.manifest import MANIFEST_NAME, TenantManifest, resolve_limits
from smcp_box.tenancy.vet import list_tools
from smcp_box.vetting.pins import tools_fingerprint as fingerprint

SHA_LINE = re.compile(r'^sha256[ \t]*=[ \t]*"([^"\n]*)"[ \t]*(#.*)?$', re.MULTILINE)
TOOLS_LINE = re.compile(r'^tools_sha256[ \t]*=[ \t]*"([^"\n]*)"[ \t]*(#.*)?$', re.MULTILINE)
MODULE_LINE = re.compile(r'^module\s*=\s*"([^"]+)"', re.MULTILINE)


def module_path(tenant: Path) -> Path:
    """The module file tenant.toml names (relative to the tenant directory)."""
    toml = tenant / MANIFEST_NAME
    match = MODULE_LINE.search(toml.read_text(encoding="utf-8"))
    if match is None:
        raise ConfigError(f'{toml}: no module = "..." line')
    return tenant / match.group(1)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tools_fingerprint(tenant: Path, module_file: Path, cache_dir: Path | None = None) -> str:
    """The tools_sha256 pin of ``module_file`` as the module of the tenant folder ``tenant``
    (its tenant.toml's sha256 and tools_sha256 lines are not read: placeholders are fine).
    ``cache_dir`` keeps compiled code between runs (a component takes seconds to compile)."""
    raw = tomllib.loads((tenant / MANIFEST_NAME).read_text(encoding="utf-8"))
    data = module_file.read_bytes()
    kind = raw.get("kind", "core")
    if kind not in TENANT_KINDS:
        raise ConfigError(f"{tenant / MANIFEST_NAME}: unknown kind {kind!r}")
    manifest = TenantManifest(
        name=str(raw["name"]),
        description=str(raw.get("description", "")),
        module_path=module_file,
        sha256=hashlib.sha256(data).hexdigest(),
        auth=raw.get("auth", "api_key"),
        limit_overrides=dict(check_limits(raw.get("limits", {}))),
        config={str(k): str(v) for k, v in raw.get("config", {}).items()},
        kind=kind,
    )
    defaults = SandboxSettings()
    limits = resolve_limits(defaults, manifest.limit_overrides)
    with (
        tempfile.TemporaryDirectory(prefix="smcp-vet-cache-") as scratch,
        Sandbox.from_settings(cache_dir or Path(scratch), defaults) as sandbox,
    ):
        module = sandbox.load(manifest.name, data, limits, kind=manifest.kind)
        return fingerprint(list_tools(sandbox, module, manifest))


def _rewrite(text: str, line: re.Pattern[str], key: str, value: str, after: re.Pattern[str]) -> str:
    """text with key's line set to value (its comment kept), added after `after`'s line."""
    if line.search(text) is not None:
        return line.sub(
            lambda m: f'{key} = "{value}"' + (f"  {m.group(2)}" if m.group(2) else ""),
            text,
            count=1,
        )
    anchor = after.search(text)
    if anchor is None:
        raise ConfigError(f'tenant.toml has no {key} = "..." line and no line to add it after')
    end = text.find("\n", anchor.end())
    end = len(text) if end < 0 else end
    return text[:end] + f'\n{key} = "{value}"' + text[end:]


def _write_if_changed(toml: Path, new: str) -> bool:
    changed = new != toml.read_text(encoding="utf-8")
    if changed:
        toml.write_text(new, encoding="utf-8")
    return changed


def pin(tenant: Path, digest: str) -> bool:
    """Set the sha256 line of the tenant's tenant.toml; True if it changed."""
    toml = tenant / MANIFEST_NAME
    text = toml.read_text(encoding="utf-8")
    return _write_if_changed(toml, _rewrite(text, SHA_LINE, "sha256", digest, MODULE_LINE))


def pin_tools(tenant: Path, tools_sha256: str) -> bool:
    """Set the tools_sha256 line of the tenant's tenant.toml; True if it changed."""
    toml = tenant / MANIFEST_NAME
    text = toml.read_text(encoding="utf-8")
    return _write_if_changed(
        toml, _rewrite(text, TOOLS_LINE, "tools_sha256", tools_sha256, SHA_LINE)
    )


def pinned(tenant: Path, line: re.Pattern[str]) -> str | None:
    """The value of ``line`` (SHA_LINE or TOOLS_LINE) in tenant.toml, None without one."""
    match = line.search((tenant / MANIFEST_NAME).read_text(encoding="utf-8"))
    return None if match is None else match.group(1)
