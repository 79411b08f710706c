"""A local certificate authority and server certificates for the box (``smcp-box cert``).

A LAN appliance has no public DNS name, so no public CA will certify it. Instead the box makes its
own small CA once, the admin makes each client trust that CA once, and the box can then re-issue
its server certificate (new names, yearly renewal) without touching the clients again.

Choices and invariants:
- ECDSA P-256 keys and SHA-256 signatures: accepted by every current TLS client (browsers,
  OpenSSL, Windows, macOS, Java), unlike Ed25519 certificates, which browsers still reject.
- The CA may sign server certificates only (path length 0, keyCertSign/cRLSign) and lasts 10
  years; server certificates last at most 398 days, the ceiling that Apple platforms and browsers
  enforce, and never outlive the CA.
- Private keys are written 0600 from the moment they exist (created with O_EXCL under a temporary
  name, then renamed over the target), so no reader ever sees a half-written or world-readable
  key. Certificates are public and written 0644.
- An existing CA is reused, never silently replaced: replacing it would break every client that
  trusts it. Half a CA (a certificate without its key, or keys that do not match) is an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smcp_box.errors import ConfigError

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "server.crt"
SERVER_KEY_FILE = "server.key"
#: Where systemd looks up the unit's relative LoadCredential= names (see smcp-box.service).
CREDSTORE = Path("/etc/credstore")
TLS_KEY_CREDENTIAL = "smcp-box.tls-key"

CA_VALIDITY = dt.timedelta(days=3650)
MAX_SERVER_VALIDITY_DAYS = 398
#: Certificates start slightly in the past so that a client whose clock lags still accepts them.
BACKDATE = dt.timedelta(minutes=5)
#: Always in a server certificate, so that the box can be reached on the box itself.
LOOPBACK_NAMES: tuple[str, ...] = ("localhost",)
LOOPBACK_IPS: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = (
    ipaddress.ip_address("127.0.0.1"),
    ipaddress.ip_address("::1"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Clock = Callable[[], dt.datetime]
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LocalCA:
    cert_path: Path
    key_path: Path
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    #: True when this call made the CA (clients must be told to trust it).
    created: bool

    @property
    def fingerprint_sha256(self) -> str:
        return fingerprint_sha256(self.certificate)


@dataclass(frozen=True)
class ServerCertificate:
    cert_path: Path
    key_path: Path
    certificate: x509.Certificate
    ca: LocalCA
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def ca_fingerprint_sha256(self) -> str:
        return self.ca.fingerprint_sha256


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """Colon-separated upper-case hex, as ``openssl x509 -fingerprint -sha256`` prints it."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


# --- the CA ----------------------------------------------------------------------------------


def load_or_create_ca(
    ca_dir: Path,
    *,
    hostname: str | None = None,
    clock: Clock = _utcnow,
    passphrase: bytes | None = None,
) -> LocalCA:
    """The CA in ``ca_dir`` (``ca.crt`` + ``ca.key``), made there first if neither exists."""
    cert_path, key_path = ca_dir / CA_CERT_FILE, ca_dir / CA_KEY_FILE
    if cert_path.exists() or key_path.exists():
        return _load_ca(cert_path, key_path, clock(), passphrase)
    ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = clock()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smcp-box"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"smcp-box local CA {hostname or socket.gethostname()}"[:64]
            ),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now - BACKDATE + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    # Key first: a crash in between leaves a key without a certificate, which _load_ca reports,
    # rather than a trusted-looking certificate whose key is gone.
    write_private_key(key_path, key, passphrase)
    write_public_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return LocalCA(cert_path, key_path, certificate, key, created=True)


def _load_ca(
    cert_path: Path, key_path: Path, now: dt.datetime, passphrase: bytes | None
) -> LocalCA:
    if not (cert_path.exists() and key_path.exists()):
        present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        raise ConfigError(
            f"incomplete CA: {present} exists but {missing} does not; restore it from a backup, "
            f"or move {present.parent} away to make a new CA (clients must then trust the new one)"
        )
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = _load_private_key(key_path, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path} is not an ECDSA key; smcp-box CAs use P-256")
    if _public_der(key.public_key()) != _public_der(certificate.public_key()):
        raise ConfigError(f"{key_path} is not the key of {cert_path}")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ConfigError(f"{cert_path} is not a CA certificate")
    if certificate.not_valid_after_utc <= now:
        raise ConfigError(
            f"the CA in {cert_path} expired on {certificate.not_valid_after_utc:%Y-%m-%d}; move "
            f"{cert_path.parent} away to make a new CA and make clients trust the new one"
        )
    return LocalCA(cert_path, key_path, certificate, key, created=False)


# --- server certificates ---------------------------------------------------------------------


def split_names(names: Sequence[str]) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """Sort host names from IP addresses, normalise them, add loopback ones; ConfigError if bad."""
    dns: list[str] = []
    ips: list[IPAddress] = []
    for raw in names:
        name = raw.strip().rstrip(".")
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            host = _normalise_dns_name(name)
            if host not in dns:
                dns.append(host)
        else:
            if address not in ips:
                ips.append(address)
    dns.extend(n for n in LOOPBACK_NAMES if n not in dns)
    ips.extend(a for a in LOOPBACK_IPS if a not in ips)
    return tuple(dns), tuple(ips)


def _first_name(names: Sequence[str]) -> str | None:
    if not names:
        return None
    name = names[0].strip().rstrip(".")
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return _normalise_dns_name(name)


