"""The data key file and the encryption envelope."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from smcp_box.errors import DecryptionFailed, KeyFileError
from smcp_box.store import load_data_key
from smcp_box.store.crypto import ENVELOPE_AES_GCM_V1, ENVELOPE_PLAIN, Crypto, frame

KEY = bytes(range(32))


def write_key(path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = os.umask(0)  # a permissive umask must not widen the key file
    try:
        key = load_data_key(state, None)
    finally:
        os.umask(old)
    path = state / "data.key"
    assert len(key) == 32
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
    assert load_data_key(state, None) == key
    assert sorted(p.name for p in state.iterdir()) == ["data.key"]  # no temp files left


def test_key_file_uses_token_source(tmp_path: Path) -> None:
    assert load_data_key(tmp_path, None, token_source=lambda n: b"\x05" * n) == b"\x05" * 32


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    write_key(tmp_path / "data.key", KEY, mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_data_key(tmp_path, None)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_file_of_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    write_key(tmp_path / "data.key", b"a" * size, 0o600)
    with pytest.raises(KeyFileError, match="exactly 32 raw bytes"):
        load_data_key(tmp_path, None)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data.key").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_data_key(tmp_path, None)


def test_credentials_dir_is_preferred(tmp_path: Path) -> None:
    creds, state = tmp_path / "creds", tmp_path / "state"
    creds.mkdir()
    write_key(creds / "data-key", KEY, 0o400)
    assert load_data_key(state, creds) == KEY
    assert not state.exists()  # nothing created when the credential exists
    state.mkdir()
    write_key(state / "data.key", b"\x09" * 32, 0o600)
    assert load_data_key(state, creds) == KEY


def test_credentials_dir_without_the_credential_falls_back(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    key = load_data_key(tmp_path / "state", creds)
    assert (tmp_path / "state" / "data.key").read_bytes() == key
    assert list(creds.iterdir()) == []


def test_bad_credential_is_refused_not_skipped(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    write_key(creds / "data-key", KEY, 0o644)
    with pytest.raises(KeyFileError):
        load_data_key(tmp_path / "state", creds)


def test_frame_is_unambiguous() -> None:
    assert frame("a|b", "c") != frame("a", "b|c")
    assert frame("ab") != frame("a", "b")
    assert frame(b"1") != frame("1") != frame(1)


def test_seal_round_trip_and_layout() -> None:
    crypto = Crypto(KEY)
    blob = crypto.seal(b"hello", "kv", "acme", b"\x01", "value")
    assert blob[0] == ENVELOPE_AES_GCM_V1
    assert len(blob) == 1 + 12 + 5 + 16
    assert crypto.open(blob, "kv", "acme", b"\x01", "value") == b"hello"
    # Fresh nonce per value: the same plaintext never seals to the same bytes.
    assert crypto.seal(b"hello", "kv") != crypto.seal(b"hello", "kv")


@pytest.mark.parametrize(
    "context",
    [("kv", "globex", b"\x01", "value"), ("kv", "acme", b"\x02", "value"), ("kv", "acme")],
)
def test_open_with_other_context_fails(context: tuple[str | bytes, ...]) -> None:
    crypto = Crypto(KEY)
    blob = crypto.seal(b"hello", "kv", "acme", b"\x01", "value")
    with pytest.raises(DecryptionFailed, match="table kv"):
        crypto.open(blob, *context)


def test_open_with_other_key_or_tampered_blob_fails() -> None:
    blob = Crypto(KEY).seal(b"hello", "kv")
    with pytest.raises(DecryptionFailed):
        Crypto(b"\x00" * 32).open(blob, "kv")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionFailed):
        Crypto(KEY).open(tampered, "kv")
    with pytest.raises(DecryptionFailed):
        Crypto(KEY).open(b"", "kv")


def test_plain_envelope_is_for_the_benchmark_only() -> None:
    plain = Crypto(KEY, encrypt=False)
    blob = plain.seal(b"hello", "kv")
    assert blob == bytes([ENVELOPE_PLAIN]) + b"hello"
    assert plain.open(blob, "kv") == b"hello"
    # An unencrypted store can still read encrypted values; an encrypting one refuses plain ones.
    assert plain.open(Crypto(KEY).seal(b"x", "kv"), "kv") == b"x"
    with pytest.raises(DecryptionFailed, match="envelope version 0"):
        Crypto(KEY).open(blob, "kv")


def test_lookups_are_keyed_and_deterministic() -> None:
    a, b = Crypto(KEY), Crypto(b"\x01" * 32)
    assert a.lookup("kv", "acme", "k") == a.lookup("kv", "acme", "k")
    assert a.lookup("kv", "acme", "k") != a.lookup("kv", "globex", "k")
    assert a.lookup("kv", "acme", "k") != b.lookup("kv", "acme", "k")
    assert a.key_check() != b.key_check()


def test_data_key_length_is_checked() -> None:
    with pytest.raises(KeyFileError):
        Crypto(b"\x00" * 31)
