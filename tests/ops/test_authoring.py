"""``smcp-box new`` and ``smcp-box build``: a tenant folder from the shipped template, built and
pinned so that ``smcp-box vet`` passes it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from smcp_box.errors import ConfigError
from smcp_box.ops.authoring import build_tenant, new_tenant
from smcp_box.ops.jsbuild import ensure_toolchain, find_node, toolchain_dir
from smcp_box_sdk import WIT_DIR

SDK_ROOT = WIT_DIR.parent


def test_new_makes_a_python_tenant_folder(tmp_path: Path) -> None:
    folder = new_tenant("hello-py", "python", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".gitignore",
        "README.md",
        "app.py",
        "tenant.toml",
    ]
    manifest = tomllib.loads((folder / "tenant.toml").read_text())
    assert manifest["name"] == "hello-py"
    assert manifest["kind"] == "component"
    assert manifest["module"] == "hello-py.wasm"
    assert 'App("hello-py"' in (folder / "app.py").read_text()
    assert "{{name}}" not in (folder / "README.md").read_text()


def test_new_makes_a_c_tenant_folder_that_builds_and_passes_vetting(tmp_path: Path) -> None:
    folder = new_tenant("hello-c", "c", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".gitignore",
        "README.md",
        "main.c",
        "tenant.toml",
    ]
    assert '.name = "hello-c"' in (folder / "main.c").read_text()

    report = build_tenant(folder, cache_dir=tmp_path / "cache")

    manifest = tomllib.loads((folder / "tenant.toml").read_text())
    assert manifest.get("kind", "core") == "core"
    assert manifest["sha256"] == hashlib.sha256((folder / "hello-c.wasm").read_bytes()).hexdigest()
    assert manifest["sha256"] in report
    assert manifest["tools_sha256"] in report


def test_a_c_build_error_quotes_the_compiler_and_keeps_the_last_good_module(
    tmp_path: Path,
) -> None:
    folder = new_tenant("broken", "c", tmp_path)
    build_tenant(folder, cache_dir=tmp_path / "cache")
    good = (folder / "broken.wasm").read_bytes()
    pins = (folder / "tenant.toml").read_text()
    (folder / "extra.c").write_text("int broken(void) { return undeclared_name; }\n")
    with pytest.raises(ConfigError, match=r"(?s)the C build \(cc\.sh\) failed.*undeclared_name"):
        build_tenant(folder, cache_dir=tmp_path / "cache")
    assert (folder / "broken.wasm").read_bytes() == good
    assert (folder / "tenant.toml").read_text() == pins
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [".gitignore"]


def test_a_copy_of_a_c_example_builds_outside_the_repository(tmp_path: Path) -> None:
    """The examples' build.sh fall back to the C SDK of the installed package when the
    repository's sdk/c is not beside them: a copy builds to the committed bytes."""
    repo = Path(__file__).resolve().parents[2]
    copy = tmp_path / "notes"
    shutil.copytree(repo / "tenants" / "notes", copy, ignore=shutil.ignore_patterns("*.wasm"))
    build_tenant(copy, cache_dir=tmp_path / "cache")
    assert (copy / "notes.wasm").read_bytes() == (repo / "tenants/notes/notes.wasm").read_bytes()


def test_new_makes_a_javascript_tenant_folder(tmp_path: Path) -> None:
    folder = new_tenant("hello-js", "js", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".gitignore",
        "README.md",
        "app.js",
        "tenant.toml",
    ]
    manifest = tomllib.loads((folder / "tenant.toml").read_text())
    assert (manifest["name"], manifest["kind"]) == ("hello-js", "component")
    assert manifest["module"] == "hello-js.wasm"
    app = (folder / "app.js").read_text()
    assert 'new App("hello-js"' in app
    assert 'from "smcp-box-sdk"' in app
    assert "export function handle(message)" in app
    assert "node_modules/" in (folder / ".gitignore").read_text()


def test_a_javascript_build_says_npm_and_node_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = new_tenant("no-node", "js", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"needs npm \(with Node\.js\) on PATH.*apt-get install"):
        build_tenant(folder, cache_dir=tmp_path / "cache")
    # Where the toolchain brought no Node of its own, the one on PATH must do.
    with pytest.raises(ConfigError, match=r"Node\.js 20 or newer.*no node is on PATH"):
        find_node(tmp_path / "toolchain")
    assert not (folder / "no-node.wasm").exists()


def fake_npm(folder: Path) -> Path:
    """An npm that records its calls, fails when NPM_FAIL is set and otherwise makes the
    node_modules a real ``npm ci`` would (the real one runs in tests/e2e/test_js_components.py;
    this one shows the install's failure and reuse paths without ~20 s of downloads)."""
    npm = folder / "npm"
    npm.write_text(
        '#!/bin/sh\necho "$PWD $*" >> "$NPM_LOG"\n'
        'if [ -n "$NPM_FAIL" ]; then echo "npm error: no network" >&2; exit 1; fi\n'
        "mkdir node_modules\n"
    )
    npm.chmod(0o755)
    return npm


