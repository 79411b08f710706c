"""The local CA and server certificates: real keys, real files, verified as clients verify."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smcp_box.errors import ConfigError
from smcp_box.ops.certs import (
    CA_VALIDITY,
    LocalCA,
    atomic_write,
    install_credential,
    issue_server_certificate,
    load_or_create_ca,
    split_names,
    trust_instructions,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _clock(at: dt.datetime = NOW) -> dt.datetime:
    return at


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return load_or_create_ca(tmp_path / "ca", hostname="testbox", clock=_clock)


def _verify(ca: LocalCA, leaf: x509.Certificate, subject: verification.Subject) -> None:
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca.certificate]))
        .time(NOW + dt.timedelta(days=1))
        .build_server_verifier(subject)
    )
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca.certificate


def test_ca_is_made_once_with_private_files(tmp_path: Path, ca: LocalCA) -> None:
    assert ca.created
    assert _mode(tmp_path / "ca") == 0o700
    assert _mode(ca.key_path) == 0o600
    assert _mode(ca.cert_path) == 0o644
    cert = ca.certificate
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "smcp-box local CA testbox"
    )
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == CA_VALIDITY
    assert cert.not_valid_before_utc <= NOW
    assert ca.fingerprint_sha256.count(":") == 31
    assert ca.fingerprint_sha256 == ca.fingerprint_sha256.upper()

    again = load_or_create_ca(tmp_path / "ca", clock=_clock)
    assert not again.created
    assert again.fingerprint_sha256 == ca.fingerprint_sha256
    assert list((tmp_path / "ca").iterdir()).__len__() == 2  # no temporary files left


def test_ca_fingerprint_matches_openssl(ca: LocalCA) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is absent")
    out = subprocess.run(
        ["openssl", "x509", "-in", str(ca.cert_path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().split("=", 1)[1] == ca.fingerprint_sha256


def test_half_a_ca_is_refused(tmp_path: Path, ca: LocalCA) -> None:
    ca.cert_path.unlink()
    with pytest.raises(ConfigError, match="incomplete CA"):
        load_or_create_ca(tmp_path / "ca", clock=_clock)


def test_a_ca_key_that_does_not_match_is_refused(tmp_path: Path, ca: LocalCA) -> None:
    other = load_or_create_ca(tmp_path / "other", clock=_clock)
    shutil.copy(other.key_path, ca.key_path)
    with pytest.raises(ConfigError, match="is not the key of"):
        load_or_create_ca(tmp_path / "ca", clock=_clock)


def test_an_expired_ca_is_refused(tmp_path: Path, ca: LocalCA) -> None:
    later = NOW + CA_VALIDITY + dt.timedelta(days=1)
    with pytest.raises(ConfigError, match="expired"):
        load_or_create_ca(tmp_path / "ca", clock=lambda: later)


def test_an_encrypted_ca_key_needs_its_passphrase(tmp_path: Path) -> None:
    made = load_or_create_ca(tmp_path / "ca", clock=_clock, passphrase=b"correct horse")
    assert b"ENCRYPTED" in made.key_path.read_bytes()
    again = load_or_create_ca(tmp_path / "ca", clock=_clock, passphrase=b"correct horse")
    assert again.fingerprint_sha256 == made.fingerprint_sha256
    with pytest.raises(ConfigError, match="cannot read the private key"):
        load_or_create_ca(tmp_path / "ca", clock=_clock)


def test_server_certificate_chains_to_the_ca_for_every_name(tmp_path: Path, ca: LocalCA) -> None:
    issued = issue_server_certificate(
        ca, tmp_path / "tls", ["box.lan", "192.168.1.10", "fd00::10"], clock=_clock
    )
    assert _mode(issued.key_path) == 0o600
    assert _mode(issued.cert_path) == 0o644
    leaf = issued.certificate
    assert issued.ca_fingerprint_sha256 == ca.fingerprint_sha256

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["box.lan", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(a) for a in ("192.168.1.10", "fd00::10", "127.0.0.1", "::1")
    ]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "box.lan"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=398)

    for subject in (
        x509.DNSName("box.lan"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("192.168.1.10")),
        x509.IPAddress(ipaddress.ip_address("fd00::10")),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ):
        _verify(ca, leaf, subject)
    with pytest.raises(verification.VerificationError):
        _verify(ca, leaf, x509.DNSName("other.lan"))
    with pytest.raises(verification.VerificationError):
        _verify(ca, leaf, x509.IPAddress(ipaddress.ip_address("192.168.1.11")))


def test_openssl_verifies_the_chain(tmp_path: Path, ca: LocalCA) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is absent")
    issued = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"])
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(ca.cert_path),
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "box.lan",
            str(issued.cert_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_another_ca_does_not_verify_it(tmp_path: Path, ca: LocalCA) -> None:
    other = load_or_create_ca(tmp_path / "other", clock=_clock)
    issued = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"], clock=_clock)
    with pytest.raises(verification.VerificationError):
        _verify(other, issued.certificate, x509.DNSName("box.lan"))


def test_names_are_normalised_and_validated() -> None:
    dns, ips = split_names(["Box.LAN.", "[::1]", "bücher.lan", "*.apps.lan", "10.0.0.1", "box.lan"])
    assert dns == ("box.lan", "xn--bcher-kva.lan", "*.apps.lan", "localhost")
    assert ips == tuple(ipaddress.ip_address(a) for a in ("::1", "10.0.0.1", "127.0.0.1"))
    for bad in ("under_score.lan", "-dash.lan", "a..b", "x" * 64 + ".lan", "*.lan", ""):
        with pytest.raises(ConfigError, match="neither an IP address nor a valid DNS name"):
            split_names([bad])


def test_only_ip_addresses_name_the_subject_after_the_first(tmp_path: Path, ca: LocalCA) -> None:
    issued = issue_server_certificate(ca, tmp_path / "tls", ["192.168.1.10"], clock=_clock)
    common_name = issued.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
    assert common_name.value == "192.168.1.10"
    assert issued.dns_names == ("localhost",)


@pytest.mark.parametrize("days", [0, 399, 3650])
def test_validity_is_capped_at_398_days(tmp_path: Path, ca: LocalCA, days: int) -> None:
    with pytest.raises(ConfigError, match="398"):
        issue_server_certificate(ca, tmp_path / "tls", ["box.lan"], days=days)


def test_a_server_certificate_never_outlives_its_ca(tmp_path: Path, ca: LocalCA) -> None:
    late = NOW + CA_VALIDITY - dt.timedelta(days=100)
    issued = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"], clock=lambda: late)
    assert issued.not_after == ca.certificate.not_valid_after_utc


def test_renewal_makes_a_new_key_unless_asked_to_keep_it(tmp_path: Path, ca: LocalCA) -> None:
    first = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"], clock=_clock)
    first_key = first.key_path.read_bytes()
    kept = issue_server_certificate(
        ca, tmp_path / "tls", ["box.lan", "box2.lan"], clock=_clock, reuse_key=True
    )
    assert kept.key_path.read_bytes() == first_key
    assert kept.certificate.serial_number != first.certificate.serial_number
    key = serialization.load_pem_private_key(first_key, password=None)
    assert kept.certificate.public_key() == key.public_key()
    fresh = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"], clock=_clock)
    assert fresh.key_path.read_bytes() != first_key
    assert _mode(fresh.key_path) == 0o600
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["server.crt", "server.key"]


def test_atomic_write_sets_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"old")
    target.chmod(0o644)
    previous = os.umask(0)
    try:
        atomic_write(target, b"new", mode=0o600)
    finally:
        os.umask(previous)
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_atomic_write_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    target = tmp_path / "server.key"
    target.symlink_to(victim)
    atomic_write(target, b"key", mode=0o600)
    assert victim.read_bytes() == b"untouched"
    assert not target.is_symlink()
    assert target.read_bytes() == b"key"


def test_trust_instructions_cover_each_client(ca: LocalCA) -> None:
    text = trust_instructions(ca)
    assert ca.fingerprint_sha256 in text
    assert str(ca.cert_path) in text
    for needle in (
        "/usr/local/share/ca-certificates/smcp-box-local-ca-testbox.crt",
        "update-ca-certificates",
        "security add-trusted-cert",
        "Cert:\\LocalMachine\\Root",
        "Firefox",
        "SSL_CERT_FILE",
        "httpx.Client(verify=",
    ):
        assert needle in text


def test_install_credential_copies_the_key_root_only(tmp_path: Path, ca: LocalCA) -> None:
    issued = issue_server_certificate(ca, tmp_path / "tls", ["box.lan"], clock=_clock)
    credstore = tmp_path / "credstore"
    target = install_credential(issued.key_path, credstore=credstore)
    assert target == credstore / "smcp-box.tls-key"
    assert target.read_bytes() == issued.key_path.read_bytes()
    assert _mode(target) == 0o600
    assert _mode(credstore) == 0o700
