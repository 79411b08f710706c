"""Publisher signatures: who vouches for a module and the manifest fields that decide its power.

A publisher signs offline with an Ed25519 key (``smcp-box publisher keygen``, ``smcp-box sign``).
The detached signature sits beside the module as ``<module>.sig`` and covers a canonical
encoding (:func:`signed_payload`) of the module's SHA-256 and the tenant.toml fields that are
security-relevant: name, kind, the tool-definition pin, the limits and the auth mode. Anything
else in tenant.toml (description, config, hosts) an admin may change without re-signing.

The box checks the signature at load, reload and ``vet``; the verdict is a
:class:`SignatureCheck`, or :class:`~smcp_box.errors.ModuleRejected` naming the reason (bad,
missing when required, untrusted).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from smcp_box.config import PUBLISHER_KEY_PATTERN
from smcp_box.errors import ConfigError, ModuleRejected

#: Names the payload's encoding; a future encoding gets a new name, never a changed meaning.
SIGNATURE_FORMAT: Final = "smcp-box-signature/1"
SIGNATURE_SUFFIX: Final = ".sig"
PRIVATE_KEY_NAME: Final = "publisher.key"
PUBLIC_KEY_NAME: Final = "publisher.pub"
_KEY_PREFIX: Final = "ed25519:"


@dataclass(frozen=True)
class SignedFields:
    """What a signature covers, taken from a tenant.toml and its module."""

    name: str
    kind: str
    module_sha256: str
    tools_sha256: str | None
    limits: Mapping[str, int]
    auth: str


def signed_payload(fields: SignedFields) -> bytes:
    """The bytes signed: canonical JSON (sorted keys, no blanks, ASCII), one value per field."""
    document: dict[str, Any] = {
        "format": SIGNATURE_FORMAT,
        "name": fields.name,
        "kind": fields.kind,
        "module_sha256": fields.module_sha256.lower(),
        "tools_sha256": fields.tools_sha256.lower() if fields.tools_sha256 else None,
        "limits": dict(sorted(fields.limits.items())),
        "auth": fields.auth,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    if not re.fullmatch(PUBLISHER_KEY_PATTERN, text):
        raise ValueError(f"{text!r} is not a publisher key (ed25519:<base64 of 32 bytes>)")
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text[len(_KEY_PREFIX) :]))


def signature_path(module_path: Path) -> Path:
    return module_path.with_name(module_path.name + SIGNATURE_SUFFIX)


# --- the publisher's side: keys and signing -------------------------------------------------


def generate_keypair(out_dir: Path) -> str:
    """Write ``publisher.key`` (PKCS#8 PEM, mode 0600) and ``publisher.pub`` in ``out_dir``;
    return the public key text. Refuses to overwrite an existing key: losing a publisher key
    strands every module signed with it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} already exists; choose another folder or move it away")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL with the mode at creation: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    text = public_key_text(key.public_key())
    public_path.write_text(text + "\n")
    return text


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the publisher key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not an unencrypted PEM private key ({exc}); make one with "
            "`smcp-box publisher keygen DIR`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key; publisher keys are Ed25519")
    return key


def sign(fields: SignedFields, key: Ed25519PrivateKey, module_path: Path) -> Path:
    """Write the detached signature beside the module; return its path."""
    document = {
        "format": SIGNATURE_FORMAT,
        "publisher": public_key_text(key.public_key()),
        "signature": base64.b64encode(key.sign(signed_payload(fields))).decode("ascii"),
    }
    path = signature_path(module_path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)
    return path


# --- the box's side: checking ---------------------------------------------------------------

SignatureStatus = Literal["signed", "unsigned"]


@dataclass(frozen=True)
class SignaturePolicy:
    """The effective policy for one tenant: the box's ``[vetting]`` tightened by its tenant.toml."""

    trusted: frozenset[str]
    required: bool


def effective_policy(
    trusted: Collection[str],
    required: bool,
    tenant_publishers: Collection[str] | None = None,
    tenant_requires: bool = False,
) -> SignaturePolicy:
    """A tenant.toml can narrow the trusted keys (to those it lists that the box trusts too)
    and require a signature; it can never widen what the box accepts."""
    keys = frozenset(trusted)
    if tenant_publishers is not None:
        keys &= frozenset(tenant_publishers)
    return SignaturePolicy(trusted=keys, required=required or tenant_requires)


@dataclass(frozen=True)
class SignatureCheck:
    status: SignatureStatus
    #: The publisher's key text when signed.
    publisher: str | None
    #: For an accepted unsigned module: what the admin should know.
    warning: str | None = None


def check_signature(
    tenant: str, module_path: Path, fields: SignedFields, policy: SignaturePolicy
) -> SignatureCheck:
    """The verdict on ``module_path``'s signature, or ModuleRejected saying why it is refused."""
    path = signature_path(module_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if policy.required:
            raise ModuleRejected(
                f"tenant {tenant!r}: the module is not signed ({path.name} is missing) and "
                "signatures are required ([vetting] require_signature); have its publisher "
                "sign it: smcp-box sign TENANT_DIR --key KEY",
                data={"tenant": tenant, "signature": "missing"},
            ) from None
        return SignatureCheck(
            "unsigned",
            None,
            f"tenant {tenant!r}: the module is not signed, so nobody vouches for it; it is "
            "served because [vetting] require_signature is false",
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(tenant, path, f"it cannot be read ({exc})") from None
    try:
        document = json.loads(text)
        publisher = document["publisher"]
        signature = base64.b64decode(document["signature"], validate=True)
        if document.get("format") != SIGNATURE_FORMAT:
            raise ValueError(f"format {document.get('format')!r} is not {SIGNATURE_FORMAT}")
        key = parse_public_key(publisher)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _bad(tenant, path, f"it is malformed ({exc})") from None
    try:
        key.verify(signature, signed_payload(fields))
    except InvalidSignature:
        raise _bad(
            tenant,
            path,
            f"it does not match the module and tenant.toml (signed by {publisher}); the module "
            "or a signed field (name, kind, sha256, tools_sha256, limits, auth) changed since "
            "it was signed, or the signature was altered",
        ) from None
    if publisher not in policy.trusted:
        raise ModuleRejected(
            f"tenant {tenant!r}: the module is signed by {publisher}, which is not a trusted "
            "publisher; if you trust it, add it to [vetting] trusted_publishers (and to the "
            "tenant.toml's [vetting] publishers, if it lists any)",
            data={"tenant": tenant, "signature": "untrusted", "publisher": publisher},
        )
    return SignatureCheck("signed", publisher)


def _bad(tenant: str, path: Path, why: str) -> ModuleRejected:
    return ModuleRejected(
        f"tenant {tenant!r}: the signature {path.name} is bad: {why}",
        data={"tenant": tenant, "signature": "bad"},
    )


__all__ = [
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "SIGNATURE_FORMAT",
    "SignatureCheck",
    "SignaturePolicy",
    "SignedFields",
    "check_signature",
    "effective_policy",
    "generate_keypair",
    "load_private_key",
    "parse_public_key",
    "public_key_text",
    "sign",
    "signature_path",
    "signed_payload",
]
