#!/usr/bin/env python3
"""Reads the results of .ci/conformance.sh and says which checks failed.

    python tests/conformance/report.py OUTPUT_DIR     table + failing checks; exit 1 on any

OUTPUT_DIR holds one folder per suite run (``0.1.16-all``, ``0.2.0-alpha.12-2026-07-28``, ...),
each with the suite's console output (``suite-output.txt``) and one folder per scenario
(``server-<scenario>-<timestamp>/checks.json``). The verdict comes from every check in every
checks.json, not from the suites' totals: a scenario "passes" in the summary even when its
only check was skipped, and some checks accept any error text.

Scenarios the suite itself lists under "Not scored" are reported with the suite's reason and
count all the same: "extension" (the tasks extension, which the box implements: docs/tasks.md),
"pending" and "added-after-release" alike.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
KNOWN_FAILURES = HERE / "known_failures.toml"
SCENARIO_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
RUNNING = re.compile(r"^=== Running scenario: (?P<name>\S+) ===$", re.MULTILINE)
NOT_SCORED = re.compile(r"^\s+[✓✗]\s+(?P<name>\S+)\s+\((?P<why>[a-z-]+)\)\s*$", re.MULTILINE)
#: Categories of "Not scored" scenarios this report does not count either: none (the box
#: implements the tasks extension, so its scenarios must pass like the rest).
UNSCORED_CATEGORIES: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Check:
    id: str
    name: str
    status: str
    message: str

    def line(self) -> str:
        text = f"[{self.status}] {self.id} ({self.name})"
        return f"{text}: {self.message}" if self.message else text


@dataclass
class Scenario:
    run: str
    name: str
    checks: list[Check] = field(default_factory=list)
    category: str = "scored"  # or the suite's reason for not scoring it
    missing: bool = False  # the suite announced it but wrote no checks.json

    @property
    def counts(self) -> bool:
        return self.category not in UNSCORED_CATEGORIES

    @property
    def failures(self) -> list[Check]:
        found = [c for c in self.checks if c.status == "FAILURE"]
        if self.missing:
            found.append(Check("checks-json", "NoResults", "FAILURE", "no checks.json written"))
        return found

    def tally(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for check in self.checks:
            out[check.status] = out.get(check.status, 0) + 1
        return out


def _check(raw: dict[str, object]) -> Check:
    message = raw.get("errorMessage") or ""
    return Check(
        id=str(raw.get("id", "?")),
        name=str(raw.get("name", "?")),
        status=str(raw.get("status", "?")),
        message=" ".join(str(message).split())[:600],
    )


def load_run(run_dir: Path) -> list[Scenario]:
    """The scenarios of one suite run, in the order the suite ran them."""
    output = (run_dir / "suite-output.txt").read_text(encoding="utf-8", errors="replace")
    categories = {m["name"]: m["why"] for m in NOT_SCORED.finditer(output)}
    scenarios: dict[str, Scenario] = {}
    for name in RUNNING.findall(output):
        scenarios[name] = Scenario(run_dir.name, name, missing=True)
    for folder in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        match = SCENARIO_DIR.match(folder.name)
        checks_file = folder / "checks.json"
        if match is None or not checks_file.is_file():
            continue
        scenario = scenarios.setdefault(match["name"], Scenario(run_dir.name, match["name"]))
        scenario.missing = False
        scenario.checks = [_check(c) for c in json.loads(checks_file.read_text(encoding="utf-8"))]
    for scenario in scenarios.values():
        scenario.category = categories.get(scenario.name, "scored")
    return list(scenarios.values())


def load_all(out_dir: Path) -> list[Scenario]:
    runs = sorted(p for p in out_dir.iterdir() if (p / "suite-output.txt").is_file())
    return [s for run in runs for s in load_run(run)]


def load_known_failures(path: Path = KNOWN_FAILURES) -> dict[tuple[str, str, str], str]:
    """(run, scenario, check id) -> the box change (docs/conformance.md) that fixes it."""
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        entries = tomllib.load(f).get("known", [])
    known: dict[tuple[str, str, str], str] = {}
    for entry in entries:
        for run in entry["runs"]:
            for check in entry["checks"]:
                known[(run, entry["scenario"], check)] = entry["fix"]
    return known


def table(scenarios: Iterable[Scenario], known: dict[tuple[str, str, str], str]) -> str:
    """A plain-text table: one row per scenario, then every failing check."""
    rows: list[str] = []
    details: list[str] = []
    for s in scenarios:
        fails = s.failures
        tally = ", ".join(f"{n} {k.lower()}" for k, n in sorted(s.tally().items())) or "no checks"
        if not s.counts:
            verdict = f"not scored ({s.category})"
        elif not fails:
            verdict = "PASS"
        elif all((s.run, s.name, c.id) in known for c in fails):
            fixes = sorted({known[(s.run, s.name, c.id)] for c in fails})
            verdict = "FAIL (known: " + ", ".join(fixes) + ")"
        else:
            verdict = "FAIL"
        note = "" if s.category == "scored" or not s.counts else f" [{s.category}]"
        rows.append(f"{s.run:<26} {s.name + note:<58} {verdict:<34} {tally}")
        if s.counts:
            details.extend(f"  {s.run} / {s.name}: {c.line()}" for c in fails)
    text = "\n".join(rows)
    if details:
        text += "\n\nFailing checks:\n" + "\n".join(details)
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    scenarios = load_all(Path(argv[0]))
    if not scenarios:
        print(f"no suite results under {argv[0]}", file=sys.stderr)
        return 2
    print(table(scenarios, load_known_failures()))
    failed = [s for s in scenarios if s.counts and s.failures]
    checks = sum(len(s.failures) for s in failed)
    print(f"\n{len(scenarios)} scenarios, {len(failed)} failing ({checks} failed checks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
