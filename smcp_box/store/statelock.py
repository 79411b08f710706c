"""The state-directory lock: one box per database, and ``restore`` kept apart from it.

A running box holds an *exclusive* ``flock`` on ``box.lock`` in its database's folder (normally
the state directory) for its whole life, taken before it binds its port or loads tenants. A second
box on the same state directory (whatever its runtime directory or port) fails at once with an
error naming the PID that holds the lock; ``restore`` needs the same exclusive lock, so it fails
while a box runs and, holding it, keeps a box from starting half-way through the swap. ``flock``
locks belong to the open file and vanish when the process dies, so a crashed box never leaves a
stale lock behind: the PID written into the file is information for the error message only,
never what decides whether a box runs.
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

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (idempotent); closing the descriptor releases it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _open(lock_dir: Path) -> tuple[int, Path, bool]:
    """The lock file's descriptor, its path, and whether it is open for writing."""
    path = lock_dir / LOCK_NAME
    try:
        # Readable by others (inside the private state folder) and, when made by root (a
        # restore), given the folder's owner, so that it never locks out the service's user.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        writable = True
    except PermissionError:
        writable = False
        try:
            # flock needs no write access: a lock file we cannot write still locks, only
            # without our PID in it.
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise _cannot_open(path, exc) from None
    except OSError as exc:
        raise _cannot_open(path, exc) from None
    if writable and os.geteuid() == 0:
        with contextlib.suppress(OSError):
            owner = lock_dir.stat()
            os.fchown(fd, owner.st_uid, owner.st_gid)
    return fd, path, writable


def _cannot_open(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot open the state lock {path}: {exc.strerror}; the state directory must be "
        "writable by the user running smcp-box"
    )


def _write_holder(fd: int, role: str) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {role}\n".encode(), 0)


def read_holder(lock_dir: Path) -> tuple[int, str] | None:
    """(PID, role) that the lock's holder wrote into the file, if it did."""
    try:
        text = (lock_dir / LOCK_NAME).read_text()
    except OSError:
        return None
    parts = text.split()
    if not parts or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1] if len(parts) > 1 else "serve"


def _try_lock(lock_dir: Path, role: str) -> StateLock | None:
    fd, path, writable = _open(lock_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if writable:
        _write_holder(fd, role)
    return StateLock(fd, path)


def hold_exclusive(lock_dir: Path) -> StateLock:
    """Taken by a running box for its whole life; ConfigError at once if another process holds
    the lock (another box on the same state directory, or a restore)."""
    lock = _try_lock(lock_dir, "serve")
    if lock is not None:
        return lock
    path = lock_dir / LOCK_NAME
    holder = read_holder(lock_dir)
    pid = f"PID {holder[0]}" if holder is not None else "another process"
    if holder is not None and holder[1] != "serve":
        raise ConfigError(
            f"a {holder[1]} is in progress on {lock_dir} ({pid} holds {path}); start the box "
            "when it has finished"
        )
    raise ConfigError(
        f"smcp-box is already running on the state directory {lock_dir} ({pid} holds {path}); "
        "only one box may use a state directory: stop that one first (systemctl stop "
        "smcp-box), or give this box its own state_dir"
    )


def box_is_running(lock_dir: Path) -> bool:
    """Whether some process (a box) holds the state lock now."""
    if not (lock_dir / LOCK_NAME).exists():
        return False
    fd, _, _ = _open(lock_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we got it
    return False


@contextlib.contextmanager
def exclusive(lock_dir: Path, role: str = "restore") -> Iterator[StateLock]:
    """Hold the exclusive lock for a block (a restore, a store migrate: ``role``, one word, is
    what a box starting meanwhile is told); raise ConfigError at once if a box runs."""
    lock = _try_lock(lock_dir, role)
    if lock is None:
        holder = read_holder(lock_dir)
        pid = f", PID {holder[0]}" if holder is not None else ""
        raise ConfigError(
            f"smcp-box is running on {lock_dir} (a process{pid} holds {lock_dir / LOCK_NAME}); "
            "stop it first (systemctl stop smcp-box)"
        )
    try:
        yield lock
    finally:
        lock.release()
