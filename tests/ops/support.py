"""Helpers for the operations tests: the ops fault tenant built from C source, in-process boxes
served by a real Hypercorn, and ``smcp-box`` subprocesses (through tests.e2e.boxproc)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from smcp_box.box import Box
from smcp_box.config import Settings, load_settings
from tests.e2e.boxproc import REPO, BoxProcess, free_port
from tests.support.waiting import wait_until

OPS_SOURCE = Path(__file__).parent / "fixtures" / "ops_tenant.c"
EXAMPLES = ("notes", "utils")


def build_ops_module(dest: Path) -> Path:
    module = dest / "ops.wasm"
    subprocess.run(
        ["sh", str(REPO / "sdk" / "c" / "cc.sh"), str(module), str(OPS_SOURCE)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return module


def add_ops_tenant(
    tenants_dir: Path,
    module: Path,
    *,
    name: str = "ops",
    limits: str = "fuel = 100000000000\n",
    receipts: bool | None = None,
    auth: str = "api_key",
) -> Path:
    folder = tenants_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(module, folder / "ops.wasm")
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    lines = [
        f'name = "{name}"',
        'module = "ops.wasm"',
        f'sha256 = "{digest}"',
        f'auth = "{auth}"',
    ]
    if receipts is not None:
        lines.append(f"receipts = {'true' if receipts else 'false'}")
    (folder / "tenant.toml").write_text("\n".join(lines) + f"\n[limits]\n{limits}")
    return folder


def copy_examples(tenants_dir: Path, names: tuple[str, ...] = EXAMPLES) -> Path:
    tenants_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(REPO / "tenants" / name, tenants_dir / name)
    return tenants_dir


def short_dir() -> Path:
    """Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer."""
    return Path(tempfile.mkdtemp(prefix="smcp-ops-", dir="/tmp"))


def box_settings(workdir: Path, tenants_dir: Path, cache_dir: Path, **extra: Any) -> Settings:
    overrides = {
        "state_dir": str(workdir / "state"),
        "cache_dir": str(cache_dir),
        "runtime_dir": str(workdir / "run"),
        "tenants_dir": str(tenants_dir),
        **extra,
    }
    return load_settings(None, environ={}, overrides=overrides)


@contextlib.asynccontextmanager
async def serving(box: Box, app: Any = None) -> AsyncIterator[str]:
    """The box's web app (or ``app``) on a free loopback port; yields its base URL."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from smcp_box.web.app import create_app

    config = Config()
    config.bind = [f"127.0.0.1:{free_port()}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    app = app if app is not None else create_app(box.settings, box.app_services())
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    base = f"http://{config.bind[0]}"
    async with httpx.AsyncClient() as probe:

        async def answers() -> bool:
            try:
                await probe.get(f"{base}/healthz")
            except httpx.TransportError:
                return False
            return True

        await wait_until(answers, what=f"the MCP app to answer on {base}", interval=0.02)
    try:
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Box]:
    box = await Box.start(settings)
    try:
        yield box
    finally:
        await box.stop()


def ops_box(
    workdir: Path,
    ops_module: Path,
    module_cache: Path,
    *,
    examples: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
    **tenant: Any,
) -> BoxProcess:
    """A ``smcp-box serve`` subprocess (not started) serving the ops tenant and ``examples``."""
    tenants = workdir / "tenants"
    add_ops_tenant(tenants, ops_module, **tenant)
    copy_examples(tenants, examples)
    env = {"SMCP_BOX_CACHE_DIR": str(module_cache), **(extra_env or {})}
    return BoxProcess(workdir=workdir, tenants_dir=tenants, extra_env=env)


async def busy_calls(base_url: str, tenant: str) -> float:
    """How many module calls of ``tenant`` run now, from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base_url}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "smcp_box_busy_calls" and sample.labels == {"tenant": tenant}:
                return sample.value
    return 0.0
