"""The data key file: 32 raw random bytes that encrypt everything sensitive in the database.

Format: exactly 32 raw bytes (not hex, not base64), so the size check is exact and a
``LoadCredential=`` / ``LoadCredentialEncrypted=`` file made with ``head -c 32 /dev/urandom``
works as is. To print it for safe-keeping use ``base64 data.key``; to restore, ``base64 -d``.

Where the key comes from, in order:

1. ``$CREDENTIALS_DIRECTORY/data-key`` when the service runs under systemd with
   ``LoadCredential=data-key:/etc/smcp-box/data.key``. Read only; never created.
2. ``<state dir>/data.key``, created on first run.

Losing the key loses every encrypted value; a backup of the database is useless without it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from smcp_box.errors import KeyFileError

from .crypto import DATA_KEY_BYTES
from .db import fsync_dir

CREDENTIAL_NAME: Final = "data-key"
KEY_FILE_NAME: Final = "data.key"


def load_data_key(
    state_dir: Path,
    credentials_dir: Path | None,
    *,
    token_source: Callable[[int], bytes] = secrets.token_bytes,
) -> bytes:
    """Return the 32-byte data key, creating ``state_dir/data.key`` if no key exists yet."""
    if credentials_dir is not None:
        credential = credentials_dir / CREDENTIAL_NAME
        if credential.exists():
            return read_key_file(credential)
    path = state_dir / KEY_FILE_NAME
    if not path.exists():
        create_key_file(path, token_source)
    return read_key_file(path)


def read_key_file(path: Path) -> bytes:
    """Read a key file, refusing one that others can read or that is not 32 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyFileError(f"Cannot open the data key file {path}: {exc.strerror}.") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"The data key file {path} is not a regular file.")
        # Group or world access to the key defeats encryption at rest; refuse rather than warn,
        # because a warning in a journal nobody reads protects nothing.
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"The data key file {path} has mode {stat.S_IMODE(st.st_mode):04o}, so users "
                f"other than its owner can access it. Run: chmod 600 {path} (and consider "
                "rotating the key if others may have read it)."
            )
        data = os.read(fd, DATA_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != DATA_KEY_BYTES:
        size = f"{len(data)}" if len(data) <= DATA_KEY_BYTES else f"more than {DATA_KEY_BYTES}"
        raise KeyFileError(
            f"The data key file {path} must hold exactly {DATA_KEY_BYTES} raw bytes but holds "
            f"{size}."
            " Restore the original key file; a new key cannot read the existing database."
            " (For a brand-new box: head -c 32 /dev/urandom > data.key; chmod 600 data.key.)"
        )
    return data


def create_key_file(path: Path, token_source: Callable[[int], bytes]) -> None:
    """Create a new key file with mode 0600, atomically and without clobbering.

    The key is written to a private temporary file (O_CREAT|O_EXCL, 0600) and published with
    ``link()``, which fails if the name exists; so a crash never leaves a short key file under
    the real name, and two processes racing on first start agree on one key.
    """
    key = token_source(DATA_KEY_BYTES)
    if len(key) != DATA_KEY_BYTES:
        raise KeyFileError("The token source returned a key of the wrong size.")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise KeyFileError(
            f"Cannot create the data key file in {path.parent}: {exc.strerror}. "
            "Make the state directory writable by the service user."
        ) from exc
    try:
        try:
            # The umask can only narrow 0600, but be exact regardless of it.
            os.fchmod(fd, 0o600)
            view = memoryview(key)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            # If another process won the race, its key is the key.
            os.link(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
