"""argon2id password hashing: round trip, wrong passwords, malformed hashes, rehash advice."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from smcp_box.auth.passwords import hash_password, needs_rehash, verify_password


def test_hash_verifies_its_password_only() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horsE")
    assert not verify_password(stored, "")


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize(
    "stored",
    ["", "plaintext", "$argon2id$v=19$m=65536,t=3,p=4$bad$bad", "$2b$12$notargon"],
)
def test_malformed_hash_is_a_mismatch_not_a_crash(stored: str) -> None:
    assert verify_password(stored, "anything") is False
    assert needs_rehash(stored) is True


def test_empty_password_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_needs_rehash_when_parameters_changed() -> None:
    assert needs_rehash(hash_password("pw")) is False
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert verify_password(weaker, "pw")
    assert needs_rehash(weaker) is True
