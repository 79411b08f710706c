"""`smcp-box cert` as an admin runs it (parser and runner, real files)."""

from __future__ import annotations

import argparse
import io
import stat
from pathlib import Path

import pytest

from smcp_box.errors import ConfigError
from smcp_box.ops.cert_command import add_cert_parser, run_cert


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smcp-box")
    add_cert_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["cert", *argv])


def _run(tmp_path: Path, *argv: str) -> str:
    out = io.StringIO()
    args = _parse("--ca-dir", str(tmp_path / "ca"), "--out", str(tmp_path / "tls"), *argv)
    assert run_cert(args, out=out) == 0
    return out.getvalue()


def test_first_run_makes_the_ca_and_explains_trust(tmp_path: Path) -> None:
    text = _run(tmp_path, "--credstore", str(tmp_path / "credstore"), "box.lan", "192.168.1.10")
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
    _run(tmp_path, "--credstore", "none", "box.lan")
    key = (tmp_path / "tls" / "server.key").read_bytes()
    text = _run(tmp_path, "--credstore", "none", "--keep-key", "--days", "90", "box.lan")
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
