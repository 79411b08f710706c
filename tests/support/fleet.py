"""A fleet on loopback for tests and the bench: N real ``smcp-box serve`` processes on one
throwaway PostgreSQL, behind HAProxy configured by ``smcp-box lb-config``.

Each box has its own state, runtime and log (``<root>/<box_id>/``), its ``[cluster] box_id``,
``[store] backend = "postgres"`` on one shared database, and the same data key (copied into
each state folder as ``data.key``, as an admin copies it onto each machine). The compiled
module cache is shared, which is safe (entries are renamed into place) and spares every box a
compile. HAProxy believes nobody's ``X-Forwarded-For``; the boxes believe HAProxy's
(``[server] trusted_proxies = 127.0.0.1``), so per-address limits see the real client.

Everything is bounded in time: starting waits on each box's ``/healthz`` and HAProxy's stats
socket with deadlines, never sleeps, and stopping sends SIGTERM then SIGKILL after a deadline.
``kill(box_id)`` is ``kill -9`` of one box; the rest carry on.

With ``dsn=None`` each box has its own SQLite file instead and the boxes share nothing: a
fleet of one on SQLite, for comparison, or tests of the balancer alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.boxproc import BoxProcess, free_port
from tests.support.haproxy import HaproxyProcess
from tests.support.postgres import create_database
from tests.support.waiting import wait_until_sync

#: Deadline for every box of a fleet to answer /healthz, started together: a test timeout.
BOX_START_TIMEOUT_S = 90.0


@dataclass
class FleetBox(BoxProcess):
    """One box of a fleet: a BoxProcess that knows its id and can die hard."""

    box_id: str = ""

    def kill(self) -> None:
        """``kill -9``: no shutdown, no last heartbeat, connections reset."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def served(self, path: str, status: int | None = None) -> int:
        """Requests for ``path`` this box answered (``status``: only those), from its access
        log; counts across restarts of the process, which keep the log."""
        code = str(status) if status is not None else r"\d{3}"
        wanted = rf" {re.escape(path)} {code} "
        return sum(1 for line in self.log().splitlines() if re.search(wanted, line))


