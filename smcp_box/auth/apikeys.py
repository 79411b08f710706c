"""Bearer API keys, checked against the store's hashes, with a short verification cache.

Invariants:
- A key authenticates only for the tenant it was issued to; using it on another tenant fails
  exactly like an unknown key (401), so a key never confirms which other tenants exist.
- The secret never leaves this module: not in errors or logs. Failures are audited once, by the
  transport, which knows the request's context; this class writes no audit rows.
- The cache holds successful verifications for ``cache_ttl_s`` keyed by a hash of the secret, so
  the hot path costs no database round trip; a revocation made through this process clears it,
  one made by another process takes effect within the TTL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from smcp_box.errors import AuthError
from smcp_box.seams import Principal, TenantRuntime

BEARER_PREFIX = "bearer "


class ApiKeyRecordLike(Protocol):
    @property
    def key_id(self) -> str: ...

    @property
    def tenant(self) -> str: ...

    @property
    def revoked(self) -> bool: ...


class ApiKeyVerifier(Protocol):
    async def verify_api_key(self, secret: str) -> ApiKeyRecordLike | None: ...


@dataclass(frozen=True)
class _CachedKey:
    key_id: str
    tenant: str
    expires_at: float


class ApiKeyAuthenticator:
    """Implements the transport's Authenticator protocol for API keys and public tenants."""

    def __init__(
        self,
        verifier: ApiKeyVerifier,
        *,
        cache_ttl_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verifier = verifier
        self._cache_ttl_s = cache_ttl_s
        self._monotonic = monotonic
        self._cache: dict[bytes, _CachedKey] = {}

    def forget(self) -> None:
        """Drop cached verifications (after a revocation)."""
        self._cache.clear()

    async def authenticate(
        self, tenant: TenantRuntime, headers: Mapping[str, str], source_ip: str | None
    ) -> Principal:
        if tenant.auth_mode == "none":
            return Principal(tenant=tenant.name, subject="anonymous", method="none")
        secret = bearer_token(headers)
        if secret is None:
            raise AuthError(
                f"tenant {tenant.name!r} requires an API key: send 'Authorization: Bearer <key>' "
                f"(create one with: smcp-box key create {tenant.name})"
            )
        digest = hashlib.sha256(secret.encode()).digest()
        now = self._monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached.expires_at > now and cached.tenant == tenant.name:
            return Principal(
                tenant=cached.tenant,
                subject=f"key:{cached.key_id}",
                method="api_key",
                key_id=cached.key_id,
            )
        record = await self._verifier.verify_api_key(secret)
        if record is None or record.revoked or record.tenant != tenant.name:
            raise AuthError(f"the API key is not valid for tenant {tenant.name!r}")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = _CachedKey(record.key_id, record.tenant, now + self._cache_ttl_s)
        return Principal(
            tenant=record.tenant,
            subject=f"key:{record.key_id}",
            method="api_key",
            key_id=record.key_id,
        )


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credential of an ``Authorization: Bearer`` header; None when there is none."""
    value = headers.get("authorization") or headers.get("Authorization")
    if not value or not value.lower().startswith(BEARER_PREFIX):
        return None
    token = value[len(BEARER_PREFIX) :].strip()
    return token or None
