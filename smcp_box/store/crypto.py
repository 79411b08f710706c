"""The encryption envelope for values at rest, and keyed lookup hashes.

Every sensitive value in the database is sealed with AES-256-GCM under a sub-key derived from the
box's data key. A sealed blob is ``version (1 byte) || nonce (12 bytes) || ciphertext+tag``. The
associated data (AAD) is the version byte followed by a *context* naming the table, the tenant, the
row key and the column, so a blob copied to another row, column or tenant no longer authenticates
and reading it raises :class:`~smcp_box.errors.DecryptionFailed`.

Lookups never need a plaintext column: session ids, kv key names and API key secrets are found
by ``HMAC-SHA256(index sub-key, context)``. The audit chain is keyed by its own sub-key, so a
reader of the database file cannot recompute it.

Sub-keys come from HKDF-SHA256 over the data key with distinct ``info`` labels; the raw data key
is never used as a key directly, and a leaked sub-key does not reveal the others.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from smcp_box.errors import DecryptionFailed, KeyFileError

DATA_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
#: Envelope versions. PLAIN exists only so the benchmark can measure what encryption costs; a
#: production store never writes it, and an encrypting store refuses to read it (otherwise an
#: attacker with write access could downgrade a value to an unauthenticated one).
ENVELOPE_PLAIN: Final = 0x00
ENVELOPE_AES_GCM_V1: Final = 0x01

_HKDF_SALT: Final = b"smcp-box data key v1"

Part = str | bytes | int


def frame(*parts: Part) -> bytes:
    """Encode parts unambiguously: each is tagged and length-prefixed.

    Plain concatenation with a separator would let ``("a|b", "c")`` and ``("a", "b|c")`` collide,
    and tenant names and kv keys are chosen by others.
    """
    out = bytearray()
    for part in parts:
        if isinstance(part, bytes):
            tag, data = b"b", part
        elif isinstance(part, str):
            tag, data = b"s", part.encode()
        else:
            tag, data = b"i", str(part).encode()
        out += tag + len(data).to_bytes(4, "big") + data
    return bytes(out)


def _derive(data_key: bytes, label: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=label.encode())
    return hkdf.derive(data_key)


#: What ``json.dumps`` builds for every call with these arguments, built once: encoders keep no
#: state between calls, so the spelling is the same and each call skips the construction.
_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """One spelling per value, so hashes and MACs over JSON are reproducible."""
    return _CANONICAL.encode(value)


class Crypto:
    """Seals and opens values, and computes keyed lookups, for one data key.

    Nonces always come from ``os.urandom``, never from an injected token source: a deterministic
    test source reusing a nonce under one GCM key would break both confidentiality and integrity.
    """

    def __init__(self, data_key: bytes, *, encrypt: bool = True) -> None:
        if len(data_key) != DATA_KEY_BYTES:
            raise KeyFileError(
                f"The data key must be exactly {DATA_KEY_BYTES} bytes, got {len(data_key)}."
            )
        self.encrypt = encrypt
        self._aead = AESGCM(_derive(data_key, "smcp-box/encrypt"))
        # Keyed once; each use copies the keyed state, which halves the cost of a lookup.
        self._index_mac = hmac.new(_derive(data_key, "smcp-box/index"), digestmod=hashlib.sha256)
        self._audit_mac = hmac.new(_derive(data_key, "smcp-box/audit"), digestmod=hashlib.sha256)
        self._check_key = _derive(data_key, "smcp-box/key-check")

    # --- values -----------------------------------------------------------------------------

    def seal(self, plaintext: bytes, *context: Part) -> bytes:
        if not self.encrypt:
            return bytes([ENVELOPE_PLAIN]) + plaintext
        version = bytes([ENVELOPE_AES_GCM_V1])
        nonce = os.urandom(NONCE_BYTES)
        return version + nonce + self._aead.encrypt(nonce, plaintext, version + frame(*context))

    def open(self, blob: bytes, *context: Part) -> bytes:
        table = str(context[0]) if context else "?"
        if not blob:
            raise DecryptionFailed(f"An empty value was found in table {table}.")
        version = blob[0]
        if version == ENVELOPE_AES_GCM_V1:
            nonce = blob[1 : 1 + NONCE_BYTES]
            try:
                return self._aead.decrypt(
                    nonce, blob[1 + NONCE_BYTES :], blob[:1] + frame(*context)
                )
            except InvalidTag:
                raise DecryptionFailed(
                    f"A stored value in table {table} failed authentication: either the data "
                    "key is not the one this database was written with, or the row was "
                    "altered or moved. Restore the matching key file or a backup."
                ) from None
        if version == ENVELOPE_PLAIN and not self.encrypt:
            return blob[1:]
        raise DecryptionFailed(
            f"A stored value in table {table} has envelope version {version}, which this store "
            "does not accept (an unencrypted value in an encrypting store is refused)."
        )

    def seal_text(self, text: str, *context: Part) -> bytes:
        return self.seal(text.encode(), *context)

    def open_text(self, blob: bytes, *context: Part) -> str:
        return self.open(blob, *context).decode()

    def seal_json(self, value: Any, *context: Part) -> bytes:
        return self.seal(canonical_json(value).encode(), *context)

    def open_json(self, blob: bytes, *context: Part) -> Any:
        return json.loads(self.open(blob, *context))

    # --- keyed hashes -----------------------------------------------------------------------

    def lookup(self, *context: Part) -> bytes:
        """A stable keyed hash used as an index instead of a plaintext or reversible value."""
        return _mac(self._index_mac, frame(*context))

    def audit_mac(self, data: bytes) -> bytes:
        return _mac(self._audit_mac, data)

    def key_check(self) -> bytes:
        """A fingerprint of the data key, stored once so a wrong key is refused at open."""
        return hmac.digest(self._check_key, b"smcp-box key check v1", hashlib.sha256)


def _mac(keyed: hmac.HMAC, data: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(data)
    return mac.digest()
