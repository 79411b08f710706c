"""What the authorization server keeps: clients, authorization codes, refresh token families,
consents and login sessions.

Secrets (codes, refresh tokens, login session ids) are never stored: rows are found by
``lookup("oauth_*", secret)`` and the secret is handed out once by the caller that made it.
Grant details (redirect URI, PKCE challenge, resource, scope) are sealed with AAD bound to the
row's hash, so a row's sealed column cannot be moved to another row.

Invariants:
- A code is consumed by one atomic UPDATE: two concurrent redemptions cannot both succeed. A
  second redemption finds it used, and the refresh family issued from it is revoked (RFC 6749
  section 4.1.2: tokens issued from a reused code SHOULD be revoked).
- A refresh token is claimed for rotation by one atomic UPDATE. Presenting a token already
  rotated away is reuse: the whole family is revoked in the same transaction, so the token
  that was stolen and the one the client holds both stop working (OAuth 2.1 section 4.3.1).
- Expiry is judged with the store's clock; expired rows are refused, and pruned by
  :meth:`OAuthRecords.prune`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from .crypto import Crypto
from .db import Database, Row, Tx

ClientKind = Literal["preregistered", "dynamic"]
#: What became of a code or refresh token presented for redemption.
Redemption = Literal["ok", "unknown", "expired", "reused", "revoked"]

_SELECT_CLIENT: Final = "SELECT client_id, kind, metadata_enc, created_at FROM oauth_clients"


@dataclass(frozen=True)
class ClientRecord:
    """A client the box registered itself (pre-registered by an admin, or by DCR). Clients
    identified by a metadata document URL (CIMD) are fetched, not stored. Every client is
    public (``token_endpoint_auth_method`` "none"): PKCE, not a secret, binds its code."""

    client_id: str
    kind: ClientKind
    client_name: str
    redirect_uris: tuple[str, ...]
    created_at: float
    client_uri: str | None = None
    logo_uri: str | None = None
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")

    def metadata(self) -> dict[str, Any]:
        return {
            "client_name": self.client_name,
            "redirect_uris": list(self.redirect_uris),
            "client_uri": self.client_uri,
            "logo_uri": self.logo_uri,
            "grant_types": list(self.grant_types),
        }


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for; the token request must match it."""

    client_id: str
    username: str
    tenant: str
    resource: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str


@dataclass(frozen=True)
class RefreshRecord:
    family: str
    client_id: str
    username: str
    tenant: str
    resource: str
    scope: str
    expires_at: float


@dataclass(frozen=True)
class LiveFamily:
    """One live refresh-token family (a client's standing grant from one sign-in), as admins
    see it: never the token or its hash."""

    client_id: str
    tenant: str
    scope: str
    #: When the family began (its first token), and when its current token expires.
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class RevokedAccess:
    """What revoking a user's access took away: live refresh families and consents."""

    families: int
    consents: int


