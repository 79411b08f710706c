#!/usr/bin/env python3
"""Builds every tenant module from source and pins its sha256 and tools_sha256 in tenant.toml.

    python tenants/build.py              build all tenants, rewrite their sha256 and
                                         tools_sha256 lines
    python tenants/build.py notes        only the named tenants (a name with a "/" is a path
                                         to a tenant folder anywhere)
    python tenants/build.py --check      rebuild into a temporary directory and fail if a
                                         committed module or a pin differs

The sha256 and tools_sha256 lines may hold any quoted value (a placeholder such as
"<hex sha256 of the module file>" as docs/abi.md shows); a missing line is added. The tools pin
is the fingerprint `smcp-box vet` computes: the module's tools/list, run in the box's sandbox.

A tenant is a directory here with a tenant.toml and a build.sh that takes the output path as
its argument. Needs only the `ziglang` package (run as `python -m ziglang`) and a POSIX sh; the
build is offline and byte-for-byte reproducible, which is what makes the pinned hash
checkable.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TENANTS = Path(__file__).resolve().parent
SHA_LINE = re.compile(r'^sha256[ \t]*=[ \t]*"([^"\n]*)"[ \t]*(#.*)?$', re.MULTILINE)
TOOLS_LINE = re.compile(r'^tools_sha256[ \t]*=[ \t]*"([^"\n]*)"[ \t]*(#.*)?$', re.MULTILINE)
MODULE_LINE = re.compile(r'^module\s*=\s*"([^"]+)"', re.MULTILINE)


def tenant_dirs(names: list[str] | None = None) -> list[Path]:
    """The tenant directories, all or the named ones, sorted by name."""
    found = sorted(p.parent for p in TENANTS.glob("*/tenant.toml"))
    if not names:
        return found
    by_name = {d.name: d for d in found}
    paths = [Path(n) for n in names if "/" in n]
    missing = [n for n in names if "/" not in n and n not in by_name]
    missing += [str(p) for p in paths if not (p / "tenant.toml").is_file()]
    if missing:
        raise SystemExit(f"no such tenant: {', '.join(missing)} (have: {', '.join(by_name)})")
    return [Path(n).resolve() if "/" in n else by_name[n] for n in names]


def module_path(tenant: Path) -> Path:
    """The module file tenant.toml names (relative to the tenant directory)."""
    match = MODULE_LINE.search((tenant / "tenant.toml").read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f'{tenant / "tenant.toml"}: no module = "..." line')
    return tenant / match.group(1)


def pinned_sha256(tenant: Path) -> str:
    match = SHA_LINE.search((tenant / "tenant.toml").read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f'{tenant / "tenant.toml"}: no sha256 = "..." line')
    return match.group(1)


def pinned_tools_sha256(tenant: Path) -> str | None:
    """The tools_sha256 value in tenant.toml, or None when there is no such line."""
    match = TOOLS_LINE.search((tenant / "tenant.toml").read_text(encoding="utf-8"))
    return None if match is None else match.group(1)


def build(tenant: Path, out: Path) -> None:
    """Runs the tenant's build.sh with this interpreter's ziglang, writing the module to out."""
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(  # noqa: S603 - our own build script, no shell interpolation
        ["sh", str(tenant / "build.sh"), str(out)],  # noqa: S607 - sh from PATH, as a user types
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not out.is_file():
        raise SystemExit(f"building {tenant.name} failed:\n{proc.stderr}")
    if proc.stderr.strip():
        print(proc.stderr, file=sys.stderr, end="")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tools_fingerprint(tenant: Path, module_file: Path) -> str:
    """The tools_sha256 pin of the module: what `smcp-box vet` prints for it."""
    # Imported here: building needs only ziglang; pinning the tools needs the installed box.
    from smcp_box.tenancy.pinning import tools_fingerprint as fingerprint

    return fingerprint(tenant, module_file)


def pin(tenant: Path, digest: str) -> bool:
    """Sets the sha256 line of tenant.toml; True if it changed."""
    from smcp_box.tenancy.pinning import pin as pin_sha256

    return pin_sha256(tenant, digest)


def pin_tools(tenant: Path, fingerprint: str) -> bool:
    """Sets the tools_sha256 line of tenant.toml; True if it changed."""
    from smcp_box.tenancy.pinning import pin_tools as pin_fingerprint

    return pin_fingerprint(tenant, fingerprint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="tenants to build (default: all)")
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="smcp-tenants-") as tmp:
        for tenant in tenant_dirs(args.names):
            target = module_path(tenant)
            out = Path(tmp) / target.name if args.check else target
            build(tenant, out)
            digest = sha256_file(out)
            tools = tools_fingerprint(tenant, out)
            if args.check:
                same_bytes = target.is_file() and target.read_bytes() == out.read_bytes()
                same_pin = pinned_sha256(tenant) == digest
                same_tools = pinned_tools_sha256(tenant) == tools
                if not (same_bytes and same_pin and same_tools):
                    failures += 1
                    print(
                        f"{tenant.name}: committed module, pinned sha256 or tools_sha256 is "
                        f"stale; run python tenants/build.py",
                        file=sys.stderr,
                    )
                    continue
                print(f"{tenant.name}: ok {digest} tools {tools}")
            else:
                changed = pin(tenant, digest)
                changed |= pin_tools(tenant, tools)
                size = out.stat().st_size
                note = " (re-pinned)" if changed else ""
                print(f"{tenant.name}: {size} bytes sha256 {digest} tools_sha256 {tools}{note}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
