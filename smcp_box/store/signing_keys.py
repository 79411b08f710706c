"""The authorization server's signing keys and the denylist of revoked access tokens.

Invariants:
- A private key is stored only sealed (``jwk_enc``, bound to its kid), so the database file
  alone signs nothing; the kid is the public key's RFC 7638 thumbprint, which is public.
- At most one key is active (``retired_at IS NULL``; a partial unique index enforces it).
  :meth:`SigningKeys.rotate` retires the active key and inserts its successor in one
  transaction, and only if the active key is still the one the caller saw, so two boxes on one
  database that rotate at once make one new key, not two.
- Which keys to delete and when is the token service's rule (a retired key stays until the
  last token it signed has expired); this module only stores.
- A revoked token's row is needed only until the token would have expired anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from smcp_box.seams import JsonObject

from .crypto import Crypto
from .db import Database

_TABLE: Final = "signing_keys"


@dataclass(frozen=True)
class SigningKeyRecord:
    kid: str
    #: The private JWK (``kty``, ``crv``, ``x``, ``d``), as joserfc exports it.
    private_jwk: JsonObject
    created_at: float
    #: When a successor took over signing; None for the active key.
    retired_at: float | None


class SigningKeys:
    """Times come from the caller (the token service's clock), so one clock decides both
    when a key was retired and when it may go."""

    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto

    async def all(self) -> list[SigningKeyRecord]:
        """Every stored key, oldest first (the active one last)."""
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT kid, jwk_enc, created_at, retired_at FROM signing_keys"
                " ORDER BY created_at, kid"
            )
        return [
            SigningKeyRecord(
                kid, self._crypto.open_json(jwk_enc, _TABLE, kid, "jwk"), created_at, retired_at
            )
            for kid, jwk_enc, created_at, retired_at in rows
        ]

    async def rotate(
        self, kid: str, private_jwk: JsonObject, *, replaces: str | None, now: float
    ) -> bool:
        """Make ``kid`` the active key, retiring ``replaces`` (None: there is no active key).

        False, changing nothing, when the active key is not ``replaces`` any more (another
        box rotated first): the caller reloads the keys instead.
        """
        sealed = self._crypto.seal_json(private_jwk, _TABLE, kid, "jwk")
        async with self._db.write() as tx:
            # Boxes sharing a database may rotate at once: the first wins, the others see it.
            await tx.lock("signing_keys")
            row = await tx.one("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
            active = row[0] if row is not None else None
            if active != replaces:
                return False
            await tx.run("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL", (now,))
            await tx.run(
                "INSERT INTO signing_keys (kid, jwk_enc, created_at) VALUES (?, ?, ?)",
                (kid, sealed, now),
            )
        return True

    async def delete_retired_before(self, before: float) -> int:
        """Delete keys retired before ``before``; how many went."""
        rows = await self._db.write_one(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ? RETURNING 1",
            (before,),
        )
        return len(rows)

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        """Deny the access token ``jti`` until ``expires_at`` (idempotent)."""
        await self._db.write_one(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)"
            " ON CONFLICT (jti) DO UPDATE SET expires_at = CASE"
            " WHEN excluded.expires_at > revoked_tokens.expires_at THEN excluded.expires_at"
            " ELSE revoked_tokens.expires_at END",
            (jti, expires_at),
        )

    async def revoked_tokens(self, now: float) -> dict[str, float]:
        """Revoked token ids that have not yet expired, with their expiry."""
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?", (now,)
            )
        return {jti: expires_at for jti, expires_at in rows}

    async def prune_revoked_tokens(self, now: float) -> int:
        """Forget revocations of tokens that have expired by ``now``; how many went."""
        rows = await self._db.write_one(
            "DELETE FROM revoked_tokens WHERE expires_at <= ? RETURNING 1", (now,)
        )
        return len(rows)
