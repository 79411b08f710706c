"""Debian's HAProxy for tests: check a configuration with ``haproxy -c``, run one in the
foreground on loopback, and read server states from its stats socket (the runtime API).

Runs as whoever runs the tests (HAProxy needs no privilege for loopback ports above 1024 and
a socket in a temporary folder); stopped with SIGTERM, or killed after a deadline.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import terminate
from tests.support.waiting import wait_until_sync

#: Deadline for HAProxy to listen and answer its stats socket: a test timeout only.
START_TIMEOUT_S = 15.0


def find_haproxy() -> Path | None:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    return Path(found) if found else None


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    """``haproxy -c -f config``: returncode 0 when HAProxy accepts it; the output names why not."""
    binary = find_haproxy()
    assert binary is not None, "haproxy is not installed (apt-get install haproxy)"
    return subprocess.run(
        [str(binary), "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
    )


def stats_query(socket_path: Path, command: str, timeout_s: float = 5.0) -> str:
    """One runtime API command (``show stat``, ``show table rate_per_key``...), its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect(str(socket_path))
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := conn.recv(65_536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def server_states(socket_path: Path, backend: str = "boxes") -> dict[str, str]:
    """Each server of ``backend`` -> its status as HAProxy sees it (UP, DOWN, "DOWN 1/2"...)."""
    lines = stats_query(socket_path, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    states: dict[str, str] = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
            states[row["svname"]] = row["status"]
    return states


@dataclass
class HaproxyProcess:
    """HAProxy running ``config`` in the foreground; its output goes to ``log_path``."""

    config: Path
    stats_socket: Path
    log_path: Path
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self, listen_port: int) -> None:
        binary = find_haproxy()
        assert binary is not None, "haproxy is not installed (apt-get install haproxy)"
        checked = check_config(self.config)
        assert checked.returncode == 0, f"haproxy -c refused {self.config}:\n{checked.stdout}"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "-db", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", listen_port), timeout=1):
                    pass
                stats_query(self.stats_socket, "show info")
            except OSError:
                return False
            return True

        try:
            wait_until_sync(
                listening, what="haproxy to listen", timeout=START_TIMEOUT_S, detail=self.log
            )
        except BaseException:
            self.stop()
            raise

    def servers(self, backend: str = "boxes") -> dict[str, str]:
        return server_states(self.stats_socket, backend)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None:
            return
        # SIGTERM: a hard stop (SIGUSR1 would wait for every open stream to end).
        terminate(self.proc, timeout_s)
        self.proc = None
