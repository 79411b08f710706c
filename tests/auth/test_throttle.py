"""LoginThrottle: per-user and per-address sliding windows on an injected clock."""

from __future__ import annotations

import pytest

from smcp_box.auth.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_user_limit_then_window_passes() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 100, 60.0, clock)
    for _ in range(3):
        assert throttle.retry_after("alice", "10.0.0.1") is None
        throttle.failed("alice", "10.0.0.1")
        clock.now += 10
    # Failures at 1000, 1010, 1020; now 1030: the first ages out at 1060.
    assert throttle.retry_after("alice", "10.0.0.2") == pytest.approx(30.0)
    assert throttle.retry_after("bob", "10.0.0.1") is None
    clock.now = 1060.0
    assert throttle.retry_after("alice", "10.0.0.1") is None


def test_user_key_ignores_case() -> None:
    throttle = LoginThrottle(1, 100, 60.0, Clock())
    throttle.failed("Alice", None)
    assert throttle.retry_after("alice", None) is not None


def test_address_limit_across_users() -> None:
    clock = Clock()
    throttle = LoginThrottle(100, 2, 60.0, clock)
    throttle.failed("a", "192.0.2.9")
    throttle.failed("b", "192.0.2.9")
    assert throttle.retry_after("c", "192.0.2.9") == pytest.approx(60.0)
    assert throttle.retry_after("c", "192.0.2.10") is None
    assert throttle.retry_after("c", None) is None


def test_success_clears_user_not_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 3, 60.0, clock)
    throttle.failed("alice", "192.0.2.1")
    throttle.failed("alice", "192.0.2.1")
    assert throttle.retry_after("alice", None) is not None
    throttle.succeeded("alice", "192.0.2.1")
    assert throttle.retry_after("alice", None) is None
    throttle.failed("bob", "192.0.2.1")
    assert throttle.retry_after("carol", "192.0.2.1") is not None


def test_longest_wait_wins() -> None:
    clock = Clock()
    throttle = LoginThrottle(1, 1, 60.0, clock)
    throttle.failed("alice", "192.0.2.1")
    clock.now += 20
    throttle.failed("bob", "192.0.2.2")
    # alice's failure ages out at 1060, bob's address's at 1080.
    assert throttle.retry_after("alice", "192.0.2.2") == pytest.approx(60.0)


def test_memory_bounded_by_sweep() -> None:
    clock = Clock()
    throttle = LoginThrottle(5, 5, 60.0, clock, max_tracked=10)
    for index in range(10):
        throttle.failed(f"user{index}", None)
    clock.now += 61
    throttle.failed("late", None)
    assert len(throttle._failures) == 1


def test_bad_limits_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(0, 1, 60.0)
