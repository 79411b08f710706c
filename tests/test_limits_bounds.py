"""One limits vocabulary with one table of bounds: every layer refuses the same values with the
same message (box defaults from TOML and env, tenant.toml, resolve_limits, the registry, the admin
API and the CLI), prefixed at most by where the value came from."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smcp_box.admin.cli_commands import LIMIT_FLAGS
from smcp_box.admin.tenant_routes import LIMIT_KEYS
from smcp_box.config import LIMITS, SandboxSettings, load_settings
from smcp_box.errors import AdminRequestFailed, ConfigError
from smcp_box.sandbox import Limits
from smcp_box.tenancy.manifest import load_manifest, resolve_limits
from smcp_box.tui.views.tenants import LIMIT_FIELDS
from tests.admin.support import REPO, RunningBox, running_box

#: Each limit one above its maximum, and the message every layer gives for it.
ABOVE_MAXIMUM = {
    "memory_mib": (4097, "memory_mib = 4097 is out of range: allowed 1..4096 (MiB)"),
    "fuel": (
        10**12 + 1,
        "fuel = 1000000000001 is out of range: allowed 1000..1000000000000 (fuel units)",
    ),
    "timeout_ms": (600_001, "timeout_ms = 600001 is out of range: allowed 1..600000 (ms)"),
    "max_reply_bytes": (
        64 * 2**20 + 1,
        "max_reply_bytes = 67108865 is out of range: allowed 64..67108864 (bytes)",
    ),
    "max_message_bytes": (
        64 * 2**20 + 1,
        "max_message_bytes = 67108865 is out of range: allowed 64..67108864 (bytes)",
    ),
    "max_instances": (257, "max_instances = 257 is out of range: allowed 1..256 (instances)"),
    "warm_instances": (257, "warm_instances = 257 is out of range: allowed 0..256 (instances)"),
    "max_concurrent_calls": (
        1025,
        "max_concurrent_calls = 1025 is out of range: allowed 1..1024 (calls)",
    ),
    "queue_timeout_ms": (
        60_001,
        "queue_timeout_ms = 60001 is out of range: allowed 1..60000 (ms)",
    ),
    "max_host_calls": (
        10_000_001,
        "max_host_calls = 10000001 is out of range: allowed 1..10000000 (calls)",
    ),
}
MEMORY_99999 = "memory_mib = 99999 is out of range: allowed 1..4096 (MiB)"
PER_LIMIT = pytest.mark.parametrize(
    ("name", "value", "message"), [(name, *case) for name, case in ABOVE_MAXIMUM.items()]
)


def test_one_vocabulary_everywhere() -> None:
    names = list(ABOVE_MAXIMUM)
    assert list(LIMITS) == names
    box_only = {"tick_ms", "inline_fuel", "cpu_slots"}
    assert [f.name for f in dataclasses.fields(SandboxSettings) if f.name not in box_only] == names
    assert [f.name for f in dataclasses.fields(Limits)] == names
    assert list(LIMIT_KEYS) == names
    assert [flag for flag, _ in LIMIT_FLAGS] == names
    assert [name for name, _ in LIMIT_FIELDS] == names
    # One default: the record's defaults are the box's.
    assert Limits() == resolve_limits(SandboxSettings(), None)
    assert Limits.from_settings(SandboxSettings()) == Limits()


@PER_LIMIT
def test_resolve_limits_refuses(name: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_limits(SandboxSettings(), {name: value})
    assert info.value.message == message
    with pytest.raises(ConfigError) as info:
        Limits(**{name: value})
    assert info.value.message == message


@PER_LIMIT
def test_tenant_toml_refuses(tmp_path: Path, name: str, value: int, message: str) -> None:
    path = tmp_path / "tenant.toml"
    path.write_text(
        f'name = "t"\nmodule = "t.wasm"\nsha256 = "{"0" * 64}"\n[limits]\n{name} = {value}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert info.value.message == f"{path}: [limits] {message}"


@PER_LIMIT
def test_box_default_from_env_refuses(name: str, value: int, message: str) -> None:
    variable = f"SMCP_BOX_SANDBOX_{name.upper()}"
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={variable: str(value)})
    assert info.value.message == f"environment ({variable}): {message}"


@PER_LIMIT
def test_box_default_from_toml_refuses(tmp_path: Path, name: str, value: int, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[sandbox]\n{name} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.message == f"{path} [sandbox]: {message}"


def test_the_briefs_examples(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_limits(SandboxSettings(), {"memory_mib": 99999})
    assert info.value.message == MEMORY_99999
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"SMCP_BOX_SANDBOX_MEMORY_MIB": "100000"})
    assert info.value.message.endswith("memory_mib = 100000 is out of range: allowed 1..4096 (MiB)")


def test_below_minimum_and_wrong_types(tmp_path: Path) -> None:
    for overrides, message in [
        ({"fuel": 999}, "fuel = 999 is out of range: allowed 1000..1000000000000 (fuel units)"),
        ({"memory_mib": 0}, "memory_mib = 0 is out of range: allowed 1..4096 (MiB)"),
        ({"timeout_ms": "5000"}, "timeout_ms = '5000' is not an integer (ms)"),
        ({"max_instances": True}, "max_instances = True is not an integer (instances)"),
        ({"tick_ms": 5}, "unknown limit 'tick_ms'"),
    ]:
        with pytest.raises(ConfigError) as info:
            resolve_limits(SandboxSettings(), overrides)
        assert info.value.message.startswith(message)
    # A TOML value must have its type; only environment text is parsed.
    path = tmp_path / "config.toml"
    path.write_text('[sandbox]\nmemory_mib = "64"\n')
    with pytest.raises(ConfigError, match="expected an integer"):
        load_settings(path, environ={})
    assert (
        load_settings(None, environ={"SMCP_BOX_SANDBOX_MEMORY_MIB": "64"}).sandbox.memory_mib == 64
    )


# --- a running box: the admin API (which the TUI uses), the registry and the CLI ------------


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
async def rb(tmp_path: Path, module_cache: Path) -> AsyncIterator[RunningBox]:
    async with running_box(tmp_path, module_cache) as running:
        yield running


async def test_admin_api_and_registry_refuse(rb: RunningBox) -> None:
    before = rb.box.tenants.require("notes").module.limits
    for name, (value, message) in ABOVE_MAXIMUM.items():
        with pytest.raises(AdminRequestFailed) as info:
            await rb.client.set_limits("notes", {name: value})
        assert info.value.status == 400
        assert info.value.message == f"admin change: {message}"
        with pytest.raises(ConfigError) as direct:
            rb.box.tenants.check_limits("notes", {name: value})
        assert direct.value.message == message
    assert rb.box.tenants.require("notes").module.limits == before
    shown = await rb.client.request("GET", "/tenants/notes")
    assert shown["admin_limit_overrides"] == {}


async def smcp(rb: RunningBox, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smcp_box.cli",
        *args,
        "--socket",
        str(rb.socket_path),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_cli_refuses(rb: RunningBox) -> None:
    runs = [
        smcp(rb, "tenant", "limits", "notes", f"--{name.replace('_', '-')}", str(value))
        for name, (value, _) in ABOVE_MAXIMUM.items()
    ]
    runs.append(smcp(rb, "tenant", "limits", "notes", "--memory-mib", "99999"))
    results = await asyncio.gather(*runs)
    messages = [message for _, message in ABOVE_MAXIMUM.values()] + [MEMORY_99999]
    for (code, err), message in zip(results, messages, strict=True):
        assert code == 1, err
        assert f"admin change: {message}" in err
    assert rb.box.tenants.require("notes").module.limits.memory_mib == 64
