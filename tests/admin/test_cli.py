"""The admin CLI subcommands, run as real processes against a real box's socket."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass

import pytest

from tests.admin.support import REPO, RunningBox, count_follow_polls, short_runtime_dir
from tests.support.waiting import wait_until


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}


async def smcp(rb: RunningBox | None, *args: str, stdin: bytes = b"") -> Result:
    """``smcp-box ARGS --socket <the test box's socket>``; async, so the box keeps serving."""
    socket_args = ["--socket", str(rb.socket_path)] if rb is not None else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smcp_box.cli",
        *args,
        *socket_args,
        cwd=REPO,
        env=cli_env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_status(rb: RunningBox) -> None:
    text = await smcp(rb, "status")
    assert text.code == 0, text.err
    assert "smcp-box 0.1.0" in text.out
    assert "2 loaded" in text.out
    # Regression: the text form dumped the whole settings tree; it names where things are.
    assert '"server"' not in text.out
    assert f"state: {rb.settings.state_path().resolve()}" in text.out
    assert str(rb.settings.tenants_path().resolve()) in text.out
    raw = await smcp(rb, "status", "--json")
    body = json.loads(raw.out)
    assert body["tenants"]["loaded"] == 2
    assert body["config"]["server"]["port"] == rb.settings.server.port


async def test_not_running_is_exit_3_with_a_clear_message() -> None:
    missing = short_runtime_dir() / "admin.sock"
    result = await smcp(None, "tenant", "list", "--socket", str(missing))
    assert result.code == 3
    assert "the box is not running" in result.err
    assert str(missing) in result.err


async def test_tenant_commands(rb: RunningBox) -> None:
    listed = await smcp(rb, "tenant", "list")
    assert listed.code == 0
    assert "notes" in listed.out
    assert "utils" in listed.out
    shown = await smcp(rb, "tenant", "show", "notes")
    assert "tenant notes: enabled, auth api_key" in shown.out
    assert (await smcp(rb, "tenant", "disable", "notes")).code == 0
    assert rb.box.tenants.require("notes").enabled is False
    assert (await smcp(rb, "tenant", "enable", "notes")).code == 0
    assert rb.box.tenants.require("notes").enabled is True
    limits = await smcp(rb, "tenant", "limits", "notes", "--fuel", "5000000")
    assert limits.code == 0, limits.err
    assert "fuel=5000000" in limits.out
    reset = await smcp(rb, "tenant", "limits", "notes", "--reset", "fuel", "--json")
    assert json.loads(reset.out)["admin_limit_overrides"] == {}
    shown = await smcp(rb, "tenant", "limits", "notes")
    assert shown.code == 0
    assert shown.out.startswith("limits of notes")
    reloaded = await smcp(rb, "tenant", "reload", "utils")
    assert reloaded.code == 0
    assert "reloaded utils" in reloaded.out


async def test_unknown_tenant_is_exit_1_with_the_box_message(rb: RunningBox) -> None:
    result = await smcp(rb, "tenant", "show", "nope")
    assert result.code == 1
    assert "no tenant named 'nope'" in result.err


