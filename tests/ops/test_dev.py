"""``smcp-box dev DIR``: a real subprocess serving a C tenant folder, driven by the official MCP
client; a rebuild with a changed tool is served without a restart, a broken one is reported and
the last good module keeps serving."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
import wasmtime

from smcp_box.errors import ConfigError
from smcp_box.ops.authoring import build_tenant, new_tenant
from smcp_box.ops.dev import DevOptions, run_dev
from smcp_box.tenancy.pinning import pin
from tests.e2e.clients import connect
from tests.support.waiting import wait_until, wait_until_sync


@dataclass
class Output:
    """Lines a stream printed so far, collected by a thread (no blocking reads in the test)."""

    lines: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def follow(self, stream: IO[str]) -> None:
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Dev:
    proc: subprocess.Popen[str]
    out: Output
    err: Output
    url: str
    key: str


@pytest.fixture
def dev_tenant(tmp_path: Path) -> Iterator[tuple[Path, Dev]]:
    folder = new_tenant("devt", "c", tmp_path)
    build_tenant(folder, cache_dir=tmp_path / "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    env.update(SMCP_BOX_CACHE_DIR=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smcp_box.cli", "dev", str(folder), "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = Output(), Output()
    assert proc.stdout is not None
    assert proc.stderr is not None
    out.follow(proc.stdout)
    err.follow(proc.stderr)
    try:
        wait_until_sync(
            lambda: "watching" in out.text or proc.poll() is not None,
            what="smcp-box dev to start",
            timeout=60,
            detail=lambda: out.text + err.text,
        )
        assert proc.poll() is None, out.text + err.text
        url = re.search(r"endpoint\s+(\S+)", out.text)
        key = re.search(r"API key\s+(\S+)", out.text)
        assert url is not None, out.text
        assert key is not None, out.text
        yield folder, Dev(proc, out, err, url.group(1), key.group(1))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        for output, stream in ((out, proc.stdout), (err, proc.stderr)):
            assert output.thread is not None
            output.thread.join(timeout=10)
            stream.close()


async def _greet(dev: Dev, name: str) -> str:
    async with connect(dev.url, dev.key, "auto") as client:
        result = await client.call_tool("greet", {"name": name})
    assert not result.is_error, result
    return str(result.content[0].text)  # type: ignore[union-attr]


@pytest.mark.slow
async def test_dev_serves_reloads_a_rebuild_and_keeps_the_last_good_one(
    dev_tenant: tuple[Path, Dev],
) -> None:
    folder, dev = dev_tenant
    assert dev.url.startswith("http://127.0.0.1:")
    assert dev.url.endswith("/t/devt/mcp")
    assert '"mcpServers"' in dev.out.text
    assert f"Bearer {dev.key}" in dev.out.text
    assert "loaded devt: module" in dev.out.text
    assert await _greet(dev, "Ada") == "Hello, Ada! (greeting number 1)"

    source = folder / "main.c"
    source.write_text(source.read_text().replace("greeting number", "visit number"))
    build_tenant(folder)
    await wait_until(
        lambda: "reloaded devt" in dev.out.text, what="the rebuild to reload", timeout=30
    )
    # kv survives the reload (the same state dir); the tool's new text is served.
    assert await _greet(dev, "Ada") == "Hello, Ada! (visit number 2)"

    # Bytes that are not what tenant.toml pins: noted and waited for, never loaded.
    module = folder / "devt.wasm"
    good = module.read_bytes()
    module.write_bytes(b"\0asm not really")
    await wait_until(
        lambda: "tenant.toml pins another sha256; waiting for the pin" in dev.out.text,
        what="the unpinned module to be noted",
        timeout=30,
        detail=lambda: dev.out.text + dev.err.text,
    )
    assert await _greet(dev, "Ada") == "Hello, Ada! (visit number 3)"

    # A pinned rebuild that the box refuses: reported with its reason, the last good one serves.
    empty = bytes(wasmtime.wat2wasm("(module)"))
    module.write_bytes(empty)
    pin(folder, hashlib.sha256(empty).hexdigest())
    # The report is two lines, read from the pipe one at a time: wait for its last.
    await wait_until(
        lambda: "still serving the last good module" in dev.err.text,
        what="the refused rebuild to be reported",
        timeout=30,
        detail=lambda: dev.out.text + dev.err.text,
    )
    assert "did not load" in dev.err.text
    assert "smcp_handle" in dev.err.text or "export" in dev.err.text, dev.err.text
    assert await _greet(dev, "Ada") == "Hello, Ada! (visit number 4)"

    # Fixed again.
    module.write_bytes(good)
    build_tenant(folder)
    await wait_until(
        lambda: dev.out.text.count("reloaded devt") == 2, what="the fixed rebuild", timeout=30
    )
    assert await _greet(dev, "Ada") == "Hello, Ada! (visit number 5)"

    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(timeout=30) == 0


def test_dev_refuses_a_folder_without_a_tenant(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", "dev", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "has no tenant.toml" in done.stderr
    assert "smcp-box new" in done.stderr


def test_dev_asks_for_a_build_of_an_unbuilt_folder(tmp_path: Path) -> None:
    folder = new_tenant("fresh", "c", tmp_path)  # its sha256 is still the placeholder
    with pytest.raises(ConfigError, match=r"sha256 must be.*smcp-box build"):
        run_dev(DevOptions(folder, port=0))
