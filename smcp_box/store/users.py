"""Local user accounts (people who log in to the OAuth pages) and their per-tenant grants.

A user has a name, an argon2id password hash (made by ``smcp_box.auth.passwords``; this module
never sees a password), a creation time and a disabled flag. A grant says which scopes a user
may be given on one tenant; no grant, no access to that tenant.

Invariants:
- Usernames are validated here, the one place every path to the table passes: 1-64 characters of
  lowercase letters, digits and ``. _ - @``, starting with a letter or digit. Lowercase only,
  so "Alice" and "alice" can never be two accounts (login lowercases what is typed).
- Password hashes and grant scopes are sealed (AES-GCM, AAD bound to the row), so a copy of the
  database file neither offers the hashes to an offline guesser nor lets a row's grant be moved
  to another user or tenant. Listings never return the hash outside :class:`UserRecord`, and
  admin surfaces never show it.
- Deleting a user deletes its grants (foreign key, ON DELETE CASCADE).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from smcp_box.errors import AlreadyExists

from .crypto import Crypto
from .db import Database, Row

_USERNAME: Final = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_USERS: Final = "users"
_GRANTS: Final = "user_grants"


def username_problem(username: str) -> str | None:
    """Why ``username`` is not a valid username, or None when it is."""
    if _USERNAME.fullmatch(username):
        return None
    return (
        f"invalid username {username!r}: use 1-64 lowercase letters, digits and . _ - @, "
        "starting with a letter or digit"
    )


def _check(username: str) -> None:
    problem = username_problem(username)
    if problem is not None:
        raise ValueError(problem)


@dataclass(frozen=True)
class UserRecord:
    username: str
    #: The argon2id PHC string. For verification only: never shown, logged or sent anywhere.
    password_hash: str = field(repr=False)
    created_at: float
    disabled: bool


class Users:
    def __init__(self, db: Database, crypto: Crypto, clock: Callable[[], float]) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock

    def _seal_hash(self, username: str, password_hash: str) -> bytes:
        return self._crypto.seal_text(password_hash, _USERS, username, "password")

    def _record(self, row: Row) -> UserRecord:
        username, password_enc, created_at, disabled = row
        password_hash = self._crypto.open_text(password_enc, _USERS, username, "password")
        return UserRecord(username, password_hash, float(created_at), bool(disabled))

    async def create_user(self, username: str, password_hash: str) -> UserRecord:
        """Add a user; :class:`AlreadyExists` if the name is taken, ValueError if it is invalid."""
        _check(username)
        now = self._clock()
        rows = await self._db.write_one(
            "INSERT INTO users (username, password_enc, created_at, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (username) DO NOTHING RETURNING 1",
            (username, self._seal_hash(username, password_hash), now, now),
        )
        if not rows:
            raise AlreadyExists(f"a user named {username!r} already exists")
        return UserRecord(username, password_hash, now, False)

    async def get_user(self, username: str) -> UserRecord | None:
        async with self._db.read() as tx:
            row = await tx.one(
                "SELECT username, password_enc, created_at, disabled FROM users WHERE username = ?",
                (username,),
            )
        return None if row is None else self._record(row)

    async def list_users(self) -> list[UserRecord]:
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT username, password_enc, created_at, disabled FROM users ORDER BY username"
            )
        return [self._record(row) for row in rows]

    async def set_password(self, username: str, password_hash: str) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        rows = await self._db.write_one(
            "UPDATE users SET password_enc = ?, updated_at = ? WHERE username = ? RETURNING 1",
            (self._seal_hash(username, password_hash), self._clock(), username),
        )
        return bool(rows)

    async def set_user_disabled(self, username: str, disabled: bool) -> bool:
        """Disable (or enable again) a user's logins; False if there is no such user."""
        rows = await self._db.write_one(
            "UPDATE users SET disabled = ?, updated_at = ? WHERE username = ? RETURNING 1",
            (int(disabled), self._clock(), username),
        )
        return bool(rows)

    async def delete_user(self, username: str) -> bool:
        """Delete a user and its grants; False if there is no such user."""
        rows = await self._db.write_one(
            "DELETE FROM users WHERE username = ? RETURNING 1", (username,)
        )
        return bool(rows)

    async def set_user_grant(self, username: str, tenant: str, scopes: Iterable[str]) -> bool:
        """Grant (or replace the grant of) ``scopes`` on ``tenant``; False if no such user.
        Which scope names and tenants are valid is the caller's to check."""
        sealed = self._crypto.seal_json(sorted(set(scopes)), _GRANTS, username, tenant, "scopes")
        async with self._db.write() as tx:
            if await tx.one("SELECT 1 FROM users WHERE username = ?", (username,)) is None:
                return False
            await tx.run(
                "INSERT INTO user_grants (username, tenant, scopes_enc, granted_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (username, tenant) DO UPDATE SET"
                " scopes_enc = excluded.scopes_enc, granted_at = excluded.granted_at",
                (username, tenant, sealed, self._clock()),
            )
        return True

    async def user_grants(self, username: str) -> dict[str, frozenset[str]]:
        """Tenant → granted scopes, for one user (empty if none or no such user)."""
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT tenant, scopes_enc FROM user_grants WHERE username = ? ORDER BY tenant",
                (username,),
            )
        return {
            tenant: frozenset(self._crypto.open_json(sealed, _GRANTS, username, tenant, "scopes"))
            for tenant, sealed in rows
        }

    async def remove_user_grant(self, username: str, tenant: str) -> bool:
        """Drop one grant; False if the user had none on ``tenant``."""
        rows = await self._db.write_one(
            "DELETE FROM user_grants WHERE username = ? AND tenant = ? RETURNING 1",
            (username, tenant),
        )
        return bool(rows)

    async def remove_tenant_grants(self, tenant: str) -> int:
        """Drop every grant on ``tenant`` (it was removed); how many there were."""
        rows = await self._db.write_one(
            "DELETE FROM user_grants WHERE tenant = ? RETURNING 1", (tenant,)
        )
        return len(rows)
