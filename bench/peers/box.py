"""Peer (c): smcp-box itself, serving benchmark tenants from a scratch folder.

The box runs as ``python -m smcp_box.cli serve`` (what the ``smcp-box`` console script runs) with
its state, cache and runtime folders under a scratch directory, so a run never touches a real
box's data. Settings are passed the documented way, as ``SMCP_BOX_*`` variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from bench.procs import ServerProcess, free_port

BOX_ENV_PREFIX = "SMCP_BOX_"


class BoxServer(ServerProcess):
    def __init__(
        self,
        workdir: Path,
        tenants_dir: Path,
        settings: dict[str, str] | None = None,
        name: str = "box",
    ) -> None:
        env = {
            "SMCP_BOX_STATE_DIR": str(workdir / "state"),
            "SMCP_BOX_CACHE_DIR": str(workdir / "cache"),
            "SMCP_BOX_RUNTIME_DIR": str(workdir / "run"),
            "SMCP_BOX_TENANTS_DIR": str(tenants_dir),
            # Quiet logs, as every peer runs: no per-request access log lines.
            "SMCP_BOX_LOG_LEVEL": "warning",
            **(settings or {}),
        }
        super().__init__(name=name, argv=[], workdir=workdir, env=env)
        self.tenants_dir = tenants_dir

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, tenant: str) -> str:
        return f"{self.base_url}/t/{tenant}/mcp"

    def base_env(self) -> dict[str, str]:
        # A developer's own SMCP_BOX_* settings must not leak into the box under test.
        return {k: v for k, v in os.environ.items() if not k.startswith(BOX_ENV_PREFIX)}

    def start_box(self, timeout_s: float = 120.0) -> None:
        self.port = free_port()
        self.argv = [
            sys.executable,
            "-m",
            "smcp_box.cli",
            "serve",
            "--port",
            str(self.port),
            "--tenants-dir",
            str(self.tenants_dir),
        ]
        self.start(ready=self._healthy, timeout_s=timeout_s)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "smcp_box.cli", *args],
            env={**self.base_env(), **self.env},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"smcp-box {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def create_key(self, tenant: str) -> str:
        out = self.cli("key", "create", tenant, "--json")
        return str(json.loads(out)["key"])
