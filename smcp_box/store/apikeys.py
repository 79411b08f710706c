"""API keys: stored only as keyed hashes, verified with one indexed lookup.

A key looks like ``smcp_<key id>_<secret>``: 16 hex characters of key id (a public handle, shown
in listings and audit rows) and 43 characters of URL-safe base64 encoding 32 random bytes. The
store keeps ``HMAC(index sub-key, key id, tenant, secret)``, never the secret; the secret is
returned once by :meth:`ApiKeys.create_api_key`. Binding the tenant into the hash means editing a
row's tenant column makes the key stop working rather than move it to another tenant.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from smcp_box.errors import StoreError

from .crypto import Crypto
from .db import Database, Row

KEY_PREFIX: Final = "smcp_"
KEY_ID_BYTES: Final = 8
SECRET_BYTES: Final = 32
#: last_used is written at most this often per key, so a burst of calls costs one write.
DEFAULT_LAST_USED_RESOLUTION: Final = 60.0

_KEY_FORMAT: Final = re.compile(r"smcp_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_KEY_ID_FORMAT: Final = re.compile(r"[0-9a-f]{16}")


def key_id_from(text: str) -> str | None:
    """The key id named by ``text``: a key id itself, or a whole key (whose id is public).

    None when ``text`` is neither. Callers that got a whole key must use only the id from here
    on: the secret part goes no further (not to the admin API, an error or the audit log).
    """
    if _KEY_ID_FORMAT.fullmatch(text):
        return text
    match = _KEY_FORMAT.fullmatch(text)
    return match[1] if match is not None else None


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    tenant: str
    label: str
    created_at: float
    last_used: float | None
    revoked: bool


_SELECT: Final = "SELECT key_id, tenant, label, created_at, last_used, revoked_at FROM api_keys"


def _record(row: Row) -> ApiKeyRecord:
    key_id, tenant, label, created_at, last_used, revoked_at = row
    return ApiKeyRecord(key_id, tenant, label, created_at, last_used, revoked_at is not None)


class ApiKeys:
    def __init__(
        self,
        db: Database,
        crypto: Crypto,
        clock: Callable[[], float],
        token_source: Callable[[int], bytes],
        *,
        last_used_resolution: float = DEFAULT_LAST_USED_RESOLUTION,
    ) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock
        self._token_source = token_source
        self._last_used_resolution = last_used_resolution

    def _secret_hash(self, key_id: str, tenant: str, secret: str) -> bytes:
        return self._crypto.lookup("apikey", key_id, tenant, secret)

    async def create_api_key(self, tenant: str, label: str) -> tuple[str, str]:
        """Create a key; returns (key id, full secret). The secret cannot be shown again."""
        # A key id collision (2^-64 per pair, or a test's fixed token source) is retried with
        # fresh tokens rather than surfacing as an error.
        for _ in range(3):
            key_id = self._token_source(KEY_ID_BYTES).hex()
            secret = base64.urlsafe_b64encode(self._token_source(SECRET_BYTES)).decode()
            secret = secret.rstrip("=")
            rows = await self._db.write_one(
                "INSERT INTO api_keys (key_id, tenant, label, secret_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING RETURNING 1",
                (key_id, tenant, label, self._secret_hash(key_id, tenant, secret), self._clock()),
            )
            if rows:
                return key_id, f"{KEY_PREFIX}{key_id}_{secret}"
        raise StoreError("Could not allocate a unique API key id; is the token source random?")

    async def verify_api_key(self, secret: str) -> ApiKeyRecord | None:
        """The key's record if ``secret`` is a valid, unrevoked key; else None.

        Records ``last_used`` (at most once per resolution interval).
        """
        match = _KEY_FORMAT.fullmatch(secret)
        if match is None:
            return None
        key_id, raw = match[1], match[2]
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT key_id, tenant, label, created_at, last_used, revoked_at, secret_hash"
                " FROM api_keys WHERE key_id = ?",
                (key_id,),
            )
        if row is None:
            return None
        record = _record(row[:-1])
        expected = self._secret_hash(key_id, record.tenant, raw)
        if not hmac.compare_digest(expected, row[-1]) or record.revoked:
            return None
        now = self._clock()
        if record.last_used is None or now - record.last_used >= self._last_used_resolution:
            await self._db.write_one(
                "UPDATE api_keys SET last_used = ? WHERE key_id = ?", (now, key_id)
            )
            record = replace(record, last_used=now)
        return record

    async def list_api_keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        async with self._db.read() as tx:
            rows = await tx.all(
                _SELECT
                + " WHERE (CAST(?1 AS TEXT) IS NULL OR tenant = ?1) ORDER BY created_at, key_id",
                (tenant,),
            )
        return [_record(row) for row in rows]

    async def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key for good; False if it does not exist or was already revoked."""
        rows = await self._db.write_one(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
            " RETURNING 1",
            (self._clock(), key_id),
        )
        return bool(rows)
