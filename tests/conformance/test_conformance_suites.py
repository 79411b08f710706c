"""The official MCP conformance suites against a real box serving tests/tenants.

Runs .ci/conformance.sh (which installs Node 22 and the suites from npm on first use, starts
``smcp-box serve --tenants-dir tests/tenants`` on a loopback port, runs
@modelcontextprotocol/conformance 0.1.16 ``--suite all`` and 0.2.0-alpha.12
``--requirements 2026-07-28`` and ``--requirements 2025-11-25``), then reads every scenario's
checks.json: a scenario can "pass" in the suites' summary with checks that were skipped, and
some checks accept any error text, so totals are not enough.

Failing checks that wait for a box feature are listed, each with the change that fixes it, in
known_failures.toml; anything else failing fails this test, and so does a listed check that
has started to pass (the list must shrink with the box). ``SMCP_CONFORMANCE_STRICT=1`` ignores
the list: zero failures. Skipped only when npm is missing, so Node 22 cannot be installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .report import Scenario, load_all, load_known_failures, table

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "conformance.sh"
NO_NODE = 3  # the script's exit status when npm is unavailable
SETUP_FAILED = 2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[Scenario]:
    out = tmp_path_factory.mktemp("conformance")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    if proc.returncode == NO_NODE:
        pytest.skip(f"Node 22 cannot be installed here: {proc.stderr.strip().splitlines()[-1]}")
    if proc.returncode not in (0, 1):
        box_log = out / "box.log"
        log = box_log.read_text() if box_log.is_file() else "(no box log)"
        pytest.fail(
            f".ci/conformance.sh could not run the suites (exit {proc.returncode}):\n"
            f"{proc.stderr}\n{proc.stdout}\nbox log:\n{log}"
        )
    scenarios = load_all(out)
    assert scenarios, f"no results in {out}:\n{proc.stderr}"
    return scenarios


def test_all_three_suite_runs_happened(results: list[Scenario]) -> None:
    runs = {s.run for s in results}
    assert runs == {"0.1.16-all", "0.2.0-alpha.12-2026-07-28", "0.2.0-alpha.12-2025-11-25"}
    # The suites' own lists: 32 handshake-era scenarios in 0.1.16 "all", and the frozen
    # requirement sets of 0.2.0-alpha.12 (plus what they run unscored).
    names = {(s.run, s.name) for s in results}
    assert ("0.1.16-all", "tools-call-elicitation") in names
    assert ("0.2.0-alpha.12-2026-07-28", "server-stateless") in names
    assert ("0.2.0-alpha.12-2025-11-25", "resources-subscribe") in names
    assert sum(1 for s in results if s.run == "0.1.16-all") >= 32


def test_every_scenario_wrote_its_checks(results: list[Scenario]) -> None:
    missing = [f"{s.run} / {s.name}" for s in results if s.missing]
    assert not missing, "scenarios without checks.json (crashed or timed out): " + ", ".join(
        missing
    )


def test_no_failing_checks(results: list[Scenario]) -> None:
    strict = os.environ.get("SMCP_CONFORMANCE_STRICT") == "1"
    known = {} if strict else load_known_failures()
    report = table(results, known)
    unexpected = [
        f"{s.run} / {s.name}: {c.line()}"
        for s in results
        if s.counts
        for c in s.failures
        if (s.run, s.name, c.id) not in known
    ]
    failing_now = {(s.run, s.name, c.id) for s in results if s.counts for c in s.failures}
    stale = sorted(
        f"{run} / {scenario}: {check}  ({fix})"
        for (run, scenario, check), fix in known.items()
        if (run, scenario, check) not in failing_now
    )
    print(report)
    assert not unexpected, (
        "failing conformance checks (docs/conformance.md says where each is fixed):\n"
        + "\n".join(unexpected)
    )
    assert not stale, (
        "these checks listed in tests/conformance/known_failures.toml pass now; delete their "
        "entries:\n" + "\n".join(stale)
    )


#: The tasks extension's scenarios in the 2026-07-28 run (docs/tasks.md checklist).
TASKS_SCENARIOS = {
    "tasks-lifecycle",
    "tasks-capability-negotiation",
    "tasks-wire-fields",
    "tasks-request-state-removal",
    "tasks-mrtr-input",
    "tasks-request-headers",
    "tasks-dispatch-and-envelope",
    "tasks-required-task-error",
    "tasks-mrtr-composition",
}


def test_the_tasks_extension_scenarios_run_and_pass(results: list[Scenario]) -> None:
    tasks = {
        s.name: s
        for s in results
        if s.run == "0.2.0-alpha.12-2026-07-28" and s.name in TASKS_SCENARIOS
    }
    assert set(tasks) == TASKS_SCENARIOS
    passed = {name: sum(1 for c in s.checks if c.status == "SUCCESS") for name, s in tasks.items()}
    failing = {name: [c.line() for c in s.failures] for name, s in tasks.items() if s.failures}
    assert not failing, failing
    # Every check of the extension ran and passed (30 of them besides the schema checks).
    assert sum(passed.values()) >= 30, passed
