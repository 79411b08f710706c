"""Signed access tokens (RFC 9068 JWTs) for OAuth tenants: issue, verify, revoke, rotate keys.

Invariants:
- One algorithm: Ed25519 signatures (JWS ``alg`` "Ed25519", RFC 9864's name for EdDSA over
  Ed25519; joserfc warns that the older "EdDSA" name is deprecated). A token whose header names
  any other ``alg`` ("none", HS256 keyed with the public key, RS256, ...) is refused before any
  key is looked at, and joserfc is told to accept only this one as well.
- ``typ`` must be "at+jwt" (RFC 9068), so no other kind of JWT signed by these keys passes.
- Exactly one key signs (the newest); a new one is made every ``signing_key_rotation_days``.
  A retired key stays in the JWKS, and keeps verifying, until the last token it signed has
  expired (``retired_at + access_token_ttl_s``: only the active key signs, so no token it
  signed outlives that), and is then deleted.
- Private keys live only sealed in the store (see :mod:`smcp_box.store.signing_keys`) and in
  this object's memory; nothing here logs or returns them.
- Revocation is a denylist of token ids (``jti``) kept until the token would have expired.
  Verification is synchronous and in memory; :meth:`TokenService.refresh` (run by
  :meth:`~TokenService.rotate_if_due` on the box's schedule) picks up keys and revocations
  written by another process. Given the box's change feed, a revocation is also announced
  (``credential`` topic, ``token:<jti>``) and every box adds it to its denylist when it hears
  it, so a revoked token is refused fleet-wide within the notice's delay; a ``resync`` reloads
  the denylist from the store.
- Times come from the injected ``clock`` (seconds since the epoch), so tests control expiry
  and rotation.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import OKPKey

from smcp_box.auth.scopes import ALL_SCOPES, parse_scopes
from smcp_box.config import OAuthSettings
from smcp_box.errors import AuthError
from smcp_box.seams import Change, ChangeFeed, JsonObject
from smcp_box.store.changes import TOKEN_ID_PREFIX, TOPIC_CREDENTIAL, TOPIC_RESYNC

log = logging.getLogger(__name__)

#: The one signing algorithm (RFC 9864 "Ed25519" = EdDSA with the Ed25519 curve).
ALGORITHM: Final = "Ed25519"
#: RFC 9068 media type of a JWT access token, in its ``typ`` header.
JWT_TYP: Final = "at+jwt"
#: How often the box calls :meth:`TokenService.rotate_if_due`.
ROTATION_CHECK_S: Final = 60.0
_DAY_S: Final = 86_400


class SigningKeyRecordLike(Protocol):
    @property
    def kid(self) -> str: ...

    @property
    def private_jwk(self) -> JsonObject: ...

    @property
    def created_at(self) -> float: ...

    @property
    def retired_at(self) -> float | None: ...


class SigningKeyStore(Protocol):
    """The store methods the token service uses (the Store facade has them)."""

    async def signing_keys(self) -> Sequence[SigningKeyRecordLike]: ...

    async def rotate_signing_key(
        self, kid: str, private_jwk: JsonObject, *, replaces: str | None, now: float
    ) -> bool: ...

    async def delete_signing_keys_retired_before(self, before: float) -> int: ...

    async def revoke_token_id(self, jti: str, expires_at: float) -> None: ...

    async def revoked_token_ids(self, now: float) -> dict[str, float]: ...

    async def prune_revoked_token_ids(self, now: float) -> int: ...


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    issuer: str
    #: Who the token speaks for (the user name).
    subject: str
    tenant: str
    client_id: str
    scopes: frozenset[str]
    #: The resource URL it is for (RFC 8707); one tenant's, e.g. ``https://box/t/notes/mcp``.
    audience: str
    jti: str
    #: Seconds since the epoch.
    expires_at: int


@dataclass(frozen=True)
class _Key:
    kid: str
    key: OKPKey
    created_at: float
    retired_at: float | None


class TokenService:
    """Issues and verifies one box's access tokens. Call :meth:`start` before anything else."""

    def __init__(
        self,
        store: SigningKeyStore,
        settings: OAuthSettings,
        clock: Callable[[], float] = time.time,
        *,
        new_jti: Callable[[], str] = lambda: secrets.token_urlsafe(16),
        changes: ChangeFeed | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._new_jti = new_jti
        self._keys: dict[str, _Key] = {}
        self._active: _Key | None = None
        self._revoked: dict[str, float] = {}
        self._changes = changes
        self._refreshing: set[asyncio.Task[None]] = set()
        if changes is not None:
            changes.subscribe(TOPIC_CREDENTIAL, self._credential_changed)
            changes.subscribe(TOPIC_RESYNC, self._resync)

    def _credential_changed(self, change: Change) -> None:
        if change.payload.startswith(TOKEN_ID_PREFIX):
            # The notice carries no expiry (ids only): no token outlives a full TTL from now.
            jti = change.payload[len(TOKEN_ID_PREFIX) :]
            expires_at = self._clock() + self._settings.access_token_ttl_s
            self._revoked[jti] = max(self._revoked.get(jti, 0.0), expires_at)

    def _resync(self, _change: Change) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh_logged())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except Exception:
            log.exception("reloading signing keys and revocations after a resync failed")

    async def start(self) -> None:
        """Load the keys and revocations; make the first key, or a new one when due."""
        await self.rotate_if_due()

    async def refresh(self) -> None:
        """Reload keys and revocations from the store."""
        records = await self._store.signing_keys()
        keys = {
            r.kid: _Key(r.kid, OKPKey.import_key(r.private_jwk), r.created_at, r.retired_at)
            for r in records
        }
        self._keys = keys
        self._active = next((k for k in keys.values() if k.retired_at is None), None)
        now = self._clock()
        stored = await self._store.revoked_token_ids(now)
        # Keep revocations made here while the read was under way: a revoked token must never
        # pass again, not even until the next refresh.
        kept = {jti: exp for jti, exp in self._revoked.items() if exp > now}
        self._revoked = {**stored, **kept}

    async def rotate_if_due(self) -> bool:
        """Make a new signing key if there is none or the active one is older than
        ``signing_key_rotation_days``; delete retired keys none of whose tokens can still be
        valid, and revocations of expired tokens. True when a key was made."""
        await self.refresh()
        now = self._clock()
        active = self._active
        made = False
        if (
            active is None
            or now >= active.created_at + self._settings.signing_key_rotation_days * _DAY_S
        ):
            key = OKPKey.generate_key("Ed25519", private=True)
            kid = key.thumbprint()
            # False when another process rotated first: its key is loaded below instead.
            made = await self._store.rotate_signing_key(
                kid,
                key.as_dict(private=True),
                replaces=active.kid if active is not None else None,
                now=now,
            )
        await self._store.delete_signing_keys_retired_before(
            now - self._settings.access_token_ttl_s
        )
        await self._store.prune_revoked_token_ids(now)
        await self.refresh()
        return made

    def jwks(self) -> JsonObject:
        """The public keys (RFC 7517 set): the active key and the retired ones still valid."""
        keys = []
        for entry in sorted(self._keys.values(), key=lambda k: k.created_at):
            public = entry.key.as_dict(private=False)
            keys.append({**public, "kid": entry.kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}

    def issue_access_token(
        self,
        *,
        issuer: str,
        subject: str,
        tenant: str,
        audience: str,
        client_id: str,
        scopes: frozenset[str],
    ) -> tuple[str, AccessClaims]:
        """A signed access token for one tenant's resource URL, valid ``access_token_ttl_s``.

        ValueError for a scope outside :data:`~smcp_box.auth.scopes.ALL_SCOPES`.
        """
        active = self._active
        if active is None:
            raise RuntimeError("TokenService.start() must run before tokens are issued")
        parse_scopes(" ".join(scopes))  # ValueError naming any scope outside the vocabulary
        scope_text = " ".join(scope for scope in ALL_SCOPES if scope in scopes)
        now = int(self._clock())
        claims = AccessClaims(
            issuer=issuer,
            subject=subject,
            tenant=tenant,
            client_id=client_id,
            scopes=frozenset(scopes),
            audience=audience,
            jti=self._new_jti(),
            expires_at=now + self._settings.access_token_ttl_s,
        )
        payload = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": claims.expires_at,
            "jti": claims.jti,
            "client_id": client_id,
            "scope": scope_text,
            "tenant": tenant,
        }
        header = {"alg": ALGORITHM, "typ": JWT_TYP, "kid": active.kid}
        token = jwt.encode(header, payload, active.key, algorithms=[ALGORITHM])
        return token, claims

    def verify_access_token(self, token: str, *, audience: str) -> AccessClaims:
        """The claims of ``token`` if it is one of ours, unexpired, unrevoked and for
        ``audience``; else :class:`~smcp_box.errors.AuthError` saying which check failed."""
        return self._verify(token, audience)

    async def revoke_access_token(self, token: str) -> bool:
        """Deny ``token`` until it expires (RFC 7009). False, changing nothing, for a token
        that is not ours, already expired or malformed (which RFC 7009 also answers with 200)."""
        try:
            claims = self._verify(token, None)
        except AuthError:
            return False
        await self._store.revoke_token_id(claims.jti, claims.expires_at)
        self._revoked[claims.jti] = claims.expires_at
        if self._changes is not None:
            await self._changes.publish(TOPIC_CREDENTIAL, TOKEN_ID_PREFIX + claims.jti)
        return True

    def _verify(self, token: str, audience: str | None) -> AccessClaims:
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError):
            raise AuthError("the access token is not a JWT (three base64url parts)") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise AuthError(f"the access token's alg {alg!r} is not allowed (only {ALGORITHM})")
        if header.get("typ") != JWT_TYP:
            raise AuthError(f"the token is not an access token (typ must be {JWT_TYP!r})")
        entry = self._keys.get(str(header.get("kid")))
        if entry is None:
            raise AuthError(
                "the access token's signing key (kid) is unknown: it was not issued by this "
                "box, or so long ago that its key is gone; sign in again"
            )
        try:
            decoded = jwt.decode(token, entry.key, algorithms=[ALGORITHM])
        except BadSignatureError:
            raise AuthError("the access token's signature does not verify") from None
        except (JoseError, ValueError):
            raise AuthError("the access token could not be decoded") from None
        options: dict[str, Any] = {
            name: {"essential": True}
            for name in ("iss", "sub", "exp", "jti", "client_id", "tenant", "scope")
        }
        # A token with no scopes is still a token (it may call only scope-free methods).
        options["scope"]["allow_blank"] = True
        options["aud"] = {"essential": True}
        if audience is not None:
            options["aud"]["value"] = audience
        registry = jwt.JWTClaimsRegistry(now=int(self._clock()), **options)
        claims = decoded.claims
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise AuthError("the access token has expired: refresh it or sign in again") from None
        except MissingClaimError as exc:
            raise AuthError(f"the access token lacks claims: {exc.description}") from None
        except InvalidClaimError as exc:
            if exc.claim == "aud":
                raise AuthError(
                    f"the access token is for another resource, not {audience}"
                ) from None
            raise AuthError(f"the access token's {exc.claim!r} claim is not valid") from None
        if not all(isinstance(claims[name], str) for name in ("aud", "tenant", "scope")):
            # Ours always are; anything else was not issued by this box's rules.
            raise AuthError("the access token's aud, tenant and scope claims must be strings")
        jti = str(claims["jti"])
        if jti in self._revoked:
            raise AuthError("the access token has been revoked: sign in again")
        return AccessClaims(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            tenant=str(claims["tenant"]),
            client_id=str(claims["client_id"]),
            scopes=frozenset(str(claims["scope"]).split()),
            audience=str(claims["aud"]),
            jti=jti,
            expires_at=int(claims["exp"]),
        )