@dataclass
class Fleet:
    root: Path
    boxes: dict[str, FleetBox]
    lb: HaproxyProcess
    lb_port: int
    dsn: str | None
    stopped: bool = field(default=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def url(self, tenant: str) -> str:
        return f"{self.base_url}/t/{tenant}/mcp"

    def box(self, box_id: str) -> FleetBox:
        return self.boxes[box_id]

    def create_key(self, tenant: str, on: str | None = None) -> str:
        """An API key made with the real CLI on box ``on`` (the first by default)."""
        return self.boxes[on or next(iter(self.boxes))].create_key(tenant)

    def kill(self, box_id: str) -> None:
        self.boxes[box_id].kill()

    def restart(self, box_id: str) -> None:
        """Start a stopped or killed box again, on its port, with its state folder. A killed
        box's id stays taken until its last heartbeat is ``[cluster] dead_after_s`` old (the
        harness makes that 2 s): until then the box refuses to start, and is started again."""

        def started() -> bool:
            box = self.boxes[box_id]
            box.stop()
            try:
                box.start(BOX_START_TIMEOUT_S)
            except RuntimeError as exc:
                if "is in use by a running box" in str(exc):
                    return False
                raise
            return True

        wait_until_sync(started, what=f"{box_id} to start again", timeout=30, interval=0.2)

    def served(self, path: str, status: int | None = None) -> dict[str, int]:
        return {box_id: box.served(path, status) for box_id, box in self.boxes.items()}

    def wait_lb_sees(self, box_id: str, status: str, timeout: float = 15.0) -> None:
        """Wait until HAProxy's health checks put ``box_id`` in ``status`` (UP, DOWN...)."""
        wait_until_sync(
            lambda: self.lb.servers().get(box_id, "").split(" ")[0] == status,
            what=f"HAProxy to see {box_id} {status}",
            timeout=timeout,
            interval=0.02,
            detail=lambda: f"{self.lb.servers()}\n{self.lb.log()[-2000:]}",
        )

    def stop(self) -> dict[str, int]:
        """Stop HAProxy and every box (SIGTERM, then SIGKILL after a deadline); exit codes."""
        if self.stopped:
            return {}
        self.stopped = True
        self.lb.stop()
        with ThreadPoolExecutor(max_workers=len(self.boxes)) as pool:
            codes = pool.map(lambda box: box.stop(), self.boxes.values())
        return dict(zip(self.boxes, codes, strict=True))

    def replies_cut_short(self, box_id: str) -> int:
        """Replies ``box_id`` began and never finished, as HAProxy logged them: termination
        state ``SD`` (the server aborted in the data phase, after its headers were passed on).
        Nothing can resend such a request: the client has the start of a reply already."""
        pattern = re.compile(rf" boxes/{re.escape(box_id)} .* SD.. ")
        return sum(1 for line in self.lb.log().splitlines() if pattern.search(line))

    def logs(self) -> str:
        """For a failure message: each box's last lines, and HAProxy's lines about requests
        that did not end normally (their termination state is not ``----``) or events."""
        parts = [f"--- {box_id} ---\n{box.log()[-3000:]}" for box_id, box in self.boxes.items()]
        unusual = [line for line in self.lb.log().splitlines() if " ---- " not in line]
        return "\n".join([*parts, "--- haproxy (unusual lines) ---", *unusual[-40:]])


def fresh_database(server_dsn: str, prefix: str = "fleet") -> str:
    """A new empty database on the throwaway server; its DSN."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(create_database(server_dsn, prefix))
    # Called from a coroutine (an async test): run it on a loop of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, create_database(server_dsn, prefix)).result()


def write_data_key(path: Path, key: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)


def lb_config_text(
    box_ports: dict[str, int], listen_port: int, stats_socket: Path, lb_args: Sequence[str]
) -> str:
    """What ``smcp-box lb-config`` prints for these boxes, run as an admin runs it."""
    boxes = [f"--box={box_id}=127.0.0.1:{port}" for box_id, port in box_ports.items()]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smcp_box.cli",
            "lb-config",
            "--listen",
            f"127.0.0.1:{listen_port}",
            "--stats-socket",
            str(stats_socket),
            *boxes,
            *lb_args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def running_fleet(
    tenants_dir: Path,
    *,
    dsn: str | None,
    box_ids: Sequence[str] = ("box1", "box2", "box3"),
    lb_args: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    cache_dir: Path | None = None,
    data_key: bytes | None = None,
) -> Iterator[Fleet]:
    """Start the boxes (on PostgreSQL at ``dsn``; None: each box on its own SQLite file,
    sharing nothing, which suits one box or tests of the balancer alone) and HAProxy in front
    of them; stop everything on the way out, whatever happened."""
    # Short: each box's admin socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="smcp-fleet-", dir="/tmp"))
    cache = cache_dir or root / "cache"
    data_key = data_key or secrets.token_bytes(32)
    boxes: dict[str, FleetBox] = {}
    for box_id in box_ids:
        workdir = root / box_id
        write_data_key(workdir / "state" / "data.key", data_key)
        env = {
            "SMCP_BOX_CLUSTER_BOX_ID": box_id,
            # A killed box is known gone (its sessions free to take over, its id to reuse)
            # after 2 s rather than 10.
            "SMCP_BOX_CLUSTER_HEARTBEAT_S": "0.5",
            "SMCP_BOX_CLUSTER_DEAD_AFTER_S": "2",
            "SMCP_BOX_CACHE_DIR": str(cache),
            "SMCP_BOX_SERVER_TRUSTED_PROXIES": "127.0.0.1",
            **(extra_env or {}),
        }
        if dsn is not None:
            env |= {"SMCP_BOX_STORE_BACKEND": "postgres", "SMCP_BOX_STORE_DSN": dsn}
        boxes[box_id] = FleetBox(
            workdir=workdir, tenants_dir=tenants_dir, extra_env=env, port=free_port(), box_id=box_id
        )
    lb_port = free_port()
    stats = root / "haproxy.sock"
    config = root / "haproxy.cfg"
    ports = {box_id: box.port for box_id, box in boxes.items()}
    config.write_text(lb_config_text(ports, lb_port, stats, lb_args))
    fleet = Fleet(
        root=root,
        boxes=boxes,
        lb=HaproxyProcess(config=config, stats_socket=stats, log_path=root / "haproxy.log"),
        lb_port=lb_port,
        dsn=dsn,
    )
    try:
        # Together: the first box to reach an empty database migrates it, the others wait.
        with ThreadPoolExecutor(max_workers=len(boxes)) as pool:
            for started in [pool.submit(box.start, BOX_START_TIMEOUT_S) for box in boxes.values()]:
                started.result()
        fleet.lb.start(lb_port)
        for box_id in boxes:
            fleet.wait_lb_sees(box_id, "UP")
        yield fleet
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
