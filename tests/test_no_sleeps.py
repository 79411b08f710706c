"""No test waits on a sleep, and no test times itself.

A test that sleeps "long enough" for something to happen (or not) is slow when the sleep is
generous and flaky when it is not; a test that asserts on a duration fails on a busy machine.
Tests wait on events, inject clocks, or poll a condition with a deadline through
``tests/support/waiting.py`` (``wait_until`` / ``wait_until_sync``), whose deadline is only a
test timeout. This test reads every test file with ``ast`` and fails on:

- calls to ``time.sleep``, ``asyncio.sleep`` (and ``anyio``/``trio``'s), however imported;
- ``pilot.pause(<delay>)``, Textual's sleep (``pilot.pause()`` without a delay waits for the app
  to be idle, which is fine);
- stopwatch reads, ``time.monotonic``/``time.perf_counter`` (and their ``_ns`` twins), which are
  only ever needed to assert on how long something took.

tests/web/ is not scanned yet: it is being rewritten separately and joins the scan when merged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
#: Folders (relative to tests/) not scanned, with the reason.
EXCLUDED: dict[str, str] = {}
#: Files (relative to tests/) that may sleep or read a stopwatch, each with the reason. Scenario
#: files where a sleep simulates a slow peer would be listed here too; there are none today (the
#: slow peers of the suite sleep inside their wasm/C fixtures, not in Python).
ALLOWED = {
    "support/waiting.py": "the shared polling helper: its tiny pause between two checks of a "
    "condition, and the deadline that turns a hang into a failure",
    "soak/crash_soak.py": "a bounded soak script run by hand, not collected by pytest: its "
    "--max-seconds budget is how it stops by itself and what it prints; it asserts on no "
    "duration",
}

SLEEPERS = {"time": {"sleep"}, "asyncio": {"sleep"}, "anyio": {"sleep"}, "trio": {"sleep"}}
STOPWATCHES = {"time": {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}}
FORBIDDEN = {
    module: SLEEPERS.get(module, set()) | STOPWATCHES.get(module, set())
    for module in SLEEPERS.keys() | STOPWATCHES.keys()
}


def violations(source: str) -> list[tuple[int, str]]:
    """(line, what) for every sleep, delayed pilot pause or stopwatch read in ``source``."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> module ("import time as t")
    functions: dict[str, str] = {}  # local name -> "module.function" ("from time import sleep")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in FORBIDDEN:
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN:
            for alias in node.names:
                if alias.name in FORBIDDEN[node.module]:
                    functions[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in functions:
            found.append((node.lineno, functions[func.id]))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = modules.get(func.value.id)
            if module is not None and func.attr in FORBIDDEN[module]:
                found.append((node.lineno, f"{module}.{func.attr}"))
            elif func.value.id == "pilot" and func.attr == "pause" and _has_delay(node):
                found.append((node.lineno, "pilot.pause with a delay"))
    return sorted(found)


def _has_delay(call: ast.Call) -> bool:
    given = [*call.args, *(k.value for k in call.keywords if k.arg == "delay")]
    return any(not (isinstance(arg, ast.Constant) and arg.value is None) for arg in given)


def scanned_files() -> list[Path]:
    return sorted(
        path
        for path in TESTS.rglob("*.py")
        if path.relative_to(TESTS).parts[0] not in EXCLUDED
        and path.relative_to(TESTS).as_posix() not in ALLOWED
    )


def test_no_test_sleeps_or_times_itself() -> None:
    problems = [
        f"tests/{path.relative_to(TESTS).as_posix()}:{line}: {what}"
        for path in scanned_files()
        for line, what in violations(path.read_text())
    ]
    assert problems == [], (
        "Tests must not sleep or time themselves: wait on an event, inject a clock, or poll "
        "with tests/support/waiting.py (wait_until / wait_until_sync); assert on mechanisms, "
        "not durations. Found:\n" + "\n".join(problems)
    )


def test_the_allowlist_and_exclusions_exist() -> None:
    for name in ALLOWED:
        assert (TESTS / name).is_file(), f"stale allowlist entry: tests/{name}"
    for name in EXCLUDED:
        assert (TESTS / name).is_dir(), f"stale exclusion: tests/{name}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time\ntime.sleep(1)\n", [(2, "time.sleep")]),
        ("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n", [(3, "asyncio.sleep")]),
        ("import asyncio as aio\naio.sleep(0.1)\n", [(2, "asyncio.sleep")]),
        ("from time import sleep as nap\nnap(2)\n", [(2, "time.sleep")]),
        ("from asyncio import sleep\nsleep(1)\n", [(2, "asyncio.sleep")]),
        ("import time\nt = time.monotonic()\n", [(2, "time.monotonic")]),
        ("from time import perf_counter\nperf_counter()\n", [(2, "time.perf_counter")]),
        ("await pilot.pause(0.3)\n", [(1, "pilot.pause with a delay")]),
        ("await pilot.pause(delay=1)\n", [(1, "pilot.pause with a delay")]),
        ("await pilot.pause()\nawait pilot.pause(None)\n", []),
        ("import time\ntime.time()\ntime.tzset()\n", []),
        ("class R:\n    async def sleep(self, s): ...\nawait R().sleep(1)\n", []),
    ],
)
def test_the_scan_sees_every_spelling(source: str, expected: list[tuple[int, str]]) -> None:
    assert violations(source) == expected
