"""Build the echo tenant from source and lay out tenant folders for the box under test.

``python -m bench.tenants.build`` compiles ``bench/tenants/echo/echo.c`` with the C SDK's
``sdk/c/cc.sh`` (the PyPI ``ziglang`` clang) and checks the result against the sha256 pinned in
``bench/tenants/echo/tenant.toml``; ``--update-pin`` rewrites the pin (after a deliberate change
to the source, the SDK or the zig version). The build is reproducible, so the pin holds on any
machine with the same zig.

Cold-start and density need many tenants with *distinct* modules (distinct hashes, so the box
cannot share one compiled module between them): :func:`variant` patches the marker digits in the
module's title string, which changes the bytes and hash but not the code.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.procs import REPO

ECHO_DIR = Path(__file__).resolve().parent / "echo"
ECHO_SOURCE = ECHO_DIR / "echo.c"
ECHO_MANIFEST = ECHO_DIR / "tenant.toml"
ECHO_WASM = ECHO_DIR / "echo.wasm"
CC = REPO / "sdk" / "c" / "cc.sh"
MARKER = b"bench echo 000000"
_PIN = re.compile(r'^sha256 = "([0-9a-f]{64})"$', re.MULTILINE)


class PinMismatch(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned_sha256() -> str:
    match = _PIN.search(ECHO_MANIFEST.read_text())
    if not match:
        raise RuntimeError(f"{ECHO_MANIFEST} has no sha256 pin")
    return match.group(1)


def compile_echo(out: Path = ECHO_WASM) -> bytes:
    if not CC.exists():
        raise RuntimeError(f"the C SDK's build script {CC} is missing")
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["sh", str(CC), str(out), str(ECHO_SOURCE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building {ECHO_SOURCE.name} failed:\n{done.stdout}{done.stderr}")
    return out.read_bytes()


def build_echo(update_pin: bool = False, strict: bool = False) -> bytes:
    """The echo module's bytes, built from source and checked against the pin.

    A stale pin is a warning, not an error, unless ``strict``: the SDK evolves, and the box
    under test is given its own copy of the tenant pinned to the bytes actually built. The
    suite records both hashes in its results so a table names the module it measured.
    """
    wasm = compile_echo()
    digest = sha256(wasm)
    if update_pin:
        text = _PIN.sub(f'sha256 = "{digest}"', ECHO_MANIFEST.read_text())
        ECHO_MANIFEST.write_text(text)
    elif digest != pinned_sha256():
        message = (
            f"{ECHO_WASM.name} built with sha256 {digest}, but {ECHO_MANIFEST.name} pins "
            f"{pinned_sha256()}: the source, the C SDK or zig changed; if on purpose, run "
            "`python -m bench.tenants.build --update-pin`"
        )
        if strict:
            raise PinMismatch(message)
        print(f"warning: {message}", file=sys.stderr)
    if MARKER not in wasm:
        raise RuntimeError(f"{ECHO_WASM.name} lacks the marker {MARKER!r} that variants patch")
    return wasm


def variant(wasm: bytes, index: int) -> bytes:
    """A copy of ``wasm`` whose title marker carries ``index``: same code, different hash."""
    tail = f"{index:06d}".encode()
    return wasm.replace(MARKER, MARKER[: -len(tail)] + tail, 1)


def write_tenant(
    tenants_dir: Path,
    name: str,
    wasm: bytes,
    *,
    auth: str = "api_key",
    limits: dict[str, int] | None = None,
) -> Path:
    """A tenant folder ``tenants_dir/name`` serving ``wasm``, with its hash pinned."""
    folder = tenants_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "echo.wasm").write_bytes(wasm)
    lines = [
        f'name = "{name}"',
        'description = "Benchmark tenant: one echo tool."',
        'module = "echo.wasm"',
        f'sha256 = "{sha256(wasm)}"',
        f'auth = "{auth}"',
    ]
    if limits:
        lines.append("[limits]")
        lines.extend(f"{key} = {value}" for key, value in limits.items())
    (folder / "tenant.toml").write_text("\n".join(lines) + "\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update-pin",
        action="store_true",
        help="rewrite the sha256 pin in tenant.toml to the built module's",
    )
    args = parser.parse_args()
    wasm = build_echo(update_pin=args.update_pin, strict=not args.update_pin)
    print(f"{ECHO_WASM}: {len(wasm)} bytes, sha256 {sha256(wasm)}")


if __name__ == "__main__":
    main()
