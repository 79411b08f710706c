"""sd_notify against real AF_UNIX datagram sockets, as systemd's notify socket is one."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.ops.sdnotify import HealthCheck, Notifier, parse_notify_address, watchdog_loop


class Receiver:
    """The service-manager end: a bound datagram socket that collects messages."""

    def __init__(self, sock: socket.socket, environ_value: str) -> None:
        self.sock = sock
        self.environ_value = environ_value

    def recv(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536).decode()

    def drain(self) -> list[str]:
        self.sock.setblocking(False)
        messages = []
        try:
            while True:
                messages.append(self.sock.recv(65536).decode())
        except BlockingIOError:
            return messages

    async def arecv(self, seconds: float = 2.0) -> str:
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(seconds):
            data = await loop.sock_recv(self.sock, 65536)
        return data.decode()


def _short_dir(tmp_path: Path) -> Path:
    # sun_path holds 107 bytes; pytest's tmp_path can be longer on some machines.
    if len(str(tmp_path / "notify")) < 100:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="sdn", dir="/tmp"))


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = _short_dir(tmp_path) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield Receiver(sock, str(path))
    sock.close()


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    name = f"smcp-box-test-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    yield Receiver(sock, "@" + name)
    sock.close()


def _notifier(receiver: Receiver, **environ: str) -> Notifier:
    return Notifier.from_environ({"NOTIFY_SOCKET": receiver.environ_value, **environ})


def test_parse_notify_address() -> None:
    assert parse_notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert parse_notify_address("@abc") == b"\0abc"
    assert parse_notify_address("vsock:2:1234") is None
    assert parse_notify_address("@") is None


def test_messages_reach_a_path_socket(receiver: Receiver) -> None:
    notifier = _notifier(receiver)
    assert notifier.enabled
    assert notifier.ready()
    assert receiver.recv() == "READY=1\n"
    assert notifier.ready(status="serving 3 tenants")
    assert receiver.recv() == "READY=1\nSTATUS=serving 3 tenants\n"
    assert notifier.status("compiling modules")
    assert receiver.recv() == "STATUS=compiling modules\n"
    assert notifier.watchdog()
    assert receiver.recv() == "WATCHDOG=1\n"
    assert notifier.stopping()
    assert receiver.recv() == "STOPPING=1\n"
    assert notifier.extend_timeout(2.5)
    assert receiver.recv() == "EXTEND_TIMEOUT_USEC=2500000\n"


def test_messages_reach_an_abstract_socket(abstract_receiver: Receiver) -> None:
    notifier = _notifier(abstract_receiver)
    assert notifier.ready()
    assert abstract_receiver.recv() == "READY=1\n"
    assert notifier.watchdog()
    assert abstract_receiver.recv() == "WATCHDOG=1\n"


def test_status_cannot_inject_fields(receiver: Receiver) -> None:
    notifier = _notifier(receiver)
    notifier.status("line one\nREADY=1")
    assert receiver.recv() == "STATUS=line one READY=1\n"


def test_reloading_carries_the_monotonic_clock(receiver: Receiver) -> None:
    notifier = Notifier(receiver.environ_value, monotonic_usec=lambda: 123456789)
    notifier.reloading(status="reloading TLS")
    assert receiver.recv() == "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading TLS\n"

    real = _notifier(receiver)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    real.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = receiver.recv().splitlines()
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_without_notify_socket_everything_is_a_quiet_no_op() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.reloading() is False
    assert notifier.watchdog_interval_s() is None


def test_non_unix_notify_socket_disables_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="smcp_box.ops.sdnotify"):
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:999"})
    assert not notifier.enabled
    assert "not a unix socket" in caplog.text


def test_send_failures_never_raise_and_log_once_per_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _short_dir(tmp_path) / "later"
    notifier = Notifier(str(path))
    with caplog.at_level(logging.DEBUG, logger="smcp_box.ops.sdnotify"):
        assert notifier.watchdog() is False
        assert notifier.watchdog() is False
        assert notifier.status("x") is False
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "cannot notify systemd" in warnings[0].getMessage()

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        try:
            assert notifier.watchdog() is True
            assert sock.recv(100) == b"WATCHDOG=1\n"
        finally:
            sock.close()
        assert "works again" in caplog.text
        os.unlink(path)
        assert notifier.watchdog() is False
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2


def test_a_full_queue_does_not_block(receiver: Receiver) -> None:
    # Nobody reads: the kernel queue fills (net.unix.max_dgram_qlen) and sends start failing
    # instead of blocking the caller, which is the event loop in the box.
    # (A blocking send would hang here until the test's timeout.)
    notifier = _notifier(receiver)
    results = [notifier.status(f"message {i}") for i in range(5000)]
    assert results[0] is True
    assert False in results
    assert receiver.drain()[0] == "STATUS=message 0\n"


def test_watchdog_interval(receiver: Receiver) -> None:
    pid = os.getpid()
    own = _notifier(receiver, WATCHDOG_USEC="30000000", WATCHDOG_PID=str(pid))
    assert own.watchdog_interval_s() == 30.0
    assert own.watchdog_ping_period_s() == 15.0
    no_pid = _notifier(receiver, WATCHDOG_USEC="2000000")
    assert no_pid.watchdog_interval_s() == 2.0
    other = _notifier(receiver, WATCHDOG_USEC="30000000", WATCHDOG_PID=str(pid + 1))
    assert other.watchdog_interval_s() is None
    bad = _notifier(receiver, WATCHDOG_USEC="soon")
    assert bad.watchdog_interval_s() is None
    zero = _notifier(receiver, WATCHDOG_USEC="0")
    assert zero.watchdog_interval_s() is None
    off = Notifier.from_environ({"WATCHDOG_USEC": "30000000"})
    assert off.watchdog_interval_s() is None


# --- the watchdog loop -------------------------------------------------------------------------


class Rounds:
    """The ``sleep`` of a watchdog loop under test: the loop waits in it after each round until
    the test lets the next round run, so the test sees exactly what every round sent."""

    def __init__(self) -> None:
        #: What the loop asked to sleep after each round (its period minus the round's time).
        self.periods: list[float] = []
        self._allowed = 0
        self._changed = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        async with self._changed:
            self.periods.append(seconds)
            self._changed.notify_all()
            round_ = len(self.periods)
            await self._changed.wait_for(lambda: self._allowed >= round_)

    async def finished(self, count: int) -> None:
        """Wait until ``count`` rounds have finished in all."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.periods) >= count)

    async def next(self) -> None:
        """Let one more round run, and wait until it has finished."""
        async with self._changed:
            self._allowed += 1
            self._changed.notify_all()
        await self.finished(self._allowed + 1)


