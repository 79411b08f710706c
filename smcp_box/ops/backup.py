"""``smcp-box backup PATH`` and ``smcp-box restore PATH``.

Backup uses SQLite's online backup from a read-only connection: under WAL that copies one
committed snapshot without stopping the box's writer, so it is consistent while the box serves.
The copy is then checked the way restore will check it.

Restore replaces the database only when it is safe and useful:

- no box runs: the state lock (``box.lock`` beside the database) is free (taken exclusively
  for the whole swap, so no box starts half-way) and nothing answers on the admin socket;
- the backup is a sound SQLite file of a schema this release reads, made with *this* data key
  (a backup under another key would start a box that can decrypt nothing), and its audit chain
  verifies (``--force`` accepts a broken chain, keeping the evidence as it is);
- the current database is kept as ``<name>.<UTC time>.bak`` (never overwritten), after folding
  its WAL into it, so that a leftover ``-wal`` file cannot be replayed onto the restored copy.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from smcp_box.config import Settings
from smcp_box.errors import ConfigError, StoreError
from smcp_box.ops.offline import (
    admin_socket_answers,
    existing_data_key,
    existing_store,
    match_owner,
)
from smcp_box.store import statelock
from smcp_box.store.audit import verify_file
from smcp_box.store.chain import AuditVerification
from smcp_box.store.crypto import Crypto
from smcp_box.store.db import fsync_dir, open_snapshot
from smcp_box.store.migrations import SCHEMA_VERSION


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size_bytes: int
    schema_version: int
    audit: AuditVerification


def inspect_backup(path: Path, data_key: bytes) -> BackupInfo:
    """Check a backup file the way restore needs it; raise ConfigError saying what is wrong."""
    if not path.is_file():
        raise ConfigError(f"{path} is not a file")
    crypto = Crypto(data_key)
    try:
        conn = open_snapshot(path)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            check = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path} is not a readable smcp-box database: {exc}") from None
    if problems:
        raise ConfigError(f"{path} is damaged: {'; '.join(problems[:5])}")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema version {version}; this smcp-box reads up to {SCHEMA_VERSION}. "
            "Restore it with the release that wrote it."
        )
    if check is None or not hmac.compare_digest(bytes(check[0]), crypto.key_check()):
        raise ConfigError(
            f"{path} was not made with this box's data key, so the box could not decrypt it. "
            "Restore it together with the key it was made with (see docs/operations.md)."
        )
    try:
        audit = verify_file(path, crypto)
    except StoreError as exc:
        raise ConfigError(f"{path}: cannot read its audit log: {exc.message}") from None
    return BackupInfo(path, path.stat().st_size, int(version), audit)


def backup_target(dest: Path, now: float) -> Path:
    """``dest`` itself, or a time-stamped file inside it when it is a directory."""
    if dest.is_dir():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        return dest / f"smcp-box-{stamp}.db"
    return dest


async def run_backup(settings: Settings, dest: Path, *, force: bool = False) -> BackupInfo:
    target = backup_target(dest, time.time())
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; choose another name or pass --force to replace it")
    if not target.parent.is_dir():
        raise ConfigError(f"the folder {target.parent} does not exist")
    async with existing_store(settings) as store:
        await store.backup(target)
    return inspect_backup(target, existing_data_key(settings))


@dataclass(frozen=True)
class RestoreResult:
    info: BackupInfo
    database: Path
    #: Where the replaced database went; None when there was none.
    previous: Path | None


async def run_restore(settings: Settings, source: Path, *, force: bool = False) -> RestoreResult:
    socket_path = admin_socket_answers(settings)
    if socket_path is not None:
        raise ConfigError(
            f"smcp-box is running (its admin socket {socket_path} answers); stop it first "
            "(systemctl stop smcp-box)"
        )
    database = settings.database_path()
    state = settings.state_path()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with statelock.exclusive(database.parent):
        info = inspect_backup(source, _restore_key(settings))
        if not info.audit.ok and not force:
            raise ConfigError(
                f"the backup's audit chain does not verify ({info.audit.message}); pass --force "
                "to restore it anyway"
            )
        previous = _swap_in(source, database)
        match_owner(database)
    # Opening migrates an older schema and proves the box will start on the restored file.
    async with existing_store(settings):
        pass
    return RestoreResult(info, database, previous)


def _restore_key(settings: Settings) -> bytes:
    try:
        return existing_data_key(settings)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc.message}. To restore on a new machine, first put the data key the backup was "
            f"made with in place ({settings.state_path() / 'data.key'}, mode 0600, or the "
            "data-key credential)."
        ) from None


def _swap_in(source: Path, database: Path) -> Path | None:
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = database.with_name(f".{database.name}.{secrets.token_hex(6)}.restore")
    try:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        previous = _set_aside(database)
        os.replace(staged, database)
        fsync_dir(database.parent)
    finally:
        staged.unlink(missing_ok=True)
    return previous


def _set_aside(database: Path) -> Path | None:
    if not database.exists():
        return None
    # Fold the WAL into the file first: moved alone, the file would miss its last commits, and
    # a -wal left behind would be replayed onto the restored database.
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(database, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    previous = database.with_name(f"{database.name}.{stamp}.bak")
    if previous.exists():
        previous = previous.with_name(f"{previous.name}.{secrets.token_hex(3)}")
    os.replace(database, previous)
    for suffix in ("-wal", "-shm"):
        leftover = Path(f"{database}{suffix}")
        if leftover.exists():
            # Keep a WAL the checkpoint could not fold in beside the copy it belongs to.
            os.replace(leftover, Path(f"{previous}{suffix}"))
    return previous
