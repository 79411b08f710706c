"""Every shell and Python snippet in README.md and docs/*.md works when pasted, in order.

The README's quick start is run exactly as a newcomer pastes it: from a copy of the repository's
tracked files, ``pip install . && smcp-box serve`` in a fresh virtual environment (one that
sees this interpreter's packages, so nothing but the build backend is fetched), then the
following blocks in one ``bash`` session with ``set -euo pipefail`` (so ``export KEY`` carries
over to the Python example, which runs with that environment's ``python3``), then the runnable
blocks of docs/ against the same box. Every other ``sh``/``bash``/``python`` block must say why
it is not run, with ``<!-- snippet: not run: REASON -->`` on the line before its fence.

One substitution: the snippets name the box's port, 8765, and a test run cannot count on it
being free (another box, another run of this suite). The box is started on a free port
(``SMCP_BOX_SERVER_PORT``, which the README documents), and ``127.0.0.1:8765`` in the run
snippets is replaced by that address; nothing else in them is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.boxproc import free_port
from tests.support.waiting import wait_until_sync

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: Fence languages whose blocks are commands or programs a reader pastes.
SHELL = {"sh", "bash", "shell", "console"}
PYTHON = {"python", "py", "python3"}
NOT_RUN = re.compile(r"^<!--\s*snippet:\s*not run:\s*(?P<reason>\S.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")

#: Sections whose blocks run after the quick start, in this order: (document, heading).
RUN_AFTER = [("docs/clients.md", "Connecting MCP clients"), ("docs/operations.md", "The audit log")]
QUICK_START = ("README.md", "Quick start")
PORT = "127.0.0.1:8765"
#: Deadline for `pip install . && smcp-box serve` to answer /healthz: a test timeout only.
SERVE_DEADLINE_S = 180.0
#: Environment variables of this process that must not reach the pasted commands: they would
#: point the box at this run's folders or settings, or the interpreter at this checkout.
LEAKY = {
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "RUNTIME_DIRECTORY",
    "STATE_DIRECTORY",
    "CACHE_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
    "CREDENTIALS_DIRECTORY",
    "LISTEN_FDS",
    "LISTEN_PID",
    "NOTIFY_SOCKET",
}


@dataclass(frozen=True)
class Block:
    document: str  # relative to the repository
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    section: str  # the nearest heading above, without its #s
    not_run: str | None  # the reason given, when the block is marked

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def checked(self) -> bool:
        return self.lang in SHELL | PYTHON


def parse(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown document, with their section and marking."""
    lines = path.read_text(encoding="utf-8").splitlines()
    document = str(path.relative_to(REPO))
    found: list[Block] = []
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence is None:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        assert end < len(lines), f"{document}:{index + 1}: unclosed code fence"
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        mark = NOT_RUN.match(previous.strip())
        found.append(
            Block(
                document=document,
                line=index + 1,
                lang=fence["lang"],
                text="\n".join(lines[index + 1 : end]) + "\n",
                section=section,
                not_run=mark["reason"] if mark else None,
            )
        )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in parse(path)]


def section_blocks(document: str, section: str) -> list[Block]:
    blocks = [
        b
        for b in parse(REPO / document)
        if b.section == section and b.checked and b.not_run is None
    ]
    assert blocks, f"{document}: no runnable block under {section!r}"
    return blocks


def quick_start() -> list[Block]:
    return section_blocks(*QUICK_START)


def run_after() -> list[Block]:
    return [block for document, section in RUN_AFTER for block in section_blocks(document, section)]


# --- every block is run or says why not ------------------------------------------------------


def test_every_snippet_is_run_or_marked_with_a_reason() -> None:
    run = {b.where for b in quick_start() + run_after()}
    unmarked = [
        f"{b.where} ({b.lang}, under {b.section!r}): {b.text.splitlines()[0] if b.text else ''}"
        for b in all_blocks()
        if b.checked and b.not_run is None and b.where not in run
    ]
    assert not unmarked, (
        "these blocks are neither run by tests/docs/test_snippets.py nor marked with "
        "<!-- snippet: not run: REASON --> on the line before the fence:\n" + "\n".join(unmarked)
    )


def test_every_mark_is_on_a_block() -> None:
    """A mark left behind when its block was removed would silently excuse the next one."""
    stray = []
    for path in DOCUMENTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not (line.strip().startswith("<!--") and "snippet" in line):
                continue
            following = next((x for x in lines[number:] if x.strip()), "")
            if NOT_RUN.match(line.strip()) is None or FENCE.match(following) is None:
                stray.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not stray, "malformed or stray snippet marks:\n" + "\n".join(stray)


def test_the_quick_start_is_install_and_serve_then_a_key_and_calls() -> None:
    serve, *rest = quick_start()
    assert serve.text.strip() == "pip install . && smcp-box serve"
    assert [b.lang for b in rest] == ["sh", "python"]
    # The key is created for the tenant the examples call, and exported for the Python one.
    assert "export KEY=$(smcp-box key create notes" in rest[0].text
    assert "/t/notes/mcp" in rest[0].text
    assert "/t/notes/mcp" in rest[1].text