def _normalise_dns_name(name: str) -> str:
    try:
        # IDNA 2003 via the stdlib: "bücher.lan" becomes "xn--bcher-kva.lan" as clients send it.
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    wildcard = labels[:1] == ["*"] and len(labels) > 2
    checked = labels[1:] if wildcard else labels
    if not ascii_name or len(ascii_name) > 253 or not all(_LABEL.match(x) for x in checked):
        raise ConfigError(
            f"{name!r} is neither an IP address nor a valid DNS name (letters, digits and hyphens "
            "in dot-separated labels, e.g. box.lan)"
        )
    return ascii_name


def issue_server_certificate(
    ca: LocalCA,
    out_dir: Path,
    names: Sequence[str],
    *,
    days: int = MAX_SERVER_VALIDITY_DAYS,
    clock: Clock = _utcnow,
    reuse_key: bool = False,
) -> ServerCertificate:
    """Write ``server.crt`` and ``server.key`` for ``names`` (host names and IPs) into out_dir.

    ``reuse_key`` keeps an existing ``server.key``: a renewed certificate for the same key can then
    be loaded with ``systemctl reload`` even where the key reaches the box as a systemd credential
    (credentials are copied only when the service starts).
    """
    if not 1 <= days <= MAX_SERVER_VALIDITY_DAYS:
        raise ConfigError(
            f"server certificates last 1 to {MAX_SERVER_VALIDITY_DAYS} days (clients reject "
            f"longer ones); {days} was asked for"
        )
    dns_names, ip_addresses = split_names(names)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    cert_path, key_path = out_dir / SERVER_CERT_FILE, out_dir / SERVER_KEY_FILE
    key: ec.EllipticCurvePrivateKey
    new_key = True
    if reuse_key and key_path.exists():
        loaded = _load_private_key(key_path, None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{key_path} is not an ECDSA key; issue without reusing it")
        key, new_key = loaded, False
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = clock()
    not_before = now - BACKDATE
    not_after = min(not_before + dt.timedelta(days=days), ca.certificate.not_valid_after_utc)
    # The subject is informational (clients match SANs only); name it after what was asked for.
    common_name = _first_name(names) or LOOPBACK_NAMES[0]
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    san.extend(x509.IPAddress(a) for a in ip_addresses)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    if new_key:
        write_private_key(key_path, key, None)
    write_public_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return ServerCertificate(cert_path, key_path, certificate, ca, dns_names, ip_addresses)


# --- files -----------------------------------------------------------------------------------


def write_private_key(
    path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes | None
) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    atomic_write(path, data, mode=0o600)


def write_public_file(path: Path, data: bytes) -> None:
    atomic_write(path, data, mode=0o644)


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, whole.

    The temporary file is created with O_EXCL at its final mode (then fchmod'ed past the umask),
    so a private key is never readable by others, not even while it is being written.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temporary, flags, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def install_credential(
    source: Path, *, name: str = TLS_KEY_CREDENTIAL, credstore: Path = CREDSTORE
) -> Path:
    """Copy a secret into systemd's credential store (root-only), where the unit looks for it.

    The service reads it at start as ``$CREDENTIALS_DIRECTORY/<id>``; its dynamic user never needs
    to read ``source`` itself.
    """
    credstore.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = credstore / name
    atomic_write(target, source.read_bytes(), mode=0o600)
    return target


def _load_private_key(path: Path, passphrase: bytes | None) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the private key {path}: {exc}") from None


def _public_der(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- telling the admin -------------------------------------------------------------------------


def trust_instructions(ca: LocalCA, *, host_hint: str = "box.lan") -> str:
    """How to make clients trust ``ca``: OS stores, Firefox, and Python clients."""
    path = ca.cert_path.resolve()
    common_names = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    label = str(common_names[0].value) if common_names else "smcp-box local CA"
    stem = re.sub(r"[^a-z0-9.-]+", "-", label.lower()).strip("-")[:60]
    return f"""\
Local CA certificate: {path}
SHA-256 fingerprint:  {ca.fingerprint_sha256}
Compare the fingerprint on each client before trusting the file
(openssl x509 -in ca.crt -noout -fingerprint -sha256).

Debian / Ubuntu (system store, used by curl, OpenSSL, most CLI tools):
  sudo cp ca.crt /usr/local/share/ca-certificates/{stem}.crt
  sudo update-ca-certificates
  (the file name must end in .crt)
Fedora / RHEL:
  sudo cp ca.crt /etc/pki/ca-trust/source/anchors/ && sudo update-ca-trust
macOS:
  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.crt
Windows (an administrator PowerShell):
  Import-Certificate -FilePath ca.crt -CertStoreLocation Cert:\\LocalMachine\\Root
  (or: certutil -addstore -f Root ca.crt)
Firefox (keeps its own store): Settings > Privacy & Security > Certificates > View
  Certificates > Authorities > Import, tick "Trust this CA to identify websites"; or set
  security.enterprise_roots.enabled = true in about:config to use the Windows/macOS store.
Python clients (httpx, the MCP SDK, requests):
  SSL_CERT_FILE=/path/to/ca.crt   (httpx and ssl.create_default_context honour it; it replaces
                                   the default bundle, so after update-ca-certificates prefer
                                   SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
  REQUESTS_CA_BUNDLE=/path/to/ca.crt   (requests)
  httpx.Client(verify=ssl.create_default_context(cafile="/path/to/ca.crt"))
Node.js: NODE_EXTRA_CA_CERTS=/path/to/ca.crt    curl: curl --cacert ca.crt https://{host_hint}:8765/healthz
"""
