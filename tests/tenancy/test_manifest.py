"""tenant.toml parsing: every field checked, problems named with the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.errors import ConfigError
from smcp_box.seams import MIB
from smcp_box.tenancy.manifest import discover_manifests, load_manifest, resolve_limits

MODULE = b"\0asm\x01\0\0\0"
SHA = hashlib.sha256(MODULE).hexdigest()


def write_tenant(root: Path, body: str, folder: str = "t1") -> Path:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "m.wasm").write_bytes(MODULE)
    path = root / folder / "tenant.toml"
    path.write_text(body)
    return path


def test_full_manifest_round_trips(tmp_path: Path) -> None:
    path = write_tenant(
        tmp_path,
        f'name = "notes"\ndescription = "d"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n'
        'auth = "none"\n[limits]\nmemory_mib = 64\n[config]\ngreeting = "hi"\n',
    )
    manifest = load_manifest(path)
    assert manifest.name == "notes"
    assert manifest.auth == "none"
    assert manifest.config == {"greeting": "hi"}
    assert manifest.read_module() == MODULE
    limits = resolve_limits(SandboxSettings(), manifest.limit_overrides)
    assert limits.memory_bytes == 64 * MIB
    assert limits.fuel == SandboxSettings().fuel


def test_auth_defaults_to_api_key(tmp_path: Path) -> None:
    path = write_tenant(tmp_path, f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n')
    assert load_manifest(path).auth == "api_key"


@pytest.mark.parametrize("mode", ["api_key", "oauth", "both", "none"])
def test_every_auth_mode_is_accepted(tmp_path: Path, mode: str) -> None:
    path = write_tenant(
        tmp_path, f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\nauth = "{mode}"\n'
    )
    assert load_manifest(path).auth == mode


def test_hash_mismatch_is_refused_with_both_hashes(tmp_path: Path) -> None:
    path = write_tenant(tmp_path, f'name = "a"\nmodule = "m.wasm"\nsha256 = "{"0" * 64}"\n')
    with pytest.raises(ConfigError) as info:
        load_manifest(path).read_module()
    assert SHA in info.value.message
    assert "pins" in info.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (f'name = "A b"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n', "tenant name"),
        (f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\nextra = 1\n', "unknown key(s) extra"),
        ('name = "a"\nmodule = "m.wasm"\nsha256 = "abc"\n', "64-hex-digit"),
        (f'name = "a"\nmodule = "../m.wasm"\nsha256 = "{SHA}"\n', "inside the tenant"),
        (f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\nauth = "x"\n', "auth must be"),
        (f'name = "a"\nsha256 = "{SHA}"\n', "'module' is required"),
        (f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n[config]\nx = 1\n', "string values"),
    ],
)
def test_bad_manifests_name_file_and_problem(tmp_path: Path, body: str, fragment: str) -> None:
    path = write_tenant(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert str(path) in info.value.message
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [
        ({"bogus": 1}, "unknown limit"),
        ({"fuel": -1}, "fuel = -1 is out of range: allowed 1000..1000000000000 (fuel units)"),
        ({"tick_ms": 5}, "unknown limit"),
    ],
)
def test_bad_limits(limits: dict[str, int], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_limits(SandboxSettings(), limits)
    assert fragment in info.value.message


def test_discover_finds_tenant_folders_in_order(tmp_path: Path) -> None:
    write_tenant(tmp_path, "x", folder="b")
    write_tenant(tmp_path, "x", folder="a")
    (tmp_path / "not-a-tenant").mkdir()
    assert [p.parent.name for p in discover_manifests(tmp_path)] == ["a", "b"]
    with pytest.raises(ConfigError, match="does not exist"):
        discover_manifests(tmp_path / "missing")


def _with_hosts(tmp_path: Path, hosts: str) -> Path:
    return write_tenant(
        tmp_path, f'name = "notes"\nmodule = "m.wasm"\nsha256 = "{SHA}"\nhosts = {hosts}\n'
    )


def test_hosts_are_read_in_order(tmp_path: Path) -> None:
    manifest = load_manifest(_with_hosts(tmp_path, '["notes.box.lan", "n.example.org"]'))
    assert manifest.hosts == ("notes.box.lan", "n.example.org")
    assert (
        load_manifest(
            write_tenant(
                tmp_path, f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n', folder="t2"
            )
        ).hosts
        == ()
    )


@pytest.mark.parametrize(
    ("hosts", "fragment"),
    [
        ('"notes.box.lan"', "hosts must be a list of host names"),
        ("[1]", "non-empty strings"),
        ('[""]', "non-empty strings"),
        ('["Notes.box.lan"]', "lowercase"),
        ('["notes.box.lan:8443"]', "without scheme, port or path"),
        ('["https://notes.box.lan"]', "without scheme, port or path"),
        ('["*.box.lan"]', "wildcards are not supported"),
        ('["notes..lan"]', "dot-separated labels"),
        ('["-notes.lan"]', "dot-separated labels"),
        ('["notes_x.lan"]', "dot-separated labels"),
        (f'["{"a" * 64}.lan"]', "dot-separated labels"),
        ('["192.168.1.10"]', "IP address"),
        ('["localhost"]', "localhost names"),
        ('["notes.localhost"]', "localhost names"),
        ('["notes.box.lan", "notes.box.lan"]', "lists notes.box.lan more than once"),
    ],
)
def test_bad_hosts_name_file_and_problem(tmp_path: Path, hosts: str, fragment: str) -> None:
    path = _with_hosts(tmp_path, hosts)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert str(path) in info.value.message
    assert fragment in info.value.message


def test_kind_defaults_to_core_and_unknown_kinds_are_named(tmp_path: Path) -> None:
    module = tmp_path / "m.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    base = f'name = "k"\nmodule = "m.wasm"\nsha256 = "{digest}"\n'
    (tmp_path / "tenant.toml").write_text(base)
    assert load_manifest(tmp_path / "tenant.toml").kind == "core"
    (tmp_path / "tenant.toml").write_text(base + 'kind = "rust"\n')
    with pytest.raises(ConfigError, match=r"kind must be one of 'core', 'component', 'stdio'"):
        load_manifest(tmp_path / "tenant.toml")


def test_blobs_table_and_blob_quotas(tmp_path: Path) -> None:
    head = f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n'
    assert load_manifest(write_tenant(tmp_path, head)).blob_resources is False
    manifest = load_manifest(
        write_tenant(
            tmp_path, head + "[quotas]\nblob_max_count = 5\n[blobs]\nresources = true\n", "t2"
        )
    )
    assert manifest.blob_resources is True
    assert manifest.quota_overrides == {"blob_max_count": 5}


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('[blobs]\nresources = "yes"\n', "[blobs] resources must be true or false"),
        ("[blobs]\nlisted = true\n", "[blobs] must be a table with at most"),
        ("[quotas]\nblob_max_bytes = 0\n", "blob_max_bytes = 0 is out of range"),
        ("[quotas]\nblob_max_count = 1.5\n", "blob_max_count = 1.5 is not an integer"),
        ("[quotas]\nblob_resource_max_bytes = 100\n", "blob_resource_max_bytes = 100 is out"),
        ("[quotas]\nblob_resource_max_bytes = 67108865\n", "blob_resource_max_bytes = 6710"),
    ],
)
def test_bad_blob_settings_are_named(tmp_path: Path, table: str, fragment: str) -> None:
    path = write_tenant(tmp_path, f'name = "a"\nmodule = "m.wasm"\nsha256 = "{SHA}"\n' + table)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert fragment in info.value.message