async def _run_rounds(
    receiver: Receiver, notifier: Notifier, checks: list[HealthCheck], rounds: int, **options: Any
) -> list[list[str]]:
    """Run a watchdog loop for ``rounds`` rounds; what it sent in each."""
    steps = Rounds()
    task = asyncio.create_task(watchdog_loop(notifier, checks, sleep=steps.sleep, **options))
    sent: list[list[str]] = []
    try:
        await steps.finished(1)
        sent.append(receiver.drain())
        for _ in range(rounds - 1):
            await steps.next()
            sent.append(receiver.drain())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return sent


async def test_watchdog_pings_only_while_checks_pass(receiver: Receiver) -> None:
    healthy = {"database": True, "ticker": True}

    async def check_database_writable() -> bool:
        return healthy["database"]

    async def check_sandbox_ticker() -> bool:
        return healthy["ticker"]

    notifier = _notifier(receiver, WATCHDOG_USEC="40000", WATCHDOG_PID=str(os.getpid()))
    steps = Rounds()
    task = asyncio.create_task(
        watchdog_loop(notifier, [check_database_writable, check_sandbox_ticker], sleep=steps.sleep)
    )
    try:
        await steps.finished(1)
        assert receiver.drain() == ["WATCHDOG=1\n", "STATUS=serving\n"]
        await steps.next()
        assert receiver.drain() == ["WATCHDOG=1\n"]  # STATUS only when it changes

        healthy["database"] = False
        await steps.next()
        assert receiver.drain() == [
            "STATUS=unhealthy: database writable failing; watchdog not pinged\n"
        ]
        await steps.next()
        assert receiver.drain() == []  # no ping, and the same STATUS is not sent again

        healthy["database"] = True
        await steps.next()
        assert receiver.drain() == ["WATCHDOG=1\n", "STATUS=serving\n"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Every 20 ms (half of WATCHDOG_USEC), less the time the round took.
    assert all(0 <= period <= 0.02 for period in steps.periods), steps.periods


async def test_unhealthy_status_names_the_failing_check(receiver: Receiver) -> None:
    async def check_database_writable() -> bool:
        return False

    async def check_sandbox_ticker() -> bool:
        return True

    checks: list[HealthCheck] = [check_database_writable, check_sandbox_ticker]
    sent = await _run_rounds(receiver, _notifier(receiver), checks, 3, period_s=0.02)
    assert sent == [
        ["STATUS=unhealthy: database writable failing; watchdog not pinged\n"],
        [],
        [],
    ]


async def test_raising_and_hanging_checks_count_as_failures(receiver: Receiver) -> None:
    async def check_raises() -> bool:
        raise RuntimeError("disk on fire")

    async def check_hangs() -> bool:
        await asyncio.Event().wait()  # never set: only the check timeout ends it
        return True

    checks: list[HealthCheck] = [check_raises, check_hangs]
    sent = await _run_rounds(
        receiver, _notifier(receiver), checks, 2, period_s=0.05, check_timeout_s=0.02
    )
    assert sent == [["STATUS=unhealthy: raises, hangs failing; watchdog not pinged\n"], []]


async def test_watchdog_loop_returns_at_once_without_systemd() -> None:
    async def check_ok() -> bool:
        return True

    await asyncio.wait_for(watchdog_loop(Notifier.from_environ({}), [check_ok]), 10)


async def test_healthy_status_can_be_live(receiver: Receiver) -> None:
    tenants = [3]

    async def check_ok() -> bool:
        return True

    notifier = _notifier(receiver)
    steps = Rounds()
    task = asyncio.create_task(
        watchdog_loop(
            notifier,
            [check_ok],
            period_s=0.02,
            healthy_status=lambda: f"serving {tenants[0]}",
            sleep=steps.sleep,
        )
    )
    try:
        await steps.finished(1)
        first = receiver.drain()
        tenants[0] = 4
        await steps.next()
        second = receiver.drain()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert first == ["WATCHDOG=1\n", "STATUS=serving 3\n"]
    assert second == ["WATCHDOG=1\n", "STATUS=serving 4\n"]
