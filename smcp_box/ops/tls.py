"""The server's TLS context, and swapping its certificate on SIGHUP without a restart.

Hypercorn 0.18 builds its ``ssl.SSLContext`` once, in ``Config.create_ssl_context()``, when
``serve`` starts, and hands that object to ``asyncio.start_server``; it reads ``certfile`` and
``keyfile`` only there (and ``ssl_enabled`` checks that both are set). So a reload cannot go
through Hypercorn: :class:`ReloadableTLSConfig` returns our context instead, and
:class:`CertReloader` changes what that context serves.

How a reload takes effect: the context Hypercorn holds has an SNI callback, which OpenSSL calls
early in every handshake (also when the client sends no server name, as clients connecting to an
IP address do). The callback moves the connection onto the newest context. Reload builds a whole
new context from the files first, so a bad certificate, a missing file or a key that does not
match leaves the old one serving; loading into the live context instead could leave it with the
new certificate and no usable key if the key load failed. Established connections keep the
certificate they were made with; only new handshakes see the new one.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from hypercorn.config import Config as HypercornConfig

from smcp_box.errors import ConfigError
from smcp_box.ops.certs import fingerprint_sha256

logger = logging.getLogger("smcp_box.ops.tls")

#: HTTP/2 first: MCP clients multiplex a POST and an SSE stream over one connection.
ALPN_PROTOCOLS = ("h2", "http/1.1")
#: For TLS 1.2 only (TLS 1.3 suites are all AEAD): forward-secret AEAD suites, as HTTP/2
#: requires (RFC 9113 9.2.2), for ECDSA and RSA certificates alike.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True)
class CertificateInfo:
    fingerprint_sha256: str
    not_after: datetime
    subject: str


def build_ssl_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A server context: TLS 1.2 minimum (1.3 negotiated whenever the client has it), ALPN h2.

    Raises ConfigError naming the file when the certificate or key cannot be used.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No maximum_version: OpenSSL picks the highest both sides speak, i.e. TLS 1.3 when it can.
    context.options |= (
        ssl.OP_NO_COMPRESSION  # CRIME; HTTP/2 forbids TLS compression
        | ssl.OP_NO_RENEGOTIATION  # client-initiated renegotiation is a DoS lever, and h2 bans it
        | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    context.set_ciphers(TLS12_CIPHERS)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"TLS file {exc.filename or cert} does not exist; check server.tls_cert and "
            "server.tls_key (smcp-box cert makes both)"
        ) from None
    except PermissionError as exc:
        raise ConfigError(
            f"cannot read TLS file {exc.filename or key}: permission denied; under systemd pass "
            "the key as the tls-key credential (see docs/operations.md)"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"cannot use TLS certificate {cert} with key {key}: {exc.reason or exc}; the key must "
            "be the PEM private key of the certificate"
        ) from None
    return context


def read_certificate_info(cert: Path | str) -> CertificateInfo:
    """Fingerprint and expiry of the first certificate in a PEM file (the server's own)."""
    try:
        certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read TLS certificate {cert}: {exc}") from None
    return CertificateInfo(
        fingerprint_sha256=fingerprint_sha256(certificate),
        not_after=certificate.not_valid_after_utc,
        subject=certificate.subject.rfc4514_string(),
    )


class CertReloader:
    """Owns the context the server listens with; :meth:`reload` swaps in the files' new content."""

    def __init__(self, cert: Path | str, key: Path | str) -> None:
        self.cert_path = Path(cert)
        self.key_path = Path(key)
        self._context = build_ssl_context(self.cert_path, self.key_path)
        self._current = self._context
        self._info = read_certificate_info(self.cert_path)
        self._context.sni_callback = self._select_context

    @property
    def context(self) -> ssl.SSLContext:
        """The context to listen with; keep using this one object across reloads."""
        return self._context

    @property
    def info(self) -> CertificateInfo:
        """The certificate that new handshakes get."""
        return self._info

    def reload(self) -> CertificateInfo:
        """Load the files again for new handshakes; on ConfigError the old certificate stays."""
        fresh = build_ssl_context(self.cert_path, self.key_path)
        info = read_certificate_info(self.cert_path)
        self._current = fresh
        changed = info.fingerprint_sha256 != self._info.fingerprint_sha256
        self._info = info
        logger.info(
            "TLS certificate %s: %s, valid until %s",
            "reloaded" if changed else "unchanged",
            info.fingerprint_sha256,
            f"{info.not_after:%Y-%m-%d}",
        )
        return info

    def _select_context(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        current = self._current
        if connection.context is not current:
            connection.context = current


class ReloadableTLSConfig(HypercornConfig):
    """A Hypercorn config whose TLS context is the reloader's (see the module docstring)."""

    def __init__(self, reloader: CertReloader) -> None:
        super().__init__()
        self.cert_reloader = reloader
        # Hypercorn enables TLS when both are set; it does not read them itself any more.
        self.certfile = str(reloader.cert_path)
        self.keyfile = str(reloader.key_path)

    def create_ssl_context(self) -> ssl.SSLContext:
        return self.cert_reloader.context
