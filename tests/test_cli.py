"""The CLI's own commands that need no running box: version, config check and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from smcp_box import __version__


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    return subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"smcp-box {__version__}"


def test_config_check_prints_the_resolved_tree(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 9123\n")
    env = {"SMCP_BOX_LOG_LEVEL": "debug", "SMCP_BOX_STATE_DIR": str(tmp_path / "st")}
    result = run("config", "check", "--config", str(config), "--json", env=env)
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)
    assert tree["server"]["port"] == 9123
    assert tree["log_level"] == "debug"
    assert tree["resolved"]["database"] == str(tmp_path / "st" / "smcp-box.db")


def test_config_check_says_valid_and_shows_resolved_paths(tmp_path: Path) -> None:
    """Regression: it printed only JSON, with "state_dir": "" instead of the resolved path."""
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 9123\n")
    env = {"SMCP_BOX_STATE_DIR": str(tmp_path / "st")}
    result = run("config", "check", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith("configuration is valid: ")
    assert f"file {config}" in first
    assert "SMCP_BOX_STATE_DIR" in first
    assert f"  state_dir    {tmp_path / 'st'}" in rest
    assert "server.port = 9123" in rest


def test_bad_settings_exit_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nprot = 1\n")
    result = run("config", "check", "--config", str(config))
    assert result.returncode == 2
    assert "unknown setting 'server.prot'" in result.stderr
    unknown_env = run("config", "check", env={"SMCP_BOX_SERVER_PROTT": "1"})
    assert unknown_env.returncode == 2
    assert "SMCP_BOX_SERVER_PROTT" in unknown_env.stderr


def test_management_commands_say_when_the_box_is_not_running(tmp_path: Path) -> None:
    result = run("key", "list", env={"SMCP_BOX_RUNTIME_DIR": str(tmp_path / "run")})
    assert result.returncode == 3
    assert "not running" in result.stderr.lower()


def test_the_admin_section_is_a_real_setting(tmp_path: Path) -> None:
    """Regression: docs/tui.md documents `[admin] tcp_bind`, but `config check` answered
    `unknown setting 'admin'`."""
    config = tmp_path / "c.toml"
    config.write_text('[admin]\ntcp_bind = "127.0.0.1:8766"\ntoken_file = "/tmp/t"\n')
    result = run("config", "check", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["admin"]["tcp_bind"] == "127.0.0.1:8766"
    by_env = run("config", "check", "--json", env={"SMCP_BOX_ADMIN_SOCKET": "/tmp/x.sock"})
    assert json.loads(by_env.stdout)["admin"]["socket"] == "/tmp/x.sock"


def test_every_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    """Regression: only the first of several unknown keys was reported, with no suggestion."""
    config = tmp_path / "c.toml"
    config.write_text('[server]\nprot = 1\nhots = "x"\n[sandbox]\nfule = 5\n[audti]\n')
    result = run("config", "check", "--config", str(config))
    assert result.returncode == 2
    for wrong, meant in [
        ("server.prot", "server.port"),
        ("server.hots", "server.host"),
        ("sandbox.fule", "sandbox.fuel"),
        ("audti", "audit"),
    ]:
        assert f"unknown setting '{wrong}' (did you mean '{meant}'?)" in result.stderr
    env = {"SMCP_BOX_SERVER_PROT": "1", "SMCP_BOX_SANDBOX_MEMORY_MB": "3"}
    by_env = run("config", "check", env=env)
    assert by_env.returncode == 2
    assert "SMCP_BOX_SERVER_PROT (did you mean 'SMCP_BOX_SERVER_PORT'?)" in by_env.stderr
    assert "SMCP_BOX_SANDBOX_MEMORY_MB (did you mean 'SMCP_BOX_SANDBOX_MEMORY_MIB'?)" in (
        by_env.stderr
    )


def test_a_quoted_port_in_toml_is_refused(tmp_path: Path) -> None:
    """Regression: `port = "18766"` (a string) was accepted."""
    config = tmp_path / "c.toml"
    config.write_text('[server]\nport = "18766"\n')
    result = run("config", "check", "--config", str(config))
    assert result.returncode == 2
    assert "server.port" in result.stderr
