"""``smcp-box user …``, run as real processes against a real box's socket."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import subprocess
import sys
import termios

from smcp_box.auth.passwords import verify_password
from tests.admin.support import REPO, RunningBox
from tests.admin.test_cli import cli_env, smcp


async def test_user_commands(rb: RunningBox) -> None:
    added = await smcp(rb, "user", "add", "alice", "--password-stdin", stdin=b"s3cret pass\n")
    assert added.code == 0, added.err
    assert "added user alice" in added.out
    stored = await rb.box.store.get_user("alice")
    assert stored is not None
    assert verify_password(stored.password_hash, "s3cret pass")

    granted = await smcp(rb, "user", "grant", "alice", "notes", "--scopes", "mcp:tools,mcp:prompts")
    assert granted.code == 0, granted.err
    assert "alice may use notes with mcp:tools mcp:prompts" in granted.out
    assert (await smcp(rb, "user", "grant", "alice", "utils")).code == 0
    listed = await smcp(rb, "user", "list")
    lines = listed.out.splitlines()
    assert lines[0].split() == ["USER", "STATE", "CREATED", "TENANT", "SCOPES"]
    assert lines[1].split()[-2:] == ["notes", "mcp:tools,mcp:prompts"]
    assert lines[2].split()[-2:] == ["utils", "mcp:tools,mcp:resources,mcp:prompts"]
    assert "s3cret" not in listed.out
    as_json = json.loads((await smcp(rb, "user", "list", "--json")).out)
    assert as_json["users"][0]["grants"]["notes"] == ["mcp:tools", "mcp:prompts"]

    changed = await smcp(rb, "user", "passwd", "alice", "--password-stdin", stdin=b"new pass 1\n")
    assert changed.code == 0, changed.err
    stored = await rb.box.store.get_user("alice")
    assert stored is not None
    assert verify_password(stored.password_hash, "new pass 1")

    revoked = await smcp(rb, "user", "revoke", "alice", "utils")
    assert (revoked.code, revoked.out.strip()) == (
        0,
        "revoked alice's grant on utils and with it 0 refresh-token families and 0 consents",
    )
    removed = await smcp(rb, "user", "remove", "alice")
    assert removed.out.strip() == (
        "removed user alice (grants removed: notes; revoked 0 refresh-token families and "
        "0 consents)"
    )
    assert (await smcp(rb, "user", "list")).out.strip().startswith("no users")


async def test_user_command_errors(rb: RunningBox) -> None:
    # No terminal and no --password-stdin: refused before anything is sent.
    no_tty = await smcp(rb, "user", "add", "alice")
    assert no_tty.code == 2
    assert "--password-stdin" in no_tty.err
    assert await rb.box.store.get_user("alice") is None
    short = await smcp(rb, "user", "add", "alice", "--password-stdin", stdin=b"short\n")
    assert short.code == 1
    assert "8 to 1024 characters" in short.err
    await smcp(rb, "user", "add", "alice", "--password-stdin", stdin=b"long enough\n")
    unknown_tenant = await smcp(rb, "user", "grant", "alice", "nope")
    assert unknown_tenant.code == 1
    assert "no tenant named 'nope'" in unknown_tenant.err
    bad_scope = await smcp(rb, "user", "grant", "alice", "notes", "--scopes", "mcp:tool")
    assert bad_scope.code == 2
    assert "unknown scope mcp:tool" in bad_scope.err
    assert await rb.box.store.user_grants("alice") == {}


def _converse(argv: list[str], answers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Run ``argv`` on a new pseudo-terminal (its controlling terminal, as getpass wants),
    answering each prompt; returns the exit code and everything the terminal showed."""
    master, slave = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=cli_env(),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,  # the child must own the terminal, as getpass wants
    )
    os.close(slave)
    shown = b""
    try:
        for prompt, answer in answers:
            while prompt not in shown:
                chunk = os.read(master, 1024)
                if not chunk:
                    raise AssertionError(f"no prompt {prompt!r}; the terminal showed {shown!r}")
                shown += chunk
            os.write(master, answer)
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        return proc.wait(timeout=60), shown
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_password_asked_on_the_terminal_without_echo(rb: RunningBox) -> None:
    argv = [sys.executable, "-m", "smcp_box.cli", "user", "add", "bob"]
    argv += ["--socket", str(rb.socket_path)]
    code, shown = await asyncio.to_thread(
        _converse,
        argv,
        [(b"password for bob: ", b"typed secretly\n"), (b"again: ", b"typed secretly\n")],
    )
    assert code == 0, shown
    assert b"added user bob" in shown
    assert b"typed secretly" not in shown
    stored = await rb.box.store.get_user("bob")
    assert stored is not None
    assert verify_password(stored.password_hash, "typed secretly")
    code, shown = await asyncio.to_thread(
        _converse,
        [*argv[:4], "passwd", "bob", "--socket", str(rb.socket_path)],
        [(b"new password for bob: ", b"one thing\n"), (b"again: ", b"another\n")],
    )
    assert code == 2
    assert b"the two passwords differ" in shown
