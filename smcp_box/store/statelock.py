"""The state-directory lock: how ``restore`` knows that no box is using the database.

A running box holds a *shared* ``flock`` on ``<state_dir>/box.lock`` for its whole life; ``restore``
needs the *exclusive* lock, so it fails at once while any box runs and, holding it, keeps a box
from starting half-way through the swap. ``flock`` locks belong to the open file and vanish when
the process dies, so a crashed box never leaves a stale lock behind (unlike a pid file).

Shared rather than exclusive for the box, because nothing else the box does needs to exclude a
second box (SQLite serializes writers across processes), and some tools run two on one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from smcp_box.errors import ConfigError

LOCK_NAME: Final = "box.lock"


class StateLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        """Drop the lock (idempotent); closing the descriptor releases it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _open(state_dir: Path) -> tuple[int, Path]:
    path = state_dir / LOCK_NAME
    try:
        # Read-only is enough for flock. The empty file may be readable by others (inside the
        # private state folder), so that one made by root (a restore) never locks out a
        # service running as another user.
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the state lock {path}: {exc.strerror}; the state directory must be "
            "writable by the user running smcp-box"
        ) from None
    return fd, path


def hold_shared(state_dir: Path) -> StateLock:
    """Taken by a running box. Fails only while a restore holds the exclusive lock."""
    fd, path = _open(state_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"a restore is in progress on {state_dir} (it holds {path}); start the box when "
            "it has finished"
        ) from None
    return StateLock(fd, path)


def box_is_running(state_dir: Path) -> bool:
    """Whether some process (a box) holds the state lock now."""
    if not (state_dir / LOCK_NAME).exists():
        return False
    fd, _ = _open(state_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we got it
    return False


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[StateLock]:
    """Hold the exclusive lock for a block; raise ConfigError at once if a box runs."""
    fd, path = _open(state_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"smcp-box is running on {state_dir} (a process holds {path}); stop it first "
            "(systemctl stop smcp-box)"
        ) from None
    lock = StateLock(fd, path)
    try:
        yield lock
    finally:
        lock.release()
