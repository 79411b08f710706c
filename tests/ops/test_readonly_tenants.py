"""The box runs as an unprivileged user with a read-only tenants folder (root-owned, 0555, its
files 0444, as under systemd): every admin change works, goes to the database and the state
directory, survives a restart, and leaves the tenants folder byte for byte as it was."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.boxproc import BoxProcess
from tests.ops.support import copy_examples

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
        reason="needs root and setpriv to run the box as nobody",
    ),
]

NOBODY = 65534


def as_nobody() -> list[str]:
    """Run as nobody, keeping only read/search access to everything (Python lives under
    /root here): no write access anywhere nobody could not write."""
    return [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]


@dataclass
class NobodyBox(BoxProcess):
    def serve_command(self) -> list[str]:
        return [*as_nobody(), *super().serve_command()]

    def start(self, timeout_s: float = 60.0) -> None:
        super().start(timeout_s)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every entry below ``folder``: owner, group, mode and (for files) content."""
    entries = {}
    for path in sorted([folder, *folder.rglob("*")]):
        st = path.lstat()
        content = path.read_bytes() if path.is_file() else b""
        entries[str(path.relative_to(folder))] = (st.st_uid, st.st_gid, st.st_mode, content)
    return entries


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, 0, 0)
        path.chmod(0o555 if path.is_dir() else 0o444)


def owned_by_nobody(*folders: Path) -> None:
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, NOBODY, NOBODY)
        folder.chmod(0o700)


def cli_json(box: BoxProcess, *args: str) -> dict[str, Any]:
    done = box.cli(*args, "--json", check=False)
    assert done.returncode == 0, f"{args}: {done.stderr}\n{box.log()}"
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def test_admin_changes_work_and_persist_with_a_read_only_tenants_folder(
    workdir: Path,
) -> None:
    workdir.chmod(0o755)
    tenants = copy_examples(workdir / "tenants", ("notes", "utils"))
    upload = workdir / "upload"
    shutil.copytree(tenants / "utils", upload)
    manifest = upload / "tenant.toml"
    manifest.write_text(re.sub(r'(?m)^name = ".*"$', 'name = "extra"', manifest.read_text()))
    make_read_only(tenants)
    owned_by_nobody(workdir / "state", workdir / "cache", workdir / "run", workdir / "home")
    before = snapshot(tenants)

    box = NobodyBox(workdir, tenants, extra_env={"HOME": str(workdir / "home")})
    box.start()
    try:
        assert box.proc is not None
        # The box really runs as nobody.
        status = Path(f"/proc/{box.proc.pid}/status").read_text()
        assert re.search(rf"(?m)^Uid:\s+{NOBODY}\s+{NOBODY}", status), status
        assert cli_json(box, "tenant", "disable", "utils")["enabled"] is False
        limited = cli_json(box, "tenant", "limits", "utils", "--timeout-ms", "900")
        assert limited["admin_limit_overrides"] == {"timeout_ms": 900}
        added = cli_json(box, "tenant", "add", str(upload))
        assert added["name"] == "extra"
        assert added["origin"] == "admin"
        assert added["folder"] == str(workdir / "state" / "tenants" / "extra")
        removed = cli_json(box, "tenant", "remove", "notes", "--yes")
        assert removed["files_deleted"] is False
        assert removed["folder"] == str(tenants / "notes")
        assert snapshot(tenants) == before
        assert box.stop() == 0
    finally:
        box.stop()
    assert "Permission denied" not in box.log()
    # The added tenant's files are the box user's, in the state directory.
    assert (workdir / "state" / "tenants" / "extra").stat().st_uid == NOBODY

    box.start()
    try:
        listing = cli_json(box, "tenant", "list")
        names = [t["name"] for t in listing["tenants"]]
        assert names == ["extra", "utils"], listing
        assert listing["removed"] == ["notes"]
        assert listing["failed"] == []
        utils = cli_json(box, "tenant", "show", "utils")
        assert utils["enabled"] is False
        assert utils["admin_limit_overrides"] == {"timeout_ms": 900}
        assert utils["limits"]["timeout_ms"] == 900
        extra = cli_json(box, "tenant", "show", "extra")
        assert extra["origin"] == "admin"
        assert extra["enabled"] is True
        # Removing the added tenant deletes its files from the state directory only.
        gone = cli_json(box, "tenant", "remove", "extra", "--yes")
        assert gone["files_deleted"] is True
        assert not (workdir / "state" / "tenants" / "extra").exists()
        assert box.stop() == 0
    finally:
        box.stop()
    assert snapshot(tenants) == before
    assert stat.S_IMODE((tenants / "notes").stat().st_mode) == 0o555