async def test_tenant_add_and_remove(rb: RunningBox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "copy"
    source.mkdir()
    manifest = (rb.tenants_dir / "utils" / "tenant.toml").read_text()
    (source / "tenant.toml").write_text(manifest.replace('name = "utils"', 'name = "extra"'))
    (source / "utils.wasm").write_bytes((rb.tenants_dir / "utils" / "utils.wasm").read_bytes())
    added = await smcp(rb, "tenant", "add", str(source))
    assert added.code == 0, added.err
    assert "added tenant extra" in added.out
    refused = await smcp(rb, "tenant", "remove", "extra")  # stdin is not a terminal
    assert refused.code == 2
    assert "--yes" in refused.err
    assert rb.box.tenants.get("extra") is not None
    removed = await smcp(rb, "tenant", "remove", "extra", "--yes")
    assert removed.code == 0, removed.err
    assert rb.box.tenants.get("extra") is None


async def test_key_commands(rb: RunningBox) -> None:
    created = await smcp(rb, "key", "create", "notes", "--label", "laptop")
    assert created.code == 0, created.err
    secret = created.out.strip()  # alone on stdout: KEY=$(smcp-box key create notes)
    assert secret.startswith("smcp_")
    assert "shown once" in created.err
    assert f"Authorization: Bearer {secret}" in created.err
    assert '"mcpServers"' in created.err
    raw = json.loads((await smcp(rb, "key", "create", "notes", "--json")).out)
    assert raw["key"].startswith("smcp_")
    listed = await smcp(rb, "key", "list", "notes")
    assert "laptop" in listed.out
    assert raw["key_id"] in listed.out
    assert raw["key"] not in listed.out
    revoked = await smcp(rb, "key", "revoke", raw["key_id"])
    assert revoked.code == 0
    assert "revoked" in revoked.out
    again = await smcp(rb, "key", "revoke", raw["key_id"])
    assert again.code == 1
    assert "already revoked" in again.err


async def test_key_revoke_takes_the_whole_key_and_never_echoes_it(rb: RunningBox) -> None:
    """Regression: `key revoke <secret>` answered `no API key with id '<the secret>'`."""
    raw = json.loads((await smcp(rb, "key", "create", "notes", "--json")).out)
    revoked = await smcp(rb, "key", "revoke", raw["key"])
    assert revoked.code == 0, revoked.err
    assert f"revoked {raw['key_id']}" in revoked.out
    # smcp_<16 hex id>_<43 characters>: the secret may itself contain "_".
    secret_part = raw["key"][len("smcp_") + 16 + 1 :]
    assert len(secret_part) == 43
    assert secret_part not in revoked.out + revoked.err
    assert all(k.revoked for k in await rb.box.store.list_api_keys() if k.key_id == raw["key_id"])
    mistyped = raw["key"][:-1] + "!"
    refused = await smcp(rb, "key", "revoke", mistyped)
    assert refused.code == 2
    assert "nothing was revoked" in refused.err
    assert secret_part[:-1] not in refused.out + refused.err
    await rb.box.auditor.flush()
    rows = (await rb.client.audit(event="admin.key.revoke"))["entries"]
    assert rows
    assert secret_part[:-1] not in json.dumps(rows)


async def test_session_commands(rb: RunningBox) -> None:
    await rb.box.store.create_session("notes", "sid-cli", "2025-11-25", {"name": "ide"})
    listed = await smcp(rb, "session", "list")
    assert "sid-cli" in listed.out
    assert "ide" in listed.out
    ended = await smcp(rb, "session", "end", "notes", "sid-cli")
    assert ended.code == 0
    assert "no open sessions" in (await smcp(rb, "session", "list", "notes")).out


async def test_audit_list_and_follow(rb: RunningBox, monkeypatch: pytest.MonkeyPatch) -> None:
    await smcp(rb, "tenant", "disable", "utils")
    listed = await smcp(rb, "audit", "list", "--event", "admin.tenant.disable")
    assert "admin.tenant.disable" in listed.out
    assert "utils" in listed.out
    assert "box.start" not in listed.out
    polls = count_follow_polls(rb, monkeypatch)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smcp_box.cli",
        "audit",
        "follow",
        "--json",
        "--socket",
        str(rb.socket_path),
        cwd=REPO,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # It has found the newest row once it follows the log from there.
        await wait_until(lambda: polls != [], what="`audit follow` to start following", timeout=60)
        await rb.box.auditor.record(
            "test.followed", tenant=None, actor="tester", source_ip=None, outcome="ok", detail={}
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
        assert json.loads(line)["event"] == "test.followed"
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def test_tenant_limits_without_flags_shows_them(rb: RunningBox) -> None:
    """Regression: `tenant limits notes` with no flags was an error."""
    await rb.client.set_limits("notes", {"fuel": 3_000_000})
    shown = await smcp(rb, "tenant", "limits", "notes")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].startswith("limits of notes")
    fuel = next(line for line in lines if " fuel " in line)
    assert fuel.lstrip().startswith("* fuel")
    assert "3000000" in fuel
    memory = next(line for line in lines if "memory_mib" in line)
    assert "MiB, 1..4096" in memory
    assert not memory.lstrip().startswith("*")
    raw = await smcp(rb, "tenant", "limits", "notes", "--json")
    assert json.loads(raw.out)["admin_limit_overrides"] == {"fuel": 3_000_000}
