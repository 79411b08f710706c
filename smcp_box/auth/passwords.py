"""Password hashing for local user accounts: argon2id through argon2-cffi.

The stored form is argon2's PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``), which
carries its own parameters and salt, so hashes made with older parameters keep verifying and
:func:`needs_rehash` says when to replace one after a successful login.

Invariants: a password is never logged or put in an error message; verification compares in
constant time (argon2 does) and answers False, never raises, for a wrong password or a stored
value that is not an argon2 hash, so a corrupt row can lock one account but not crash a login.
"""

from __future__ import annotations

from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

#: argon2-cffi's defaults follow RFC 9106's second recommended option (argon2id, 64 MiB, t=3,
#: p=4); one hasher serves the process, it holds only those parameters.
_HASHER: Final = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id PHC string for ``password`` with a fresh random salt."""
    if not password:
        raise ValueError("a password must not be empty")
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True if ``password`` matches ``stored``; False on a mismatch or a malformed hash."""
    try:
        return _HASHER.verify(stored, password)
    except (Argon2Error, ValueError):
        # VerifyMismatchError, VerificationError (Argon2Error); InvalidHashError (ValueError).
        return False


def needs_rehash(stored: str) -> bool:
    """True if ``stored`` was made with other parameters than today's (or is not argon2 at all),
    so the caller should hash the password again after verifying it."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True
