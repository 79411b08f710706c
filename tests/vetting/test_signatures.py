"""Publisher signatures (issue 15): keygen -> sign -> vet passes; a changed module, signature or
signed tenant.toml field is refused; unsigned is refused when required and warned about when
not; an untrusted publisher is refused; load and reload refuse as vet does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.config import SandboxSettings, VettingSettings, load_settings
from smcp_box.errors import ConfigError, ModuleRejected
from smcp_box.sandbox import Sandbox
from smcp_box.tenancy.registry import TenantRegistry
from smcp_box.tenancy.vet_command import run_vet_command
from smcp_box.vetting.signatures import generate_keypair

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the notes tenant signed through the CLI, and the publisher key."""
    tenant = tmp_path / "tenants" / "notes"
    shutil.copytree(REPO / "tenants" / "notes", tenant)
    keygen = cli("publisher", "keygen", str(tmp_path / "keys"), cwd=tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    public = keygen.stdout.strip()
    assert re.fullmatch(r"ed25519:[A-Za-z0-9+/]{43}=", public)
    private = tmp_path / "keys" / "publisher.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in keygen.stdout + keygen.stderr
    done = cli("sign", str(tenant), "--key", str(private), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tenant / "notes.wasm.sig").is_file()
    return tenant, public


def vet(
    tenant: Path, cache: Path, capsys: pytest.CaptureFixture[str], **vetting: Any
) -> dict[str, Any]:
    code = run_vet_command(
        [tenant], cache, SandboxSettings(), as_json=True, vetting=VettingSettings(**vetting)
    )
    (report,) = json.loads(capsys.readouterr().out)
    assert code == (0 if report["ok"] else 1)
    assert isinstance(report, dict)
    return report


def set_line(manifest: Path, key: str, value: str) -> None:
    text = manifest.read_text()
    new, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    assert count == 1
    manifest.write_text(new)


def test_signed_tenant_vets_and_reports_its_publisher(
    signed: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, public = signed
    report = vet(
        tenant, tmp_path / "c", capsys, trusted_publishers=(public,), require_signature=True
    )
    assert report["ok"] is True
    assert report["publisher"] == public
    run_vet_command(
        [tenant], tmp_path / "c", SandboxSettings(), as_json=False,
        vetting=VettingSettings(trusted_publishers=(public,)),
    )  # fmt: skip
    assert f"publisher: {public} (signature valid, trusted)" in capsys.readouterr().out
    # Fields outside the signature may change without re-signing.
    set_line(tenant / "tenant.toml", "description", '"renamed by the admin"')
    assert vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public,))["ok"] is True


def test_flipped_module_byte_is_refused(
    signed: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, public = signed
    module = tenant / "notes.wasm"
    data = bytearray(module.read_bytes())
    data[-1] ^= 0x01
    module.write_bytes(bytes(data))
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public,))
    assert report["ok"] is False
    assert "sha256" in report["error"]
    # Re-pinning the hash in tenant.toml does not help: the signature covers it.
    set_line(tenant / "tenant.toml", "sha256", f'"{hashlib.sha256(data).hexdigest()}"')
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public,))
    assert report["ok"] is False
    assert "signature notes.wasm.sig is bad" in report["error"]


def test_flipped_signature_byte_is_refused(
    signed: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, public = signed
    sig_path = tenant / "notes.wasm.sig"
    document = json.loads(sig_path.read_text())
    signature = bytearray(base64.b64decode(document["signature"]))
    signature[5] ^= 0x80
    document["signature"] = base64.b64encode(bytes(signature)).decode()
    sig_path.write_text(json.dumps(document))
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public,))
    assert report["ok"] is False
    assert "is bad: it does not match" in report["error"]
    sig_path.write_text("not json")
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public,))
    assert "is bad: it is malformed" in report["error"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("auth", '"none"'),
        ("tools_sha256", '"' + "0" * 64 + '"'),
        ("memory_mib", "128"),
        ("name", '"notes2"'),
    ],
)
def test_changed_signed_field_is_refused(
    signed: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: str,
) -> None:
    tenant, public = signed
    set_line(tenant / "tenant.toml", key, value)
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public,))
    assert report["ok"] is False
    assert "signature notes.wasm.sig is bad" in report["error"]


def test_unsigned_is_refused_when_required_and_warned_when_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tmp_path / "notes"
    shutil.copytree(REPO / "tenants" / "notes", tenant)
    report = vet(tenant, tmp_path / "c", capsys, require_signature=True)
    assert report["ok"] is False
    assert "not signed" in report["error"]
    assert "require_signature" in report["error"]
    report = vet(tenant, tmp_path / "c", capsys)
    assert report["ok"] is True
    assert report["publisher"] is None
    assert "not signed" in report["signature_warning"]
    # A tenant.toml may require a signature although the box does not.
    manifest = tenant / "tenant.toml"
    manifest.write_text(manifest.read_text().replace("auth =", 'secrets = ["TOKEN"]\nauth ='))
    assert vet(tenant, tmp_path / "c", capsys)["required_secrets"] == ["TOKEN"]
    manifest.write_text(manifest.read_text() + "\n[vetting]\nrequire_signature = true\n")
    assert vet(tenant, tmp_path / "c", capsys)["ok"] is False


def test_untrusted_publisher_is_refused(
    signed: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, public = signed
    other = generate_keypair(tmp_path / "other")
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(other,))
    assert report["ok"] is False
    assert f"signed by {public}, which is not a trusted publisher" in report["error"]
    # A tenant.toml can narrow the box's list, never widen it.
    manifest = tenant / "tenant.toml"
    manifest.write_text(manifest.read_text() + f'\n[vetting]\npublishers = ["{other}"]\n')
    report = vet(tenant, tmp_path / "c", capsys, trusted_publishers=(public, other))
    assert report["ok"] is False
    assert "not a trusted publisher" in report["error"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


def test_load_and_reload_refuse_with_the_reason(signed: tuple[Path, str], sandbox: Sandbox) -> None:
    tenant, public = signed
    registry = TenantRegistry(
        sandbox=sandbox,
        kv=None,  # type: ignore[arg-type]  # loading never touches kv
        defaults=SandboxSettings(),
        clock=time.time,
        vetting=VettingSettings(trusted_publishers=(public,), require_signature=True),
    )
    assert registry.load_folder(tenant.parent).loaded == ["notes"]
    served = registry.get("notes")
    assert served is not None
    assert served.signature is not None
    assert served.signature.publisher == public
    # The signature is removed: the next reload drops the tenant, naming why.
    (tenant / "notes.wasm.sig").unlink()
    report = registry.load_folder(tenant.parent)
    assert report.loaded == []
    assert "not signed" in report.failed[str(tenant)]
    # Trusting nobody refuses it at load too, and a single-tenant reload keeps the reason.
    registry.set_vetting(VettingSettings())
    assert registry.load_folder(tenant.parent).loaded == ["notes"]
    resigned = cli("sign", str(tenant), "--key", str(tenant.parents[1] / "keys/publisher.key"),
                   cwd=tenant)  # fmt: skip
    assert resigned.returncode == 0, resigned.stderr
    with pytest.raises(ModuleRejected, match="not a trusted publisher"):
        registry.load_tenant(tenant / "tenant.toml")
    assert "not a trusted publisher" in registry.last_report.failed[str(tenant)]


def test_trusted_publishers_setting_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[vetting]\ntrusted_publishers = ["ed25519:short"]\n')
    with pytest.raises(ConfigError, match="is not a publisher key"):
        load_settings(config, environ={})
