"""The shipped unit files, checked by systemd's own analyser.

``systemd-analyze verify`` checks that every binary a unit names exists and is executable. The
installed path (/opt/smcp-box/bin/smcp-box) does not exist on a test machine, so the units are
copied to a temporary folder and ExecStart= is pointed at a real executable: the console script
of this checkout's environment when installed, else a stub script. Nothing else is changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
SERVICE = SYSTEMD_DIR / "smcp-box.service"
SOCKET = SYSTEMD_DIR / "smcp-box.socket"
INSTALLED_BINARY = "/opt/smcp-box/bin/smcp-box"
MAX_EXPOSURE = 2.0

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is absent (Debian package systemd)"
)


def _directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """The units in a folder of their own, with ExecStart= at an executable that exists."""
    executable = shutil.which("smcp-box")
    if executable is None:
        stub = tmp_path / "bin" / "smcp-box"
        stub.parent.mkdir()
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        executable = str(stub)
    units = tmp_path / "units"
    units.mkdir()
    service = SERVICE.read_text()
    assert service.count(f"ExecStart={INSTALLED_BINARY} serve") == 1
    (units / SERVICE.name).write_text(service.replace(INSTALLED_BINARY, executable))
    shutil.copy(SOCKET, units / SOCKET.name)
    return units


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "--no-pager", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_reports_nothing(staged: Path) -> None:
    result = _run("verify", f"./{SERVICE.name}", f"./{SOCKET.name}", cwd=staged)
    assert result.returncode == 0, result.stderr
    # Any line at all is a warning (unknown directive, bad value, missing binary, …).
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_security_exposure_is_at_most_2(staged: Path) -> None:
    result = _run("security", "--offline=yes", f"./{SERVICE.name}", cwd=staged)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    match = re.search(r"Overall exposure level for smcp-box\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, result.stdout


def test_settings_that_would_break_wasmtime_are_absent() -> None:
    service = _directives(SERVICE)
    # wasmtime compiles modules to native code in W^X-flipped memory; MDWE=yes stops every call.
    assert "MemoryDenyWriteExecute" not in service
    # wasmtime reserves gigabytes of address space per instance for guard regions.
    assert "LimitAS" not in service
    assert "LimitMEMLOCK" not in service


def test_service_contract_with_the_box() -> None:
    service = _directives(SERVICE)
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["ExecStart"] == [f"{INSTALLED_BINARY} serve"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["DynamicUser"] == ["yes"]
    for kind in ("State", "Cache", "Runtime", "Configuration"):
        assert service[f"{kind}Directory"] == ["smcp-box"]
    assert service["RuntimeDirectoryMode"] == ["0750"]
    assert service["UMask"] == ["0077"]
    assert service["Environment"][0] == "SMCP_BOX_TENANTS_DIR=/etc/smcp-box/tenants"
    # Relative credential sources come from the credstore and may be absent without failing
    # the start; an absolute path would make a missing file fatal.
    for credential in service["LoadCredential"]:
        name, _, source = credential.partition(":")
        assert name in {"data-key", "tls-key"}
        assert not source.startswith("/")
    assert int(service["LimitNOFILE"][0]) >= 65536


def test_stop_timeout_outlasts_the_grace_period() -> None:
    from smcp_box.config import ServerSettings

    service = _directives(SERVICE)
    stop = service["TimeoutStopSec"][0]
    assert stop.endswith("s")
    assert float(stop[:-1]) > ServerSettings().shutdown_grace_s + 5
    watchdog = service["WatchdogSec"][0]
    assert watchdog == "30s"


def test_socket_unit_hands_the_box_one_stream_socket() -> None:
    socket_unit = _directives(SOCKET)
    assert socket_unit["ListenStream"] == ["8765"]
    assert "Accept" not in socket_unit  # one long-running box, not a process per connection


def test_credential_names_match_what_the_box_reads() -> None:
    from smcp_box.ops.certs import TLS_KEY_CREDENTIAL
    from smcp_box.store.keyfile import CREDENTIAL_NAME

    credentials = dict(line.split(":", 1) for line in _directives(SERVICE)["LoadCredential"])
    assert credentials == {CREDENTIAL_NAME: "smcp-box.data-key", "tls-key": TLS_KEY_CREDENTIAL}
