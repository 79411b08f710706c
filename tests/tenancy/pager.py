"""A raw-ABI tenant module (``fixtures/pager.c``, no SDK) whose tools/list pages, built per test."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "pager.c"


def build_pager(folder: Path, *, pages: int, broken: int = 0, name: str = "pager") -> Path:
    """A tenant folder whose raw-ABI module lists ``pages`` pages of one tool (0: endless)."""
    folder.mkdir(parents=True)
    module = folder / "pager.wasm"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            "--target=wasm32-freestanding",
            "-mcpu=lime1",
            "-std=c11",
            "-O2",
            "-g0",
            "-ffreestanding",
            "-nostdlib",
            "-Wl,--no-entry",
            "-Wl,--strip-all",
            f"-DPAGES={pages}",
            f"-DBROKEN={broken}",
            "-o",
            str(module),
            str(FIXTURE),
        ],
        check=True,
        capture_output=True,
    )
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    manifest = folder / "tenant.toml"
    manifest.write_text(f'name = "{name}"\nmodule = "pager.wasm"\nsha256 = "{digest}"\n')
    return manifest
