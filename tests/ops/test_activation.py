"""Socket activation, with systemd's own systemd-socket-activate passing a real socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from smcp_box.errors import ConfigError
from smcp_box.ops.activation import bind_specs, listen_binds, listen_sockets
from tests.support.waiting import wait_until_sync

REPO = Path(__file__).resolve().parents[2]
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
needs_socket_activate = pytest.mark.skipif(
    SOCKET_ACTIVATE is None, reason="systemd-socket-activate (Debian package systemd) is absent"
)

# The box's side, as `serve` will run it: consume LISTEN_FDS, bind Hypercorn to fd://N, serve
# one request that reports what it saw, then stop.
CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from smcp_box.errors import ConfigError
    from smcp_box.ops.activation import listen_sockets

    try:
        sockets = listen_sockets()
    except ConfigError as exc:
        print("ConfigError:", exc, flush=True)
        sys.exit(3)
    report = {
        "binds": [s.bind for s in sockets],
        "names": [s.name for s in sockets],
        "addresses": [s.address for s in sockets],
        "env_left": sorted(k for k in os.environ if k.startswith("LISTEN_")),
        "inheritable": [os.get_inheritable(s.fd) for s in sockets],
    }

    async def main() -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        done = asyncio.Event()

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    kind = message["type"].rsplit(".", 1)[-1]
                    await send({"type": f"lifespan.{kind}.complete"})
                    if kind == "shutdown":
                        return
            body = json.dumps(report).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            done.set()

        config = Config()
        config.bind = [s.bind for s in sockets]
        config.accesslog = None
        await serve(app, config, shutdown_trigger=done.wait)

    asyncio.run(main())
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _activate(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    assert SOCKET_ACTIVATE is not None
    return subprocess.Popen(
        [
            SOCKET_ACTIVATE,
            *extra,
            f"--listen=127.0.0.1:{port}",
            f"--setenv=PYTHONPATH={REPO}",
            sys.executable,
            str(child),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _get_with_retry(url: str) -> httpx.Response:
    responses: list[httpx.Response] = []

    def answered() -> bool:
        try:
            responses.append(httpx.get(url, timeout=20))
        except httpx.ConnectError:
            return False  # systemd-socket-activate has not bound the port yet
        return True

    wait_until_sync(answered, what=f"an answer from {url}", timeout=20, interval=0.05)
    return responses[0]


@needs_socket_activate
def test_hypercorn_serves_on_the_passed_socket(tmp_path: Path) -> None:
    port = _free_port()
    process = _activate(tmp_path, port, "--fdname=http")
    try:
        response = _get_with_retry(f"http://127.0.0.1:{port}/")
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert response.status_code == 200, stderr
    report = response.json()
    assert report == {
        "binds": ["fd://3"],
        "names": ["http"],
        "addresses": [f"127.0.0.1:{port}"],
        "env_left": [],
        "inheritable": [False],
    }
    assert process.returncode == 0, stderr


@needs_socket_activate
def test_a_datagram_socket_is_refused(tmp_path: Path) -> None:
    port = _free_port()
    process = _activate(tmp_path, port, "--datagram")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            # Poke until the child runs: the first datagram may arrive before the bind.
            def poked_and_exited() -> bool:
                if process.poll() is not None:
                    return True
                udp.sendto(b"wake", ("127.0.0.1", port))
                return False

            wait_until_sync(
                poked_and_exited, what="the activated child to exit", timeout=20, interval=0.1
            )
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 3, stderr
    assert "not a listening stream socket" in stdout


def test_not_activated_means_bind_normally() -> None:
    environ: dict[str, str] = {}
    assert listen_sockets(environ) == []
    assert bind_specs(environ) is None


def test_sockets_for_another_process_are_ignored_and_unset() -> None:
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}
    assert listen_sockets(environ) == []
    assert environ == {}


def test_unset_can_be_declined() -> None:
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert listen_sockets(environ, unset=False) == []
    assert environ == {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}


@pytest.mark.parametrize(
    ("pid", "count"), [("abc", "1"), (None, "many"), (None, "-1")], ids=["pid", "count", "negative"]
)
def test_garbled_variables_are_config_errors(pid: str | None, count: str) -> None:
    environ = {"LISTEN_PID": pid or str(os.getpid()), "LISTEN_FDS": count}
    with pytest.raises(ConfigError, match="socket activation"):
        listen_sockets(environ)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_listen_binds_binds_now_when_not_activated(host: str) -> None:
    if host == "::1":
        try:
            socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
    binds = listen_binds(host, 0, {})
    assert len(binds) == 1
    assert binds[0].startswith("fd://")
    sock = socket.socket(fileno=int(binds[0].removeprefix("fd://")))
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        port = sock.getsockname()[1]
        # Already accepting into the backlog, before any server loop runs.
        with socket.create_connection((host, port), timeout=5):
            pass
        with pytest.raises(ConfigError, match="cannot listen on"):
            listen_binds(host, port, {})
    finally:
        sock.close()
