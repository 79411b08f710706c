"""Bearer API keys, checked against the store's hashes, with a per-box verification cache.

Invariants:
- A key authenticates only for the tenant it was issued to; using it on another tenant fails
  exactly like an unknown key (401), so a key never confirms which other tenants exist.
- The secret never leaves this module: not in errors or logs. Failures are audited once, by the
  transport, which knows the request's context; this class writes no audit rows.
- The cache holds successful verifications only, keyed by a hash of the secret, at most
  :data:`CACHE_MAX_ENTRIES` of them for at most ``cache_ttl_s``, so the hot path costs no
  database round trip. A failure is never cached: a key just created on another box works here
  at once, its first use going to the database.
- Every revocation is announced on the box's change feed (``credential`` topic, payload
  ``apikey:<key id>``; :meth:`ApiKeyAuthenticator.follow`), and every box drops that key's entry
  when it hears it: on one box before the revoking request returns, on a fleet within the
  NOTIFY's delay. The TTL is only the safety net for a notice lost on the way; a ``resync``
  (the feed reconnected) drops everything.
- A verification that was in flight when any revocation was heard is not cached, so a read
  made just before a revocation cannot put the revoked key back.
"""

from __future__ import annotations

import collections
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from smcp_box.errors import AuthError
from smcp_box.seams import Change, ChangeFeed, Principal, TenantRuntime
from smcp_box.store.changes import APIKEY_PREFIX, TOPIC_CREDENTIAL, TOPIC_RESYNC

BEARER_PREFIX = "bearer "
#: How long a verified key is trusted without asking the database again: the safety net for a
#: revocation notice that never arrived (revocations normally act within a second).
CACHE_TTL_S: Final = 30.0
#: Verified keys kept; the least recently used goes first.
CACHE_MAX_ENTRIES: Final = 10_000


def apikey_change(key_id: str) -> str:
    """The credential-topic payload announcing that key ``key_id`` was revoked."""
    return APIKEY_PREFIX + key_id


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
    #: What a verified key stands for, made once per verification (not once per request).
    principal: Principal
    expires_at: float

    @property
    def key_id(self) -> str | None:
        return self.principal.key_id


class ApiKeyAuthenticator:
    """Implements the transport's Authenticator protocol for API keys and public tenants."""

    def __init__(
        self,
        verifier: ApiKeyVerifier,
        *,
        cache_ttl_s: float = CACHE_TTL_S,
        max_entries: int = CACHE_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verifier = verifier
        self._cache_ttl_s = cache_ttl_s
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._cache: collections.OrderedDict[bytes, _CachedKey] = collections.OrderedDict()
        #: Bumped by every revocation heard; see the module's last invariant.
        self._generation = 0

    def follow(self, changes: ChangeFeed) -> Callable[[], None]:
        """Drop revoked keys' entries as ``changes`` announces them, and everything on a
        resync; returns the function that stops following."""
        stops = [
            changes.subscribe(TOPIC_CREDENTIAL, self._credential_changed),
            changes.subscribe(TOPIC_RESYNC, lambda _change: self.forget()),
        ]

        def stop_following() -> None:
            for stop in stops:
                stop()

        return stop_following

    def _credential_changed(self, change: Change) -> None:
        if change.payload.startswith(APIKEY_PREFIX):
            self.forget_key(change.payload[len(APIKEY_PREFIX) :])

    def forget_key(self, key_id: str) -> None:
        """Drop the cached verification of key ``key_id`` (it was revoked)."""
        self._generation += 1
        for digest in [d for d, cached in self._cache.items() if cached.key_id == key_id]:
            del self._cache[digest]

    def forget(self) -> None:
        """Drop every cached verification."""
        self._generation += 1
        self._cache.clear()

    @property
    def cached(self) -> int:
        """How many verified keys are cached."""
        return len(self._cache)

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
        if cached is not None and cached.expires_at > now:
            principal = cached.principal
            if principal.tenant == tenant.name:
                self._cache.move_to_end(digest)
                return principal
        generation = self._generation
        record = await self._verifier.verify_api_key(secret)
        if record is None or record.revoked or record.tenant != tenant.name:
            raise AuthError(f"the API key is not valid for tenant {tenant.name!r}")
        principal = Principal(
            tenant=record.tenant,
            subject=f"key:{record.key_id}",
            method="api_key",
            key_id=record.key_id,
        )
        if generation == self._generation:
            self._cache[digest] = _CachedKey(principal, now + self._cache_ttl_s)
            self._cache.move_to_end(digest)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return principal


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credential of an ``Authorization: Bearer`` header; None when there is none."""
    value = headers.get("authorization") or headers.get("Authorization")
    if not value or not value.lower().startswith(BEARER_PREFIX):
        return None
    token = value[len(BEARER_PREFIX) :].strip()
    return token or None
