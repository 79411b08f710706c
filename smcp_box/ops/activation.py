"""Socket activation: the sd_listen_fds protocol, turned into Hypercorn bind specs.

With ``smcp-box.socket`` active, systemd opens the listening socket itself and starts the box
with it as file descriptor 3 (descriptors 3, 4, … when there are several), announced by
``LISTEN_FDS`` (how many), ``LISTEN_PID`` (the process they are for) and ``LISTEN_FDNAMES``
(colon-separated names from ``FileDescriptorName=``). Hypercorn serves an inherited socket when
bound to ``fd://N``.

Invariants:
- The variables are honoured only when ``LISTEN_PID`` is this process: they are inherited by
  children, which must not mistake their parent's sockets for their own.
- Once consumed they are removed from the environment (like ``sd_listen_fds(1)``), so nothing the
  box starts later inherits them, and the descriptors are marked close-on-exec.
- Every passed descriptor must be a listening stream socket; anything else is a misconfigured
  socket unit and a :class:`ConfigError`, not something to serve HTTP on.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from smcp_box.errors import ConfigError

logger = logging.getLogger("smcp_box.ops.activation")

#: The first passed descriptor (SD_LISTEN_FDS_START): 0-2 stay stdin, stdout and stderr.
LISTEN_FDS_START = 3
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


@dataclass(frozen=True)
class ListenSocket:
    fd: int
    name: str
    #: Printable local address, e.g. "[::]:8765", for the startup banner and logs.
    address: str

    @property
    def bind(self) -> str:
        return f"fd://{self.fd}"


def listen_sockets(
    environ: MutableMapping[str, str] | None = None,
    *,
    pid: int | None = None,
    unset: bool = True,
) -> list[ListenSocket]:
    """The sockets systemd passed to this process; empty when it was not socket-activated."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    own_pid = os.getpid() if pid is None else pid
    count = _passed_count(env, own_pid)
    names = env.get("LISTEN_FDNAMES", "").split(":") if count else []
    if unset:
        for name in _VARIABLES:
            env.pop(name, None)
    sockets: list[ListenSocket] = []
    for offset in range(count):
        fd = LISTEN_FDS_START + offset
        name = names[offset] if offset < len(names) and names[offset] else "unknown"
        sockets.append(ListenSocket(fd=fd, name=name, address=_check_listening(fd, name)))
    for sock in sockets:
        logger.info("socket activation: %s on fd %d (%s)", sock.address, sock.fd, sock.name)
    return sockets


def bind_specs(
    environ: MutableMapping[str, str] | None = None, *, pid: int | None = None
) -> list[str] | None:
    """Hypercorn ``bind`` values for passed sockets (``["fd://3"]``), or None to bind normally."""
    sockets = listen_sockets(environ, pid=pid)
    return [sock.bind for sock in sockets] or None


def listen_binds(
    host: str,
    port: int,
    environ: MutableMapping[str, str] | None = None,
    *,
    backlog: int = 1024,
) -> list[str]:
    """Binds for Hypercorn: the sockets systemd passed, else a socket bound and listening now.

    Binding here, before ``serve`` starts, means a taken port fails startup with a clear error
    before READY=1 is sent, and READY=1 can be sent as soon as this returns: connections that
    arrive before Hypercorn accepts wait in the kernel's backlog.
    """
    passed = bind_specs(environ)
    if passed:
        return passed
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {_format_address(family, (host, port))}: {exc.strerror or exc}; "
            "check server.host and server.port (is another process using the port?)"
        ) from None
    # Accepted connections inherit TCP_NODELAY; Hypercorn sets it only on sockets it binds.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    logger.info("listening on %s", _format_address(family, sock.getsockname()))
    return [f"fd://{sock.detach()}"]


def _passed_count(environ: Mapping[str, str], pid: int) -> int:
    raw_pid = environ.get("LISTEN_PID", "")
    raw_count = environ.get("LISTEN_FDS", "")
    if not raw_pid or not raw_count:
        return 0
    try:
        listen_pid, count = int(raw_pid), int(raw_count)
    except ValueError:
        raise ConfigError(
            f"socket activation: LISTEN_PID={raw_pid!r} / LISTEN_FDS={raw_count!r} are not "
            "integers; check the socket unit"
        ) from None
    if listen_pid != pid:
        # Meant for another process (we are a child of the activated one): not ours to use.
        return 0
    if count < 0:
        raise ConfigError(f"socket activation: LISTEN_FDS={count} is negative")
    return count


def _check_listening(fd: int, name: str) -> str:
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise ConfigError(
            f"socket activation: descriptor {fd} ({name}) was announced but is not open: {exc}"
        ) from None
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"socket activation: descriptor {fd} ({name}) is not a socket")
    os.set_inheritable(fd, False)
    # A duplicate to inspect: a socket object on fd itself would close it when collected.
    probe = socket.socket(fileno=os.dup(fd))
    try:
        kind = probe.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        listening = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        address = _format_address(probe.family, probe.getsockname())
    finally:
        probe.close()
    if kind != socket.SOCK_STREAM or not listening:
        raise ConfigError(
            f"socket activation: descriptor {fd} ({name}) is not a listening stream socket; "
            "the socket unit must use ListenStream="
        )
    return address


def _format_address(family: int, address: object) -> str:
    if family == socket.AF_INET6 and isinstance(address, tuple):
        return f"[{address[0]}]:{address[1]}"
    if family == socket.AF_INET and isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    if isinstance(address, bytes) and address[:1] == b"\0":
        return "@" + address[1:].decode("utf-8", "replace")
    return f"unix:{address}"
