"""Python component tenants built from source once per test session.

Building one takes componentize-py ~10-30 s and compiling the component with Cranelift another
~25 s, so both happen once: the built folders and the compiled-code cache are shared by every
box the component tests start (the boxes' cache folder is the build's, so they load compiled
code in ~0.2 s instead of compiling again).

The JavaScript components (jsnotes, jsfaults) are a set of their own with its own box: building
them needs node and npm (their tests skip without), and componentize-js takes ~5-12 s each plus
~10-30 s of Cranelift, with a first ``npm ci`` of the toolchain (~10 s) into the build's cache.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from smcp_box.ops.authoring import build_tenant
from tests.e2e.boxproc import REPO

PYTASKS = REPO / "tenants" / "python" / "pytasks"
PYFAULTS = Path(__file__).parent / "components" / "pyfaults"
#: Extra tenants made from the pyfaults build with other limits: name -> [limits] lines.
PYFAULT_VARIANTS = {
    "pyfaults-fuel": "memory_mib = 48\nfuel = 300000000\ntimeout_ms = 20000\n",
    # Room for the blob round trip of test_component_blobs.py on a loaded machine.
    "pyfaults-blobs": "memory_mib = 48\nfuel = 100000000000\ntimeout_ms = 30000\n",
}
JSNOTES = REPO / "tenants" / "js" / "jsnotes"
JSFAULTS = Path(__file__).parent / "components" / "jsfaults"
#: Extra tenants made from the jsfaults build with other limits, like PYFAULT_VARIANTS.
JSFAULT_VARIANTS = {
    "jsfaults-fuel": "memory_mib = 48\nfuel = 300000000\ntimeout_ms = 20000\n",
    "jsfaults-blobs": "memory_mib = 48\nfuel = 100000000000\ntimeout_ms = 30000\n",
}


@dataclass(frozen=True)
class BuiltComponents:
    #: A tenants folder holding the built component tenants (copy it before serving).
    tenants: Path
    #: The compiled-code cache the builds filled (SMCP_BOX_CACHE_DIR for boxes).
    cache: Path
    #: What each build reported (its size and seconds, the pins), for the record.
    build_reports: dict[str, str]


def build_components(
    root: Path,
    sources: tuple[Path, ...] = (PYTASKS, PYFAULTS),
    variants: dict[str, str] = PYFAULT_VARIANTS,
) -> BuiltComponents:
    """Build ``sources``; each of ``variants`` is a copy of the last source's build (the fault
    fixture) with its own name and [limits]."""
    tenants, cache = root / "tenants", root / "cache"
    tenants.mkdir(parents=True)
    reports: dict[str, str] = {}
    for source in sources:
        folder = tenants / source.name
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.wasm", "__pycache__"))
        reports[source.name] = build_tenant(folder, cache_dir=cache)
    faults = sources[-1].name
    manifest = (tenants / faults / "tenant.toml").read_text()
    head = manifest.split("[limits]")[0]
    for name, limits in variants.items():
        folder = tenants / name
        shutil.copytree(tenants / faults, folder)
        text = head.replace(f'name = "{faults}"', f'name = "{name}"') + f"[limits]\n{limits}"
        (folder / "tenant.toml").write_text(text)
    return BuiltComponents(tenants=tenants, cache=cache, build_reports=reports)


def copy_built(built: BuiltComponents, dest: Path) -> Path:
    shutil.copytree(built.tenants, dest, dirs_exist_ok=True)
    return dest
