"""The issue's targets, checked against a run's results, and the headline metrics that the
regression check compares with the baseline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.suites.http import find

Results = dict[str, Any]


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None
    op: str  # ">=", "<=", "<"
    threshold: float
    unit: str
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return {
            ">=": self.measured >= self.threshold,
            "<=": self.measured <= self.threshold,
            "<": self.measured < self.threshold,
        }[self.op]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "measured": self.measured,
            "op": self.op,
            "threshold": self.threshold,
            "unit": self.unit,
            "met": self.met,
            "note": self.note,
        }


def _get(results: Results, *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _http_checks(http: Results) -> Iterator[Check]:
    rows = http.get("rows", [])
    combos = sorted(
        {(r["era"], r["protocol"]) for r in rows if r["peer"] == "box"},
        key=lambda c: (c[0] != "modern", c[1]),
    )
    for era, proto in combos:
        where = f"{era}, {'HTTP/1.1' if proto == 'http1' else 'HTTP/2'}"
        box32 = find(rows, "box", era, proto, 32)
        for peer, bound in (("sdk", 1.5), ("floor", 0.8)):
            other = find(rows, peer, era, proto, 32)
            ratio = (
                round(box32["rps"] / other["rps"], 3) if box32 and other and other["rps"] else None
            )
            label = "SDK server" if peer == "sdk" else "bare Quart"
            yield Check(f"box req/s at c=32 vs {label} ({where})", ratio, ">=", bound, "x")
        floor32 = find(rows, "floor", era, proto, 32)
        cpu_box = (box32 or {}).get("server_cpu_us_per_request")
        cpu_floor = (floor32 or {}).get("server_cpu_us_per_request")
        if cpu_box and cpu_floor:
            yield Check(
                f"box CPU per request at c=32 vs bare Quart ({where})",
                round(cpu_box / cpu_floor, 3),
                "<=",
                1.25,
                "x",
                "the CPU-bound form of >= 0.8x the floor's req/s",
            )
        sdk32 = find(rows, "sdk", era, proto, 32)
        p99_ratio = (
            round(box32["p99_ms"] / sdk32["p99_ms"], 3)
            if box32 and sdk32 and sdk32.get("p99_ms")
            else None
        )
        yield Check(
            f"box p99 at c=32 over the SDK server's ({where})",
            p99_ratio,
            "<=",
            1.0,
            "x",
            "no worse than the SDK server",
        )
        box1 = find(rows, "box", era, proto, 1)
        yield Check(f"box p50 at c=1 ({where})", box1["p50_ms"] if box1 else None, "<", 2.0, "ms")


def checks(results: Results) -> list[Check]:
    suites = results.get("suites", {})
    out: list[Check] = []
    if "http" in suites:
        out.extend(_http_checks(suites["http"]))
    if "sandbox" in suites:
        out.append(
            Check(
                "sandbox raw call, 200 B in and out (median)",
                _get(suites, "sandbox", "raw_call_us_median"),
                "<=",
                15,
                "us",
            )
        )
        out.append(
            Check(
                "sandbox fresh instance from the precompiled cache",
                _get(suites, "sandbox", "instantiate_us_median"),
                "<=",
                100,
                "us",
            )
        )
    if "noisy" in suites:
        out.append(
            Check(
                "tenant B p99 while tenant A floods, over B alone",
                _get(suites, "noisy", "p99_ratio"),
                "<=",
                2,
                "x",
                f"B's failures under flood: {_get(suites, 'noisy', 'quiet_flooded', 'failures')}",
            )
        )
    if "coldstart" in suites:
        out.append(
            Check(
                "cold tenant first call minus warm call (median)",
                _get(suites, "coldstart", "extra_ms_median"),
                "<=",
                5,
                "ms",
                f"max {_get(suites, 'coldstart', 'extra_ms_max')} ms",
            )
        )
    if "density" in suites:
        registered = _get(suites, "density", "registered")
        warm = _get(suites, "density", "warm")
        out.append(
            Check(
                f"box RSS, {registered} tenants registered, {warm} warm",
                _get(suites, "density", "rss_warm_mib"),
                "<",
                1024,
                "MiB",
            )
        )
    if "streams" in suites:
        requested = _get(suites, "streams", "requested")
        out.append(
            Check(
                f"idle SSE streams held (of {requested} opened)",
                _get(suites, "streams", "held"),
                ">=",
                10_000,
                "streams",
            )
        )
        out.append(
            Check(
                "RSS per idle stream, its session included",
                _get(suites, "streams", "kib_per_stream_with_session"),
                "<",
                100,
                "KiB",
            )
        )
    if "store" in suites:
        out.append(
            Check(
                "encryption's cost in persisted events/s",
                _get(suites, "store", "encryption_cost_pct"),
                "<=",
                15,
                "%",
            )
        )
    return out


# --- regression ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    higher_is_better: bool
    #: Changes smaller than this (in the metric's unit) are noise, whatever their percentage.
    min_delta: float


def _http_metrics(http: Results) -> Iterator[Metric]:
    for row in http.get("rows", []):
        if row["peer"] != "box":
            continue
        stem = f"http.box.{row['era']}.{row['protocol']}.c{row['concurrency']}"
        yield Metric(f"{stem}.rps", row["rps"], True, 20)
        yield Metric(f"{stem}.p50_ms", row["p50_ms"], False, 0.2)
        if row.get("server_cpu_us_per_request"):
            yield Metric(f"{stem}.cpu_us", row["server_cpu_us_per_request"], False, 30)
    for ratio in http.get("ratios", []):
        stem = f"http.ratio.{ratio['era']}.{ratio['protocol']}.c{ratio['concurrency']}"
        for peer in ("sdk", "floor"):
            if f"box_over_{peer}" in ratio:
                yield Metric(f"{stem}.box_over_{peer}", ratio[f"box_over_{peer}"], True, 0.05)


_SCALARS: dict[str, tuple[bool, float]] = {
    # suite.field: (higher is better, smallest change that is not noise)
    "sandbox.raw_call_us_median": (False, 1.0),
    "sandbox.instantiate_us_median": (False, 5.0),
    "coldstart.first_call_ms_median": (False, 0.5),
    "coldstart.extra_ms_median": (False, 0.5),
    "density.rss_warm_mib": (False, 10.0),
    "density.cold_call_ms_p99": (False, 1.0),
    "streams.held": (True, 1.0),
    "streams.kib_per_stream_with_session": (False, 2.0),
    "store.events_per_s_encrypted": (True, 100.0),
    "store.events_per_s_plain": (True, 100.0),
}


def metrics(results: Results) -> dict[str, Metric]:
    suites = results.get("suites", {})
    found: list[Metric] = []
    if "http" in suites:
        found.extend(_http_metrics(suites["http"]))
    for dotted, (higher, min_delta) in _SCALARS.items():
        value = _get(suites, *dotted.split("."))
        if isinstance(value, (int, float)):
            found.append(Metric(dotted, float(value), higher, min_delta))
    return {m.key: m for m in found}


@dataclass(frozen=True)
class Regression:
    key: str
    baseline: float
    latest: float
    change_pct: float

    def to_json(self) -> dict[str, object]:
        return {
            "metric": self.key,
            "baseline": self.baseline,
            "latest": self.latest,
            "change_pct": self.change_pct,
        }


def regressions(
    latest: Results,
    baseline: Results,
    tolerance: float = 0.20,
    only: Callable[[str], bool] = lambda key: True,
) -> list[Regression]:
    """Metrics that got worse than the baseline by more than ``tolerance``."""
    new, old = metrics(latest), metrics(baseline)
    found = []
    for key, metric in new.items():
        before = old.get(key)
        if before is None or not only(key) or before.value == 0:
            continue
        worse = (
            (before.value - metric.value)
            if metric.higher_is_better
            else (metric.value - before.value)
        )
        if worse > metric.min_delta and worse / abs(before.value) > tolerance:
            change = (metric.value - before.value) / abs(before.value) * 100
            found.append(Regression(key, before.value, metric.value, round(change, 1)))
    return found
