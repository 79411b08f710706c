"""`smcp-box cert` as an admin runs it (parser and runner, real files)."""

from __future__ import annotations

import argparse
import io
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from smcp_box.cli import main
from smcp_box.errors import ConfigError
from smcp_box.ops.cert_command import add_cert_parser, run_cert


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smcp-box")
    add_cert_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["cert", *argv])


def _run(tmp_path: Path, *argv: str) -> str:
    out = io.StringIO()
    args = _parse("--ca-dir", str(tmp_path / "ca"), "--out", str(tmp_path / "tls"), *argv)
    assert run_cert(args, out=out, state_dir=tmp_path / "state") == 0
    return out.getvalue()


def test_first_run_makes_the_ca_and_explains_trust(tmp_path: Path) -> None:
    text = _run(
        tmp_path,
        "--system",
        "--credstore",
        str(tmp_path / "credstore"),
        "box.lan",
        "192.168.1.10",
    )
    assert f"Created CA {tmp_path / 'ca' / 'ca.crt'}" in text
    assert "for box.lan, localhost, 192.168.1.10, 127.0.0.1, ::1" in text
    assert 'tls_key = "/run/credentials/smcp-box.service/tls-key"' in text
    assert f'tls_cert = "{(tmp_path / "tls" / "server.crt").resolve()}"' in text
    assert "systemctl restart smcp-box" in text
    assert "update-ca-certificates" in text
    assert "https://box.lan:8765/healthz" in text
    credential = tmp_path / "credstore" / "smcp-box.tls-key"
    assert credential.read_bytes() == (tmp_path / "tls" / "server.key").read_bytes()
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600


def test_renewal_reuses_the_ca_and_can_keep_the_key(tmp_path: Path) -> None:
    _run(tmp_path, "--system", "--credstore", "none", "box.lan")
    key = (tmp_path / "tls" / "server.key").read_bytes()
    text = _run(
        tmp_path, "--system", "--credstore", "none", "--keep-key", "--days", "90", "box.lan"
    )
    assert "Reused CA" in text
    assert "need no change" in text
    assert "update-ca-certificates" not in text
    assert "systemctl reload smcp-box" in text
    assert f'tls_key = "{(tmp_path / "tls" / "server.key").resolve()}"' in text
    assert (tmp_path / "tls" / "server.key").read_bytes() == key


def test_bad_input_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absolute folder"):
        _run(tmp_path, "--credstore", "relative/dir", "box.lan")
    with pytest.raises(ConfigError, match="398"):
        _run(tmp_path, "--credstore", "none", "--days", "1000", "box.lan")
    with pytest.raises(ConfigError, match="valid DNS name"):
        _run(tmp_path, "--credstore", "none", "not_a_host")


@pytest.mark.parametrize("system_config_exists", [False, True])
def test_quick_start_writes_only_under_the_state_folder(
    tmp_path: Path, system_config_exists: bool
) -> None:
    """Regression: as root in quick-start mode it wrote into /etc/smcp-box and /etc/credstore
    and printed a tls_key path that exists only under systemd. Without --system it uses /etc
    only when root runs it and the service's config file exists."""
    system_config = tmp_path / "etc" / "config.toml"
    if system_config_exists:
        system_config.parent.mkdir()
        system_config.write_text("")
    state = tmp_path / "state"
    out = io.StringIO()
    args = _parse("--credstore", "auto", "box.lan")
    if system_config_exists and os.geteuid() == 0:
        # The service layout would write into the real /etc: only check that it was chosen.
        from smcp_box.ops.cert_command import _system_mode

        assert _system_mode(args, system_config)
        return
    assert run_cert(args, out=out, state_dir=state, system_config=system_config) == 0
    text = out.getvalue()
    assert (state / "ca" / "ca.crt").is_file()
    assert (state / "tls" / "server.key").is_file()
    assert "/run/credentials" not in text
    assert "/etc/smcp-box" not in text
    assert "systemctl" not in text
    assert f"SMCP_BOX_SERVER_TLS_KEY={(state / 'tls' / 'server.key').resolve()}" in text
    assert f'tls_cert = "{(state / "tls" / "server.crt").resolve()}"' in text


def test_the_printed_quick_start_settings_load(tmp_path: Path) -> None:
    """What the quick start prints is a configuration the box accepts as it is."""
    from smcp_box.config import load_settings

    state = tmp_path / "state"
    out = io.StringIO()
    run_cert(_parse("box.lan"), out=out, state_dir=state, system_config=tmp_path / "absent")
    toml = out.getvalue().split("  [server]\n", 1)[1].split("\n\n", 1)[0]
    config = tmp_path / "config.toml"
    config.write_text("[server]\n" + "\n".join(line.strip() for line in toml.splitlines()))
    settings = load_settings(config, environ={})
    assert Path(settings.server.tls_cert).is_file()
    assert Path(settings.server.tls_key).is_file()


def _tenant_with_hosts(root: Path, name: str, hosts: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "tenant.toml").write_text(
        f'name = "{name}"\nmodule = "m.wasm"\nsha256 = "{"0" * 64}"\nhosts = {hosts}\n'
    )


def _san_dns_names(cert_path: Path) -> list[str]:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def test_tenant_hosts_become_sans_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``smcp-box cert --tenant-hosts`` reads the configured tenants folder and the admin-added
    tenants under the state folder; a broken tenant.toml is named and skipped."""
    tenants, state = tmp_path / "tenants", tmp_path / "state"
    _tenant_with_hosts(tenants, "notes", '["notes.box.lan", "box.lan"]')
    _tenant_with_hosts(tenants, "wiki", '["wiki.box.lan"]')
    _tenant_with_hosts(tenants, "broken", '["Not OK"]')
    _tenant_with_hosts(state / "tenants", "added", '["added.box.lan"]')
    monkeypatch.setenv("SMCP_BOX_TENANTS_DIR", str(tenants))
    monkeypatch.setenv("SMCP_BOX_STATE_DIR", str(state))
    argv = [
        "cert",
        "--tenant-hosts",
        "--ca-dir",
        str(tmp_path / "ca"),
        "--out",
        str(tmp_path / "tls"),
    ]
    assert main([*argv, "--credstore", "none", "box.lan"]) == 0
    text = capsys.readouterr().out
    names = _san_dns_names(tmp_path / "tls" / "server.crt")
    assert names == [
        "box.lan", "notes.box.lan", "wiki.box.lan", "added.box.lan", "localhost"
    ]  # fmt: skip
    assert "for box.lan, notes.box.lan, wiki.box.lan, added.box.lan, localhost" in text
    assert "Skipped (its hosts are not in the certificate)" in text
    assert "broken" in text


def test_tenant_hosts_alone_or_nothing(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants"
    _tenant_with_hosts(tenants, "notes", '["notes.box.lan"]')
    out = io.StringIO()
    args = _parse(
        "--ca-dir", str(tmp_path / "ca"), "--out", str(tmp_path / "tls"), "--tenant-hosts"
    )
    assert run_cert(args, out=out, state_dir=tmp_path / "state", tenants_dir=tenants) == 0
    assert _san_dns_names(tmp_path / "tls" / "server.crt") == ["notes.box.lan", "localhost"]
    with pytest.raises(ConfigError, match="name the box"):
        _run(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="name the box"):
        run_cert(args, out=io.StringIO(), state_dir=tmp_path / "state", tenants_dir=empty)
