"""The sd_notify protocol, without libsystemd: newline-separated ``KEY=VALUE`` datagrams.

systemd (``Type=notify``) passes ``NOTIFY_SOCKET``, the address of an ``AF_UNIX`` datagram socket:
a file-system path, or an abstract-namespace name written with a leading ``@``. Each message is
one datagram. With ``WatchdogSec=`` set, systemd also passes ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``, the process the watchdog is meant for) and kills the service if no
``WATCHDOG=1`` arrives within that interval.

Invariants:
- Without ``NOTIFY_SOCKET`` every method is a no-op that returns False, so the same code runs
  under systemd, in a terminal and in tests.
- Sending never raises into the caller: a failed send is logged once per outage (warning), then
  quietly retried on the next message, because a notification is never worth failing a request.
- Sends never block the event loop: the socket is non-blocking, and a full queue counts as a
  failed send (systemd reads its notify socket promptly; a backlog means it is busy).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

logger = logging.getLogger("smcp_box.ops.sdnotify")

#: A health check for the watchdog: returns True while the box is healthy.
HealthCheck = Callable[[], Awaitable[bool]]

#: Used when the watchdog is off but the loop should still keep STATUS current.
DEFAULT_STATUS_PERIOD_S = 15.0


def _monotonic_usec() -> int:
    # systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC reading: it must be that clock.
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000


def parse_notify_address(value: str) -> str | bytes | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value, or None if it is not a unix socket.

    ``@name`` is an abstract-namespace socket, whose kernel name starts with a NUL byte.
    """
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode("utf-8", "surrogateescape")
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends sd_notify messages to one notification socket (or nowhere)."""

    def __init__(
        self,
        address: str | bytes | None,
        *,
        watchdog_usec: int | None = None,
        monotonic_usec: Callable[[], int] = _monotonic_usec,
    ) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._monotonic_usec = monotonic_usec
        self._failing = False

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """A notifier for the socket systemd passed; a disabled one when there is none."""
        env = os.environ if environ is None else environ
        own_pid = os.getpid() if pid is None else pid
        raw = env.get("NOTIFY_SOCKET", "")
        address = parse_notify_address(raw) if raw else None
        if raw and address is None:
            # e.g. "vsock:…" from systemd >= 254 inside a VM; not a case this appliance meets.
            logger.warning("NOTIFY_SOCKET=%r is not a unix socket; not notifying systemd", raw)
        return cls(address, watchdog_usec=_watchdog_usec(env, own_pid))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    # --- the messages -------------------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) finished: systemd marks the unit active."""
        return self.send("READY=1", *_status_field(status))

    def status(self, text: str) -> bool:
        """Free-form text shown by ``systemctl status``."""
        return self.send(*_status_field(text))

    def watchdog(self) -> bool:
        """Tell systemd the box is alive; due every :meth:`watchdog_ping_period_s` seconds."""
        return self.send("WATCHDOG=1")

    def reloading(self, status: str | None = None) -> bool:
        """A reload began; send :meth:`ready` when it is done.

        MONOTONIC_USEC lets systemd >= 253 match this message to the reload it asked for; older
        versions ignore the field.
        """
        return self.send(
            "RELOADING=1", f"MONOTONIC_USEC={self._monotonic_usec()}", *_status_field(status)
        )

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began: systemd stops expecting watchdog pings."""
        return self.send("STOPPING=1", *_status_field(status))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop, e.g. while compiling many modules."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    # --- watchdog -----------------------------------------------------------------------------

    def watchdog_interval_s(self) -> float | None:
        """systemd's watchdog timeout for this process, in seconds; None when there is none."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 1_000_000

    def watchdog_ping_period_s(self) -> float | None:
        """How often to ping: half the timeout, so one late ping is not yet fatal."""
        interval = self.watchdog_interval_s()
        return None if interval is None else interval / 2

    # --- transport ----------------------------------------------------------------------------

    def send(self, *fields: str) -> bool:
        """Send one message made of ``KEY=VALUE`` fields; True if it left this process."""
        if self._address is None or not fields:
            return False
        payload = ("\n".join(fields) + "\n").encode("utf-8", "replace")
        try:
            # A socket per message, as libsystemd does: messages are rare (a ping every ~15 s),
            # and nothing stays open for a caller to forget to close.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._failing:
                logger.warning("cannot notify systemd at %r: %s", self._address, exc)
                self._failing = True
            else:
                logger.debug("cannot notify systemd at %r: %s", self._address, exc)
            return False
        if self._failing:
            logger.info("notifying systemd works again")
            self._failing = False
        return True


