"""The drift test tenant (fixtures/drift.c), built from source: version 1, and version 2 whose
tool definitions changed (a reworded "work", a new "extra"). Both keep "work(n)", whose fuel
grows with n."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from smcp_box.tenancy.pinning import pin, pin_tools, sha256_file, tools_fingerprint

REPO = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).parent / "fixtures" / "drift.c"


@dataclass(frozen=True)
class DriftModules:
    v1: Path
    v2: Path
    #: Version 1's tools; its prompt "hint" reworded and a prompt "leak" added.
    v3: Path


def build_drift(out_dir: Path) -> DriftModules:
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for version, drift in (("v1", "0"), ("v2", "1"), ("v3", "2")):
        module = out_dir / f"drift-{version}.wasm"
        subprocess.run(
            ["sh", str(REPO / "sdk/c/cc.sh"), str(module), str(SOURCE), f"-DDRIFT={drift}"],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHON": sys.executable},
        )
        built.append(module)
    return DriftModules(*built)


def write_tenant(
    tenants: Path,
    module: Path,
    *,
    name: str = "drift",
    vetting: str = "",
    pinned: bool = True,
    cache_dir: Path | None = None,
) -> Path:
    """A tenant folder serving ``module``; ``pinned``: its tools_sha256 is ``module``'s (a
    pre-approved tenant as shipped). ``vetting``: lines of its ``[vetting]`` table."""
    folder = tenants / name
    folder.mkdir(parents=True)
    shutil.copy(module, folder / "drift.wasm")
    text = (
        f'name = "{name}"\nmodule = "drift.wasm"\nsha256 = "{sha256_file(module)}"\n'
        'auth = "api_key"\n'
    )
    if vetting:
        text += f"[vetting]\n{vetting}\n"
    (folder / "tenant.toml").write_text(text)
    if pinned:
        # Added after the sha256 line: the pin is taken with the tenant.toml in place.
        pin_tools(folder, tools_fingerprint(folder, module, cache_dir))
    return folder


def update_module(folder: Path, module: Path) -> None:
    """Ship a new module in the tenant folder (its sha256 pin follows; tools_sha256 does not)."""
    shutil.copy(module, folder / "drift.wasm")
    pin(folder, sha256_file(module))
