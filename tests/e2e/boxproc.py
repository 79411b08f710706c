"""Run a real ``smcp-box serve`` in a subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.processes import terminate
from tests.support.waiting import wait_until_sync

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BoxProcess:
    workdir: Path
    tenants_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    scheme: str = "http"
    #: CA bundle to verify the box's certificate with, when scheme is https.
    verify: ssl.SSLContext | bool = True

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, tenant: str) -> str:
        return f"{self.base_url}/t/{tenant}/mcp"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
        env.update(
            SMCP_BOX_STATE_DIR=str(self.workdir / "state"),
            SMCP_BOX_CACHE_DIR=str(self.workdir / "cache"),
            SMCP_BOX_RUNTIME_DIR=str(self.workdir / "run"),
            SMCP_BOX_TENANTS_DIR=str(self.tenants_dir),
            # Load and durability tests drive the box as fast as it goes; the default request
            # quota (200/s) would answer them 429 on a fast machine. Quotas have their own
            # tests (tests/web/test_quotas.py, tests/tenancy/test_quotas.py); extra_env may
            # set them back.
            SMCP_BOX_QUOTAS_REQUESTS_PER_S="0",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smcp_box.cli", *args],
            env=self.env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def create_key(self, tenant: str) -> str:
        out = self.cli("key", "create", tenant, "--json").stdout
        return str(json.loads(out)["key"])

    def serve_command(self) -> list[str]:
        """The command that runs the box (a subclass may wrap it, e.g. to change user)."""
        return [sys.executable, "-m", "smcp_box.cli", "serve", "--port", str(self.port)]

    def start(self, timeout_s: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A restart keeps the port, as a real restart does, so clients' URLs stay valid.
        self.port = self.port or free_port()
        self.log_path = self.workdir / f"box-{self.port}.log"
        with self.log_path.open("w") as log:
            # The child keeps its own copy of the descriptor; ours can close at once.
            self.proc = subprocess.Popen(
                self.serve_command(),
                env=self.env(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            self._wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout_s: float) -> None:
        proc = self.proc
        assert proc is not None

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"smcp-box exited early:\n{self.log()}")
            try:
                health = httpx.get(f"{self.base_url}/healthz", timeout=1, verify=self.verify)
            except httpx.HTTPError:
                return False
            return health.status_code == 200

        wait_until_sync(
            healthy,
            what="smcp-box to become healthy",
            timeout=timeout_s,
            interval=0.05,
            detail=self.log,
        )

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.proc is None:
            return 0
        code = terminate(self.proc, timeout_s)
        self.proc = None
        return code


def copy_tenants(dest: Path, names: list[str] | None = None) -> Path:
    """Copy the repository's example tenants (all, or the named ones) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in sorted((REPO / "tenants").iterdir()):
        if (folder / "tenant.toml").exists() and (names is None or folder.name in names):
            shutil.copytree(folder, dest / folder.name, dirs_exist_ok=True)
    return dest
