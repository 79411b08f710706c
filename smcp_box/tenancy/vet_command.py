"""``smcp-box vet PATH…``: vet tenant folders, tenant.toml files and bare wasm modules offline.

A tenant folder (or its tenant.toml) is vetted as the box vets it at load: pinned hash, ABI,
tool definitions against their pin, description scan. A bare module (a file that starts with
the wasm magic, or any ``.wasm`` file) needs no manifest: the report shows what it imports and
exports, whether that follows smcp-v1, and, if it does, the tools it lists (asked with no
config) with the scan's findings and the pin a tenant.toml would carry.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from smcp_box.config import SandboxSettings, VettingSettings
from smcp_box.errors import BoxError, ConfigError
from smcp_box.sandbox import Sandbox
from smcp_box.sandbox.abi import WASM_MAGIC
from smcp_box.seams import JsonObject
from smcp_box.tenancy.manifest import MANIFEST_NAME, resolve_limits
from smcp_box.tenancy.vet import describe_for_vetting, vet_folder
from smcp_box.vetting import VetReport, format_report, vet_tools
from smcp_box.vetting.interface import ModuleInterface, inspect_module


def is_module_file(path: Path) -> bool:
    """Whether ``path`` is to be vetted as a bare module rather than as a tenant.toml."""
    if path.suffix == ".wasm":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4) == WASM_MAGIC
    except OSError:
        return False


@dataclass
class ModuleVet:
    """The report on one bare module."""

    path: Path
    sha256: str
    interface: ModuleInterface
    #: The tool report; None when the module could not be asked (see ``error``).
    tools: VetReport | None = None
    #: Why the module's tools could not be listed (it does not conform, or it answered badly).
    error: str | None = None
    server_info: JsonObject = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.interface.conforms
            and self.error is None
            and self.tools is not None
            and (not self.tools.blocking)
        )


def _label(path: Path) -> str:
    """A tenant-like name for the module while it is in the sandbox and in messages."""
    label = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return label[:63] or "module"


def vet_module_file(path: Path, cache_dir: Path, defaults: SandboxSettings) -> ModuleVet:
    """Vet one wasm file without a manifest: interface, ABI, tools and scan."""
    try:
        wasm = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    label = _label(path)
    with Sandbox.from_settings(cache_dir, defaults) as sandbox:
        report = ModuleVet(
            path=path,
            sha256=hashlib.sha256(wasm).hexdigest(),
            interface=inspect_module(sandbox.engine, label, wasm),
        )
        if not report.interface.conforms:
            report.error = "it does not follow the smcp-v1 ABI, so it was not run"
            return report
        try:
            module = sandbox.load(label, wasm, resolve_limits(defaults))
            description = describe_for_vetting(sandbox, module, None)
        except BoxError as exc:
            report.error = f"listing its tools failed: {exc.message}"
            return report
    report.server_info = dict(description.server_info)
    report.tools = vet_tools(label, list(description.tools or ()), None)
    return report


def format_module_vet(report: ModuleVet) -> str:
    """Plain text: verdict, hash, interface, ABI verdict, then the tool report."""
    lines = [
        f"module {report.path}: {'OK' if report.ok else 'REJECTED'}",
        f"sha256 = {report.sha256}",
        f"imports ({len(report.interface.imports)}):",
        *(f"  {line}" for line in report.interface.imports),
        f"exports ({len(report.interface.exports)}):",
        *(f"  {line}" for line in report.interface.exports),
    ]
    if report.interface.conforms:
        lines.append("ABI smcp-v1: conforms")
    else:
        lines.append("ABI smcp-v1: DOES NOT CONFORM")
        lines.extend(f"  - {problem}" for problem in report.interface.abi_problems)
    if report.server_info:
        name, version = report.server_info.get("name"), report.server_info.get("version")
        lines.append(f"server: {name} {version}")
    if report.error is not None:
        lines.append(f"tools: not listed: {report.error}")
    text = "\n".join(lines) + "\n"
    if report.tools is not None:
        text += format_report(report.tools)
    return text


def module_vet_json(report: ModuleVet) -> JsonObject:
    return {
        "module": str(report.path),
        "ok": report.ok,
        "sha256": report.sha256,
        "imports": list(report.interface.imports),
        "exports": list(report.interface.exports),
        "abi_problems": list(report.interface.abi_problems),
        "server_info": report.server_info,
        "error": report.error,
        **(_tools_json(report.tools) if report.tools is not None else {}),
    }


def _tools_json(report: VetReport) -> JsonObject:
    return {
        "tenant": report.tenant,
        "pin_status": report.pin_status,
        "tools": list(report.tool_names),
        "tools_sha256": report.fingerprint,
        "publisher": report.publisher,
        "signature_warning": report.signature_warning,
        "required_secrets": list(report.required_secrets),
        "approvals_cover": {"tools": len(report.tool_names), **dict(report.others_covered)},
        "not_covered": list(report.not_covered),
        "findings": [f.to_json() for f in report.findings],
    }


def run_vet_command(
    paths: list[Path],
    cache_dir: Path,
    defaults: SandboxSettings,
    *,
    as_json: bool,
    vetting: VettingSettings | None = None,
) -> int:
    """Print each path's report; exit 1 if any would be refused, 0 otherwise."""
    refused = False
    reports: list[JsonObject] = []
    for path in paths:
        try:
            if not path.exists():
                raise ConfigError(
                    f"{path}: no such file or folder (give a tenant folder, its {MANIFEST_NAME} "
                    "or a .wasm module)"
                )
            if path.is_file() and is_module_file(path):
                module_report = vet_module_file(path, cache_dir, defaults)
                refused |= not module_report.ok
                reports.append(module_vet_json(module_report))
                if not as_json:
                    print(format_module_vet(module_report))
                continue
            report = vet_folder(path, cache_dir, defaults, vetting)
        except BoxError as exc:
            refused = True
            reports.append({"folder": str(path), "ok": False, "error": exc.message})
            if not as_json:
                print(f"{path}: REFUSED: {exc.message}")
            continue
        refused |= not report.ok
        reports.append({"folder": str(path), "ok": report.ok, **_tools_json(report)})
        if not as_json:
            print(format_report(report))
            print(f'pin line for {path_hint(path)}:  tools_sha256 = "{report.fingerprint}"\n')
    if as_json:
        print(json.dumps(reports, indent=2))
    return 1 if refused else 0


def path_hint(tenant_dir: Path) -> str:
    return str(tenant_dir / MANIFEST_NAME if tenant_dir.is_dir() else tenant_dir)


__all__ = ["ModuleVet", "format_module_vet", "is_module_file", "run_vet_command", "vet_module_file"]
