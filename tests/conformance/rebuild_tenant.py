#!/usr/bin/env python3
"""Rebuilds the conformance tenant and pins its sha256 and tools_sha256 (--check: verifies).

    python tests/conformance/rebuild_tenant.py           build, write the module, re-pin
    python tests/conformance/rebuild_tenant.py --check   rebuild into a temp dir, compare

It reuses tenants/build.py (same build.sh convention, same pin format); that script only walks
tenants/, and this tenant lives under tests/ because it is a test fixture.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
TENANT = REPO / "tests" / "tenants" / "conformance"


def tenant_builder() -> ModuleType:
    """tenants/build.py as a module (it is a script, not a package member)."""
    spec = importlib.util.spec_from_file_location("tenant_build", REPO / "tenants" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    builder = tenant_builder()
    target = builder.module_path(TENANT)
    if not args.check:
        builder.build(TENANT, target)
        digest = builder.sha256_file(target)
        changed = builder.pin(TENANT, digest)
        # The tool definitions are pinned too (vetting): a changed tool list needs a new pin.
        changed |= builder.pin_tools(TENANT, builder.tools_fingerprint(TENANT, target))
        print(
            f"conformance: {target.stat().st_size} bytes sha256 {digest}"
            + (" (re-pinned)" if changed else "")
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="smcp-conformance-") as tmp:
        out = Path(tmp) / target.name
        builder.build(TENANT, out)
        digest = builder.sha256_file(out)
        fresh = target.is_file() and target.read_bytes() == out.read_bytes()
        same_tools = builder.pinned_tools_sha256(TENANT) == builder.tools_fingerprint(TENANT, out)
        if not (fresh and builder.pinned_sha256(TENANT) == digest and same_tools):
            print(
                "conformance: committed module, pinned sha256 or tools_sha256 is stale; run "
                "python tests/conformance/rebuild_tenant.py",
                file=sys.stderr,
            )
            return 1
        print(f"conformance: ok {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
