"""The PostgreSQL backend's pure parts: parameter rewriting, lock keys, DSN redaction."""

from __future__ import annotations

import pytest

from smcp_box.store.pg import lock_key, redact_dsn, to_pg


def test_bare_parameters_are_numbered_in_order() -> None:
    assert (
        to_pg("SELECT a FROM t WHERE b = ? AND c = ?") == "SELECT a FROM t WHERE b = $1 AND c = $2"
    )


def test_numbered_parameters_keep_their_numbers() -> None:
    sql = "SELECT 1 WHERE (?1 IS NULL OR tenant = ?1) AND x = ?2"
    assert to_pg(sql) == "SELECT 1 WHERE ($1 IS NULL OR tenant = $1) AND x = $2"


def test_question_marks_in_literals_are_left_alone() -> None:
    assert to_pg("SELECT '?', 'it''s ?' WHERE a = ?") == "SELECT '?', 'it''s ?' WHERE a = $1"


def test_mixed_styles_follow_sqlite_numbering() -> None:
    sql = "UPDATE r SET a = ? WHERE u = ? AND (?3 IS NULL OR t = ?3) AND e > ?1 AND f = ?"
    assert to_pg(sql) == (
        "UPDATE r SET a = $1 WHERE u = $2 AND ($3 IS NULL OR t = $3) AND e > $1 AND f = $4"
    )


def test_lock_keys_are_signed_64_bit_and_framed() -> None:
    key = lock_key("kv", "tenant")
    assert -(1 << 63) <= key < (1 << 63)
    assert lock_key("kv", "tenant") == key
    assert lock_key("kv", "tenan", "t") != key
    assert lock_key("kvtenant") != key


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://smcp:pw@db:5432/smcp", "postgresql://smcp@db:5432/smcp"),
        (
            "postgresql://smcp@db/smcp?password=pw&sslmode=require",
            "postgresql://smcp@db/smcp?sslmode=require",
        ),
        ("postgresql://db/smcp", "postgresql://db/smcp"),
    ],
)
def test_dsn_passwords_never_show(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
