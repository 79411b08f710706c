"""The box's state as the maintenance commands see it: found, never created.

``smcp-box serve`` creates the data key and the database on first start; ``backup``, ``restore``,
``audit`` and ``doctor`` must not, or a typo in ``--config`` would leave a fresh empty database
and key behind and report on those instead of the real ones.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from smcp_box.admin.paths import admin_socket_path
from smcp_box.config import Settings, box_id
from smcp_box.errors import ConfigError
from smcp_box.store import Store
from smcp_box.store.keyfile import CREDENTIAL_NAME, KEY_FILE_NAME, read_key_file
from smcp_box.store.store import open_configured


def data_key_path(settings: Settings) -> Path | None:
    """Where the box takes its data key from (the credential first), or None if none exists."""
    credentials = settings.credentials_path()
    if credentials is not None and (credentials / CREDENTIAL_NAME).exists():
        return credentials / CREDENTIAL_NAME
    path = settings.state_path() / KEY_FILE_NAME
    return path if path.exists() else None


def existing_data_key(settings: Settings) -> bytes:
    path = data_key_path(settings)
    if path is None:
        raise ConfigError(
            f"no data key: neither $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} nor "
            f"{settings.state_path() / KEY_FILE_NAME} exists (check --config and the state "
            "directory; the box creates the key on its first start)"
        )
    return read_key_file(path)


def existing_database(settings: Settings) -> Path:
    path = settings.database_path()
    if not path.is_file():
        raise ConfigError(
            f"no database at {path} (check --config and the state directory; the box creates "
            "the database on its first start)"
        )
    return path


@contextlib.asynccontextmanager
async def existing_store(settings: Settings) -> AsyncIterator[Store]:
    """The box's store, opened beside a running box if there is one (SQLite allows that);
    the fleet's PostgreSQL database when ``[store] backend = "postgres"``."""
    if settings.store.backend == "postgres":
        shared = await open_configured(settings, existing_data_key(settings))
        try:
            yield shared
        finally:
            await shared.close()
        return
    path = existing_database(settings)
    store = await Store.open(
        path,
        existing_data_key(settings),
        encrypt=settings.store.encrypt,
        box_id=box_id(settings),
    )
    try:
        yield store
    finally:
        await store.close()
        match_owner(path)


def match_owner(database: Path) -> None:
    """Give SQLite's side files (and the database) the owner of the state folder.

    Run as root beside a service whose user is not root (``DynamicUser=``), SQLite creates a
    ``-wal``/``-shm`` pair, or a restore a database file, owned by root, which the service then
    cannot open. Nothing to do when not root.
    """
    if os.geteuid() != 0:
        return
    owner = database.parent.stat()
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, owner.st_uid, owner.st_gid)


def admin_socket_answers(settings: Settings) -> Path | None:
    """The admin socket path if a box answers on it now, else None."""
    path = admin_socket_path(settings)
    if not path.exists():
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return None
    finally:
        probe.close()
    return path