def test_the_js_toolchain_installs_once_atomically_and_replaces_an_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npm, log, cache = fake_npm(tmp_path), tmp_path / "npm.log", tmp_path / "cache"
    monkeypatch.setenv("NPM_LOG", str(log))
    old = cache / "js-toolchain" / "0123456789abcdef"
    (old / "node_modules").mkdir(parents=True)
    said: list[str] = []
    monkeypatch.setenv("NPM_FAIL", "1")
    with pytest.raises(ConfigError, match=r"npm ci .*failed(.|\n)*no network"):
        ensure_toolchain(SDK_ROOT, cache, npm, said.append)
    # A failed install leaves nothing that looks installed, and the old toolchain in place.
    assert sorted(p.name for p in (cache / "js-toolchain").iterdir()) == [old.name]
    monkeypatch.delenv("NPM_FAIL")
    target = ensure_toolchain(SDK_ROOT, cache, npm, said.append)
    assert target == toolchain_dir(SDK_ROOT, cache)
    assert (target / "node_modules").is_dir()
    assert (target / "package-lock.json").read_bytes() == (
        SDK_ROOT / "js" / "package-lock.json"
    ).read_bytes()
    assert sorted(p.name for p in (cache / "js-toolchain").iterdir()) == [target.name]
    assert ensure_toolchain(SDK_ROOT, cache, npm, said.append) == target
    assert [line.split()[1] for line in log.read_text().splitlines()] == ["ci", "ci"]
    assert said[0].startswith("installing the JavaScript toolchain")
    assert any("older smcp-box" in line for line in said)


@pytest.mark.parametrize(
    ("name", "lang", "problem"),
    [
        ("Bad_Name", "python", "must be 1-63 characters"),
        ("ok", "cobol", "no template for 'cobol'"),
    ],
)
def test_new_refuses_bad_names_and_languages(
    tmp_path: Path, name: str, lang: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        new_tenant(name, lang, tmp_path)


def test_new_never_overwrites_a_folder(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        new_tenant("taken", "python", tmp_path)


def test_build_says_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "tenant.toml").write_text(
        'name = "x"\nkind = "component"\nmodule = "x.wasm"\nsha256 = "<hex>"\n'
    )
    with pytest.raises(ConfigError, match=r"needs app\.py"):
        build_tenant(tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        build_tenant(tmp_path / "missing")


@pytest.mark.slow
def test_new_build_and_vet_from_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    env.update(SMCP_BOX_CACHE_DIR=str(tmp_path / "cache"), SMCP_BOX_STATE_DIR=str(tmp_path / "s"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smcp_box.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    made = cli("new", "--lang", "python", "greeter")
    assert made.returncode == 0, made.stderr
    built = cli("build", "greeter")
    assert built.returncode == 0, built.stderr
    manifest = tomllib.loads((tmp_path / "greeter" / "tenant.toml").read_text())
    assert len(manifest["sha256"]) == 64
    assert manifest["tools_sha256"] in built.stdout
    vetted = cli("vet", "greeter", "--json")
    assert vetted.returncode == 0, vetted.stdout + vetted.stderr
    assert '"pin_status": "match"' in vetted.stdout


@pytest.mark.slow
def test_c_authoring_works_from_an_installed_wheel_outside_the_checkout(tmp_path: Path) -> None:
    """The wheel carries the C SDK, the templates and the build helpers: a venv with only the
    wheel (and the already installed dependencies) makes, builds and vets a C tenant in a
    folder that is not the repository."""
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    env.pop("PYTHONPATH", None)
    env.update(SMCP_BOX_CACHE_DIR=str(tmp_path / "cache"), SMCP_BOX_STATE_DIR=str(tmp_path / "s"))

    def run(*args: str | Path, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "wheel", repo)
    (wheel,) = (tmp_path / "wheel").glob("smcp_box-*.whl")
    run(sys.executable, "-m", "venv", "--system-site-packages", tmp_path / "venv")
    venv_python = tmp_path / "venv" / "bin" / "python"
    run(venv_python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    where = run(venv_python, "-c", "import smcp_box_sdk; print(smcp_box_sdk.__file__)")
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout

    work = tmp_path / "elsewhere"
    work.mkdir()
    smcp_box = tmp_path / "venv" / "bin" / "smcp-box"
    run(smcp_box, "new", "--lang", "c", "hello", cwd=work)
    built = run(smcp_box, "build", "hello", cwd=work)
    manifest = tomllib.loads((work / "hello" / "tenant.toml").read_text())
    assert manifest["tools_sha256"] in built.stdout
    vetted = run(smcp_box, "vet", "hello", "--json", cwd=work)
    assert '"pin_status": "match"' in vetted.stdout
    # The Python template and its WIT world came with the wheel too.
    run(smcp_box, "new", "--lang", "python", "hello-py", cwd=work)
    assert (work / "hello-py" / "app.py").is_file()