class OAuthRecords:
    def __init__(self, db: Database, crypto: Crypto, clock: Callable[[], float]) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock

    # --- clients ------------------------------------------------------------------------------

    async def add_client(self, client: ClientRecord) -> bool:
        """Store ``client``; False if its client_id is taken."""
        sealed = self._crypto.seal_json(
            client.metadata(), "oauth_clients", client.client_id, "metadata"
        )
        rows = await self._db.write_one(
            "INSERT INTO oauth_clients (client_id, kind, metadata_enc, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING RETURNING 1",
            (client.client_id, client.kind, sealed, client.created_at),
        )
        return bool(rows)

    async def get_client(self, client_id: str) -> ClientRecord | None:
        async with self._db.read() as tx:
            row = await tx.one(_SELECT_CLIENT + " WHERE client_id = ?", (client_id,))
        return None if row is None else self._client(row)

    async def list_clients(self) -> list[ClientRecord]:
        async with self._db.read() as tx:
            rows = await tx.all(_SELECT_CLIENT + " ORDER BY created_at, client_id")
        return [self._client(row) for row in rows]

    async def count_clients(self, kind: ClientKind) -> int:
        async with self._db.read() as tx:
            row = await tx.one("SELECT count(*) FROM oauth_clients WHERE kind = ?", (kind,))
        return int(row[0]) if row else 0

    async def remove_client(self, client_id: str) -> bool:
        """Remove a client and revoke every refresh token issued to it."""
        async with self._db.write() as tx:
            rows = await tx.all(
                "DELETE FROM oauth_clients WHERE client_id = ? RETURNING 1", (client_id,)
            )
            if rows:
                await tx.run(
                    "UPDATE oauth_refresh SET revoked_at = ? WHERE client_id = ?"
                    " AND revoked_at IS NULL",
                    (self._clock(), client_id),
                )
                await tx.run("DELETE FROM oauth_consents WHERE client_id = ?", (client_id,))
        return bool(rows)

    def _client(self, row: Row) -> ClientRecord:
        client_id, kind, sealed, created_at = row
        meta = self._crypto.open_json(sealed, "oauth_clients", client_id, "metadata")
        return ClientRecord(
            client_id=client_id,
            kind=kind,
            client_name=meta["client_name"],
            redirect_uris=tuple(meta["redirect_uris"]),
            created_at=created_at,
            client_uri=meta.get("client_uri"),
            logo_uri=meta.get("logo_uri"),
            grant_types=tuple(meta.get("grant_types", ClientRecord.grant_types)),
        )

    # --- authorization codes ------------------------------------------------------------------

    async def save_code(self, code: str, grant: CodeGrant, ttl_s: float) -> None:
        code_hash = self._crypto.lookup("oauth_code", code)
        sealed = self._crypto.seal_json(grant.__dict__, "oauth_codes", code_hash, "grant")
        now = self._clock()
        await self._db.write_one(
            "INSERT INTO oauth_codes (code_hash, grant_enc, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (code_hash, sealed, now, now + ttl_s),
        )

    async def consume_code(self, code: str) -> tuple[Redemption, CodeGrant | None]:
        """Use ``code`` once. "reused" means it was redeemed before: the refresh family issued
        from it is revoked now. The grant comes back only with "ok"."""
        code_hash = self._crypto.lookup("oauth_code", code)
        now = self._clock()
        async with self._db.write() as tx:
            # Single use even when two boxes redeem the same code at once.
            await tx.lock("oauth_code", code_hash.hex())
            row = await tx.one(
                "SELECT grant_enc, expires_at, used_at, family FROM oauth_codes"
                " WHERE code_hash = ?",
                (code_hash,),
            )
            if row is None:
                return "unknown", None
            sealed, expires_at, used_at, family = row
            if used_at is not None:
                if family is not None:
                    await self._revoke_family(tx, family, now)
                return "reused", None
            await tx.run("UPDATE oauth_codes SET used_at = ? WHERE code_hash = ?", (now, code_hash))
        if expires_at <= now:
            return "expired", None
        grant = CodeGrant(**self._crypto.open_json(sealed, "oauth_codes", code_hash, "grant"))
        return "ok", grant

    async def link_code_family(self, code: str, family: str) -> None:
        """Remember which refresh family ``code`` started, so a reuse of the code revokes it."""
        code_hash = self._crypto.lookup("oauth_code", code)
        await self._db.write_one(
            "UPDATE oauth_codes SET family = ? WHERE code_hash = ?", (family, code_hash)
        )

    # --- refresh tokens -----------------------------------------------------------------------

    async def save_refresh(self, token: str, record: RefreshRecord) -> None:
        token_hash = self._crypto.lookup("oauth_refresh", token)
        await self._db.write_one(
            "INSERT INTO oauth_refresh (token_hash, family, client_id, username, tenant,"
            " resource, scope, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash,
                record.family,
                record.client_id,
                record.username,
                record.tenant,
                record.resource,
                record.scope,
                self._clock(),
                record.expires_at,
            ),
        )

    async def claim_refresh(self, token: str) -> tuple[Redemption, RefreshRecord | None]:
        """Take ``token`` for one rotation. A token already rotated away is reuse: its family
        is revoked in the same transaction. The record comes back with "ok", and with "reused"
        (so the caller can audit whose family it was)."""
        token_hash = self._crypto.lookup("oauth_refresh", token)
        now = self._clock()
        async with self._db.write() as tx:
            # One rotation per token even when two boxes are handed it at once.
            await tx.lock("oauth_refresh", token_hash.hex())
            row = await tx.one(
                _SELECT_REFRESH + ", rotated_at, revoked_at FROM oauth_refresh"
                " WHERE token_hash = ?",
                (token_hash,),
            )
            if row is None:
                return "unknown", None
            record, rotated_at, revoked_at = _refresh(row[:-2]), row[-2], row[-1]
            if revoked_at is not None:
                return "revoked", record
            if rotated_at is not None:
                await self._revoke_family(tx, record.family, now)
                return "reused", record
            if record.expires_at <= now:
                return "expired", record
            await tx.run(
                "UPDATE oauth_refresh SET rotated_at = ? WHERE token_hash = ?", (now, token_hash)
            )
        return "ok", record

    async def find_refresh(self, token: str) -> RefreshRecord | None:
        """The live (unrevoked, unexpired) record of ``token``, for revocation requests."""
        token_hash = self._crypto.lookup("oauth_refresh", token)
        async with self._db.read() as tx:
            row = await tx.one(
                _SELECT_REFRESH + " FROM oauth_refresh WHERE token_hash = ?"
                " AND revoked_at IS NULL AND expires_at > ?",
                (token_hash, self._clock()),
            )
        return None if row is None else _refresh(row)

    async def revoke_family(self, family: str) -> int:
        """Revoke every token of ``family``; how many were live."""
        async with self._db.write() as tx:
            return await self._revoke_family(tx, family, self._clock())

    async def revoke_user_refresh(self, username: str, tenant: str | None = None) -> int:
        """Revoke ``username``'s refresh tokens (on one tenant, or all); how many were live."""
        rows = await self._db.write_one(
            "UPDATE oauth_refresh SET revoked_at = ? WHERE username = ?"
            " AND (CAST(?3 AS TEXT) IS NULL OR tenant = ?3) AND revoked_at IS NULL"
            " AND expires_at > ?1"
            " RETURNING 1",
            (self._clock(), username, tenant),
        )
        return len(rows)

    async def live_families(self, username: str) -> list[LiveFamily]:
        """``username``'s live refresh families: those whose current token (not rotated away,
        not revoked) has not expired, oldest first."""
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT r.client_id, r.tenant, r.scope,"
                " (SELECT min(f.created_at) FROM oauth_refresh f WHERE f.family = r.family),"
                " r.expires_at FROM oauth_refresh r WHERE r.username = ?"
                " AND r.rotated_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > ?"
                " ORDER BY 4, r.tenant, r.client_id",
                (username, self._clock()),
            )
        return [LiveFamily(c, t, s, float(created), float(e)) for c, t, s, created, e in rows]

    async def revoke_user_access(self, username: str, tenant: str | None = None) -> RevokedAccess:
        """Revoke every refresh token of ``username`` (on one tenant, or all) and forget its
        consents there, in one transaction; counts the families that were live. Called when a
        grant is revoked or the user removed, so granting again later revives nothing."""
        now = self._clock()
        where = "username = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant = ?2)"
        async with self._db.write() as tx:
            live = await tx.one(
                f"SELECT count(DISTINCT family) FROM oauth_refresh WHERE {where}"  # noqa: S608 (fixed text)
                " AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
                (username, tenant, now),
            )
            await tx.run(
                f"UPDATE oauth_refresh SET revoked_at = ?3 WHERE {where}"  # noqa: S608 (fixed text)
                " AND revoked_at IS NULL",
                (username, tenant, now),
            )
            consents = await tx.all(
                f"DELETE FROM oauth_consents WHERE {where} RETURNING 1",  # noqa: S608 (fixed text)
                (username, tenant),
            )
        return RevokedAccess(int(live[0]) if live else 0, len(consents))

    async def _revoke_family(self, tx: Tx, family: str, now: float) -> int:
        rows = await tx.all(
            "UPDATE oauth_refresh SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL"
            " RETURNING 1",
            (now, family),
        )
        return len(rows)

    # --- consents -----------------------------------------------------------------------------

    async def save_consent(self, username: str, client_id: str, tenant: str, scope: str) -> None:
        await self._db.write_one(
            "INSERT INTO oauth_consents (username, client_id, tenant, scope, granted_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username, client_id, tenant)"
            " DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
            (username, client_id, tenant, scope, self._clock()),
        )

    async def consent(self, username: str, client_id: str, tenant: str) -> frozenset[str]:
        """The scopes ``username`` last approved for ``client_id`` on ``tenant``."""
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT scope FROM oauth_consents WHERE username = ? AND client_id = ?"
                " AND tenant = ?",
                (username, client_id, tenant),
            )
        return frozenset(str(row[0]).split()) if row else frozenset()

    # --- login sessions -----------------------------------------------------------------------

    async def create_login_session(self, session_id: str, username: str, ttl_s: float) -> None:
        now = self._clock()
        sid_hash = self._crypto.lookup("oauth_login", session_id)
        async with self._db.write() as tx:
            await tx.run("DELETE FROM oauth_logins WHERE expires_at <= ?", (now,))
            await tx.run(
                "INSERT INTO oauth_logins (sid_hash, username, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (sid_hash, username, now, now + ttl_s),
            )

    async def login_session_user(self, session_id: str) -> str | None:
        """Who is signed in with the session cookie ``session_id`` (None if nobody, or expired)."""
        sid_hash = self._crypto.lookup("oauth_login", session_id)
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT username FROM oauth_logins WHERE sid_hash = ? AND expires_at > ?",
                (sid_hash, self._clock()),
            )
        return None if row is None else str(row[0])

    async def end_login_session(self, session_id: str) -> None:
        sid_hash = self._crypto.lookup("oauth_login", session_id)
        await self._db.write_one("DELETE FROM oauth_logins WHERE sid_hash = ?", (sid_hash,))

    def login_csrf(self, session_id: str) -> str:
        """The CSRF token of the browser holding cookie ``session_id``: a keyed hash of it, so it
        needs no row (the login form has one before anyone signs in) and a page of another
        site, which cannot read the cookie, cannot compute it."""
        return self._crypto.lookup("oauth_csrf", session_id).hex()

    # --- housekeeping -------------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete expired codes, logins and refresh tokens; how many rows went."""
        now = self._clock()
        total = 0
        async with self._db.write() as tx:
            for statement in _PRUNE:
                total += len(await tx.all(statement, (now,)))
        return total


_SELECT_REFRESH: Final = "SELECT family, client_id, username, tenant, resource, scope, expires_at"


_PRUNE: Final = tuple(
    f"DELETE FROM {table} WHERE expires_at <= ? RETURNING 1"  # noqa: S608 (fixed table names)
    for table in ("oauth_codes", "oauth_logins", "oauth_refresh")
)


def _refresh(row: Row) -> RefreshRecord:
    family, client_id, username, tenant, resource, scope, expires_at = row
    return RefreshRecord(family, client_id, username, tenant, resource, scope, expires_at)
