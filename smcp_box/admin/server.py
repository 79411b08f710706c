"""Serving the admin API: a Unix socket (always) and a token-guarded TCP port (optional).

Socket invariants:
- The socket file never exists at its final path with a mode wider than 0660: it is bound under
  a temporary name, chmod-ed, then renamed into place (rename is atomic and keeps the inode).
- A socket file that another live box answers on is never removed; a stale one (nothing
  listening) is replaced. On shutdown the file is removed only if it is still ours (same inode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from smcp_box.admin.app import create_admin_app
from smcp_box.admin.paths import admin_socket_path
from smcp_box.admin.sampler import sample_metrics_forever
from smcp_box.box import Box
from smcp_box.config import Settings, read_token
from smcp_box.errors import ConfigError

logger = logging.getLogger("smcp_box.admin")

SOCKET_MODE = 0o660
#: sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


def _socket_is_live(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    else:
        return True
    finally:
        probe.close()


def bind_admin_socket(path: Path) -> socket.socket:
    """A bound (not yet listening) Unix socket at ``path`` with mode 0660."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(
            f"the admin socket path {path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes a "
            "Unix socket allows; set runtime_dir (or [admin] socket) to a shorter path"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(f"{path} exists and is not a socket; remove it or set another path")
        if _socket_is_live(path):
            raise ConfigError(
                f"another smcp-box already answers on the admin socket {path}; stop it first"
            )
        path.unlink()
    # Shorter than "admin.sock", so that it fits wherever the final name fits.
    temporary = path.with_name(f".{secrets.token_hex(3)}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(temporary))
        os.chmod(temporary, SOCKET_MODE)
        os.replace(temporary, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return sock


class _NoRunningOnLine(logging.Filter):
    """Drops Hypercorn's "Running on …" line for the admin listeners: it names the socket by
    the temporary name it was bound under before the atomic rename, not the path clients use.
    ``start_admin`` logs the real path instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on")


_ADMIN_SERVER_LOG = logging.getLogger("smcp_box.admin.server")
_ADMIN_SERVER_LOG.addFilter(_NoRunningOnLine())


def _hypercorn_config(bind: str) -> Any:
    from hypercorn.config import Config as HypercornConfig

    config = HypercornConfig()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = _ADMIN_SERVER_LOG
    config.graceful_timeout = 2.0
    # Long-polls (audit follow) hold a request open; keep-alive must outlast them.
    config.keep_alive_timeout = 60.0
    return config


def _admin_token(settings: Settings) -> str | None:
    """The TCP admin token from ``[admin] token_file`` or ``$CREDENTIALS_DIRECTORY/admin-token``."""
    return read_token(settings, settings.admin.token_file, "admin-token", "admin token")


def _bind_tcp(bind: str) -> socket.socket:
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    try:
        sock = socket.create_server((host, int(port)), family=_family(host), backlog=128)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the admin API cannot listen on TCP {bind!r}: {exc}") from None
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def start_admin(
    box: Box,
    shutdown_trigger: Callable[[], Awaitable[Any]],
    *,
    socket_path: Path | None = None,
    tcp_bind: str | None = None,
    token: str | None = None,
) -> asyncio.Task[None]:
    """Bind the admin listeners now, then serve them in a task until ``shutdown_trigger()``
    returns.

    Binding happens before this returns, so a box that cannot offer its admin API (another box
    owns the socket, a bad TCP bind) fails at start with a ConfigError, not later in a task.
    ``shutdown_trigger`` is called once per listener, so it must be re-callable (``event.wait``
    is). ``tcp_bind`` ("host:port") defaults to ``[admin] tcp_bind``; TCP is refused without a
    token, because only the socket's file permissions make the socket safe without one.
    """
    settings = box.settings
    path = socket_path or admin_socket_path(settings)
    tcp_bind = tcp_bind if tcp_bind is not None else settings.admin.tcp_bind
    if tcp_bind:
        token = token or _admin_token(settings)
        if not token:
            raise ConfigError(
                f"the admin API may listen on TCP ({tcp_bind}) only with an admin token: put one "
                "of 32+ characters in [admin] token_file or $CREDENTIALS_DIRECTORY/admin-token"
            )
    sock = bind_admin_socket(path)
    # Listening now (not when Hypercorn starts) means clients queue in the backlog instead of
    # being refused during start-up: the API is reachable as soon as this returns.
    sock.listen(128)
    listeners = [(create_admin_app(box), sock)]
    if tcp_bind:
        try:
            listeners.append((create_admin_app(box, token=token), _bind_tcp(tcp_bind)))
        except BaseException:
            sock.close()
            path.unlink(missing_ok=True)
            raise
    logger.info("admin API on %s%s", path, f" and tcp {tcp_bind}" if tcp_bind else "")
    return asyncio.create_task(_serve(box, listeners, path, shutdown_trigger))


async def _serve(
    box: Box,
    listeners: list[tuple[Any, socket.socket]],
    path: Path,
    shutdown_trigger: Callable[[], Awaitable[Any]],
) -> None:
    from hypercorn.asyncio import serve

    inode = os.stat(path).st_ino
    # Hypercorn adopts each descriptor (and closes it); detach so that each has one owner.
    servers = [
        asyncio.ensure_future(
            serve(
                app, _hypercorn_config(f"fd://{sock.detach()}"), shutdown_trigger=shutdown_trigger
            )
        )
        for app, sock in listeners
    ]
    sampler = asyncio.create_task(sample_metrics_forever(box))
    try:
        await asyncio.gather(*servers)
    finally:
        for server in servers:
            server.cancel()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                os.unlink(path)


async def serve_admin(
    box: Box,
    shutdown_trigger: Callable[[], Awaitable[Any]],
    *,
    socket_path: Path | None = None,
    tcp_bind: str | None = None,
    token: str | None = None,
) -> None:
    """Serve the admin API until ``shutdown_trigger()`` returns (see :func:`start_admin`)."""
    await start_admin(
        box, shutdown_trigger, socket_path=socket_path, tcp_bind=tcp_bind, token=token
    )
