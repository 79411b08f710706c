"""Behaviour baselines: how much a tool's calls usually cost, and whether one call is far off.

One :class:`ToolProfile` per tenant and tool keeps, for each figure of a call receipt (fuel, wall
time, memory, kv reads and writes, notifications, reply size), an exponentially weighted moving
mean and variance. Why EWMA rather than a windowed quantile sketch: it costs O(1) time and a
fixed, tiny state per figure (two floats), so updating it on every call is free and persisting
it is one short row; it follows a tool whose cost drifts slowly (a growing kv) without a window
to tune; and the question asked is "orders of magnitude off", not "above the 99th percentile",
for which mean and spread are enough. No I/O.

A figure is *far outside* when it exceeds every one of: the mean plus ``sigmas`` standard
deviations, ``ratio`` times the mean, and the mean plus the figure's absolute slack (so that a
tool whose fuel never varied is not flagged for a few instructions more, nor one that never read
kv for reading one key). Only calls above the baseline count: a cheaper call is no threat. Calls
before ``warmup`` are learned, never judged, and a flagged call is not learned from, so that a
run of abnormal calls cannot teach the baseline to accept them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: The receipt figures a profile follows, in the order reports list them.
FIGURES: Final = (
    "fuel",
    "wall_ms",
    "memory_bytes",
    "kv_reads",
    "kv_writes",
    "notifications",
    "reply_bytes",
)
#: Excess over the mean below which a figure never counts as far off, whatever its spread.
SLACK: Final[Mapping[str, float]] = {
    "fuel": 10_000,
    "wall_ms": 25.0,
    "memory_bytes": 1 << 20,
    "kv_reads": 8,
    "kv_writes": 8,
    "notifications": 8,
    "reply_bytes": 2048,
}


@dataclass(frozen=True)
class BaselineRule:
    #: Calls learned before any is judged.
    warmup: int = 20
    #: EWMA weight of a new call (0.05: about the last 40 calls dominate).
    alpha: float = 0.05
    sigmas: float = 6.0
    ratio: float = 10.0


@dataclass(frozen=True)
class Deviation:
    figure: str
    value: float
    mean: float
    threshold: float

    def describe(self) -> str:
        return f"{self.figure} {self.value:g} (usual {self.mean:.4g}, limit {self.threshold:.4g})"


@dataclass
class _Moments:
    mean: float = 0.0
    var: float = 0.0


@dataclass
class ToolProfile:
    calls: int = 0
    flags: int = 0
    moments: dict[str, _Moments] = field(default_factory=lambda: {f: _Moments() for f in FIGURES})

    def deviations(self, figures: Mapping[str, float], rule: BaselineRule) -> list[Deviation]:
        """The figures of one call far outside this profile (none while warming up)."""
        if self.calls < rule.warmup:
            return []
        found = []
        for name in FIGURES:
            value = float(figures.get(name, 0.0))
            moments = self.moments[name]
            threshold = max(
                moments.mean + rule.sigmas * math.sqrt(moments.var),
                rule.ratio * moments.mean,
                moments.mean + SLACK[name],
            )
            if value > threshold:
                found.append(Deviation(name, value, moments.mean, threshold))
        return found

    def learn(self, figures: Mapping[str, float], rule: BaselineRule) -> None:
        """Fold one call into the profile (incremental exponentially weighted mean/variance;
        the first calls weigh 1/n so that the warm-up ends with their plain average)."""
        self.calls += 1
        weight = max(rule.alpha, 1.0 / self.calls)
        for name in FIGURES:
            value = float(figures.get(name, 0.0))
            moments = self.moments[name]
            delta = value - moments.mean
            moments.mean += weight * delta
            moments.var = (1.0 - weight) * (moments.var + weight * delta * delta)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "flags": self.flags,
            "mean": {name: m.mean for name, m in self.moments.items()},
            "stddev": {name: math.sqrt(m.var) for name, m in self.moments.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolProfile:
        profile = cls(calls=int(data.get("calls", 0)), flags=int(data.get("flags", 0)))
        means = data.get("mean", {})
        stddevs = data.get("stddev", {})
        for name in FIGURES:
            mean = float(means.get(name, 0.0)) if isinstance(means, dict) else 0.0
            sd = float(stddevs.get(name, 0.0)) if isinstance(stddevs, dict) else 0.0
            profile.moments[name] = _Moments(mean, sd * sd)
        return profile


__all__ = ["FIGURES", "SLACK", "BaselineRule", "Deviation", "ToolProfile"]