def _status_field(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    # A newline would end the field early and turn the rest into a bogus assignment.
    return ("STATUS=" + " ".join(text.splitlines()),)


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    raw = environ.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID", "")
    # The variables are inherited by children; only the process systemd named may ping.
    if watchdog_pid and watchdog_pid != str(pid):
        return None
    try:
        usec = int(raw)
    except ValueError:
        logger.warning("ignoring WATCHDOG_USEC=%r: not an integer", raw)
        return None
    return usec if usec > 0 else None


# --- the watchdog loop ---------------------------------------------------------------------------


async def watchdog_loop(
    notifier: Notifier,
    checks: Sequence[HealthCheck],
    *,
    period_s: float | None = None,
    check_timeout_s: float | None = None,
    healthy_status: str | Callable[[], str] = "serving",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Ping the watchdog while every check passes; runs until cancelled.

    Each round runs the checks concurrently. A check that returns False, raises or outlasts
    ``check_timeout_s`` fails the round: no ping is sent and STATUS names the failing checks, so
    that a box whose database or sandbox ticker is stuck is restarted by systemd once the
    watchdog timeout passes, while ``systemctl status`` says why. STATUS is only re-sent when it
    changes; ``healthy_status`` may be a callable for a live summary ("serving 4 tenants").
    The period defaults to half the watchdog timeout; without a watchdog, the loop still
    keeps STATUS current every ``DEFAULT_STATUS_PERIOD_S``; without systemd it returns at once.
    ``sleep`` waits between rounds (tests pass one they step by hand).
    """
    if not notifier.enabled:
        return
    period = period_s or notifier.watchdog_ping_period_s() or DEFAULT_STATUS_PERIOD_S
    # A check slower than one period would delay the ping past its due time anyway.
    timeout = check_timeout_s if check_timeout_s is not None else period
    names = [_check_name(check, index) for index, check in enumerate(checks)]
    last_status: str | None = None
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        pairs = zip(checks, names, strict=True)
        results = await asyncio.gather(
            *(_run_check(check, name, timeout_s=timeout) for check, name in pairs)
        )
        failed = [name for name, ok in zip(names, results, strict=True) if not ok]
        if failed:
            status = "unhealthy: " + ", ".join(failed) + " failing; watchdog not pinged"
        else:
            status = healthy_status() if callable(healthy_status) else healthy_status
            notifier.watchdog()
        if status != last_status:
            if failed:
                logger.error("health check failed (%s); withholding watchdog pings", status)
            elif last_status is not None:
                logger.info("health checks pass again; resuming watchdog pings")
            notifier.status(status)
            last_status = status
        await sleep(max(0.0, period - (loop.time() - started)))


async def _run_check(check: HealthCheck, name: str, *, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await check())
    except TimeoutError:
        logger.warning("health check %r took longer than %.3g s", name, timeout_s)
        return False
    except Exception:
        logger.exception("health check %r raised", name)
        return False


def _check_name(check: HealthCheck, index: int) -> str:
    name = getattr(check, "__name__", "")
    if not name or name == "<lambda>":
        return f"check {index + 1}"
    return str(name).removeprefix("check_").replace("_", " ")