# --- running them ----------------------------------------------------------------------------


def copy_tracked_files(dest: Path) -> None:
    """The repository as a clone has it: tracked files only (as they are in the work tree)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if not source.is_file():  # deleted in the work tree, not yet committed
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def pasted_environment(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY and not k.startswith("SMCP_BOX_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def session_script(blocks: list[Block], address: str) -> str:
    """One bash session: the shell blocks as they are, each Python block as `python3 -`."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        text = block.text.replace(PORT, address)
        # On a line of its own even after output without a final newline (curl's).
        parts.append(f"printf '\\n::snippet %s::\\n' '{block.where}'")
        if block.lang in PYTHON:
            assert "SMCP_SNIPPET_EOF" not in text
            parts.append(f"python3 - <<'SMCP_SNIPPET_EOF'\n{text}SMCP_SNIPPET_EOF")
        else:
            parts.append(text)
    parts.append("printf '\\n::snippet end::\\n'")
    return "\n".join(parts) + "\n"


def outputs(stdout: str) -> dict[str, str]:
    """Each block's stdout, by its location, from the markers the session echoes."""
    pieces = re.split(r"^::snippet (.+?)::$", stdout, flags=re.MULTILINE)
    return dict(zip(pieces[1::2], pieces[2::2], strict=True))


def box_pid(shell: subprocess.Popen[bytes]) -> int:
    """The smcp-box process the serve block started: bash itself when it exec'd the last
    command of the list (bash 5.1+ does), else its child."""
    candidates = [shell.pid]
    children = Path(f"/proc/{shell.pid}/task/{shell.pid}/children")
    if children.exists():
        candidates += [int(pid) for pid in children.read_text().split()]
    for pid in candidates:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"smcp-box") for arg in cmdline) and b"serve" in cmdline:
            return pid
    raise AssertionError(f"no smcp-box serve process under bash {shell.pid}")


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short, under /tmp: the admin socket's path (./.smcp-box/run/admin.sock) must fit in
    # sun_path (~107 bytes), which pytest's tmp_path can exceed.
    path = Path(tempfile.mkdtemp(prefix="smcp-snippets-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(600)
def test_quick_start_and_docs_snippets_run_as_pasted(workdir: Path) -> None:
    repo = workdir / "repo"
    copy_tracked_files(repo)
    venv = workdir / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        capture_output=True,
    )
    env = pasted_environment(venv)
    port = free_port()
    address = f"127.0.0.1:{port}"
    serve, *pasted = quick_start()
    log_path = workdir / "serve.log"

    def log() -> str:
        return log_path.read_text(errors="replace")[-6000:]

    with log_path.open("wb") as log_file:
        shell = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + serve.text],
            cwd=repo,
            env={**env, "SMCP_BOX_SERVER_PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def healthy() -> bool:
            if shell.poll() is not None:
                raise AssertionError(f"{serve.where} exited with {shell.returncode}:\n{log()}")
            try:
                return httpx.get(f"http://{address}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until_sync(
            healthy,
            what=f"{serve.where} (pip install . && smcp-box serve) to answer /healthz",
            timeout=SERVE_DEADLINE_S,
            interval=0.1,
            detail=log,
        )
        assert "Successfully installed smcp-box" in log(), log()
        # The box runs from the venv, installed there from the copy.
        assert (venv / "bin" / "smcp-box").is_file()

        blocks = pasted + run_after()
        session = subprocess.run(
            ["bash", "-c", session_script(blocks, address)],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = f"stdout:\n{session.stdout[-6000:]}\nstderr:\n{session.stderr[-6000:]}"
        reached = re.findall(r"^::snippet (.+?)::$", session.stdout, flags=re.MULTILINE)
        assert session.returncode == 0, (
            f"the pasted snippets failed (exit {session.returncode}) in "
            f"{reached[-1] if reached else 'the first block'}\n{report}\nbox log:\n{log()}"
        )
        assert reached[-1] == "end", report
        out = outputs(session.stdout)
        curl, example = (out[b.where] for b in pasted)
        assert '"result"' in curl, f"curl got no JSON-RPC result:\n{report}"
        assert '"io.modelcontextprotocol/serverInfo"' in curl, report
        # The SDK example printed the created note (a tool result, not an error).
        assert re.search(r"\{'id': \d+, 'uri': 'note://\d+'\}", example), report
        clients = [out[b.where] for b in run_after() if b.document == "docs/clients.md"]
        assert any('"mcpServers"' in text for text in clients), report
        assert (repo / "audit.jsonl").stat().st_size > 0
    finally:
        if shell.poll() is None:
            os.kill(box_pid(shell), signal.SIGTERM)
            try:
                shell.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(shell.pid, signal.SIGKILL)
                shell.wait()
                raise AssertionError(f"the box did not stop on SIGTERM:\n{log()}") from None
    # SIGTERM lets calls in flight finish, then the box exits 0 (and so the serve line does).
    assert shell.returncode == 0, f"{serve.where} exited with {shell.returncode}:\n{log()}"
