"""Login throttling: failed attempts counted per user and per client address in a sliding window.

A brute-force guesser trying many passwords for one user hits the per-user limit; one spraying a
few passwords over many users from one address hits the per-address limit. Past either limit,
:meth:`LoginThrottle.retry_after` says how long until the oldest counted failure leaves the
window, and the login page refuses the attempt without checking the password (so a throttled
guess costs the box no argon2 work and tells the guesser nothing).

Invariants:
- Only failures count. A success clears that user's failures, not the address's: a sprayer who
  knows one password must not reset its address's budget for the others.
- Memory is bounded: timestamps older than the window are dropped whenever a key is touched, and
  when the table grows past ``max_tracked`` keys every expired entry is swept.
- Time comes from the injected ``clock`` (monotonic seconds), so tests control it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        max_per_user: int,
        max_per_ip: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_tracked: int = 100_000,
    ) -> None:
        if max_per_user < 1 or max_per_ip < 1 or window_s <= 0:
            raise ValueError("login throttle limits and window must be positive")
        self._max_per_user = max_per_user
        self._max_per_ip = max_per_ip
        self._window_s = window_s
        self._clock = clock
        self._max_tracked = max_tracked
        # ("user", name) / ("ip", address) → failure times, oldest first.
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, user: str, ip: str | None) -> float | None:
        """Seconds until ``user`` may try again from ``ip``; None if allowed now."""
        now = self._clock()
        waits = [
            wait
            for key, limit in self._keys(user, ip)
            if (wait := self._wait(key, limit, now)) is not None
        ]
        return max(waits) if waits else None

    def failed(self, user: str, ip: str | None) -> None:
        """Count one failed attempt against ``user`` and ``ip``."""
        now = self._clock()
        if len(self._failures) >= self._max_tracked:
            self._sweep(now)
        for key, _limit in self._keys(user, ip):
            times = self._failures.setdefault(key, deque())
            self._prune(times, now)
            times.append(now)

    def succeeded(self, user: str, ip: str | None) -> None:
        """A correct login: forget ``user``'s failures (the address keeps its count)."""
        del ip  # deliberately unused: see the module's invariants
        self._failures.pop(("user", _user_key(user)), None)

    def _keys(self, user: str, ip: str | None) -> list[tuple[tuple[str, str], int]]:
        keys = [(("user", _user_key(user)), self._max_per_user)]
        if ip:
            keys.append((("ip", ip), self._max_per_ip))
        return keys

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> float | None:
        times = self._failures.get(key)
        if times is None:
            return None
        self._prune(times, now)
        if not times:
            del self._failures[key]
            return None
        if len(times) < limit:
            return None
        # The attempt is allowed again once enough failures have aged out to drop below limit.
        return times[len(times) - limit] + self._window_s - now

    def _prune(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self._window_s:
            times.popleft()

    def _sweep(self, now: float) -> None:
        for key in list(self._failures):
            times = self._failures[key]
            self._prune(times, now)
            if not times:
                del self._failures[key]


def _user_key(user: str) -> str:
    # Usernames are case-insensitive for throttling, so "Alice" and "alice" share one budget.
    return user.casefold()
