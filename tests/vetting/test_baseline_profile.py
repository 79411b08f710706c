"""The baseline rule (vetting/baseline.py): warm-up, what counts as far off, persistence."""

from __future__ import annotations

from smcp_box.vetting.baseline import FIGURES, BaselineRule, ToolProfile

RULE = BaselineRule(warmup=5)
USUAL = {"fuel": 50_000.0, "wall_ms": 0.4, "memory_bytes": 131_072.0, "reply_bytes": 80.0}


def trained(calls: int = 30) -> ToolProfile:
    profile = ToolProfile()
    for i in range(calls):
        # A little jitter, as real calls have.
        profile.learn({**USUAL, "fuel": USUAL["fuel"] + (i % 3) * 100}, RULE)
    return profile


def test_nothing_is_judged_during_the_warm_up() -> None:
    profile = ToolProfile()
    for _ in range(RULE.warmup):
        assert profile.deviations({**USUAL, "fuel": 1e12}, RULE) == []
        profile.learn(USUAL, RULE)
    assert profile.deviations({**USUAL, "fuel": 1e12}, RULE) != []


def test_100x_fuel_is_far_off_and_usual_jitter_is_not() -> None:
    profile = trained()
    assert profile.deviations({**USUAL, "fuel": 50_300.0}, RULE) == []
    (deviation,) = profile.deviations({**USUAL, "fuel": 5_000_000.0}, RULE)
    assert deviation.figure == "fuel"
    assert deviation.mean < 51_000
    assert "fuel 5e+06" in deviation.describe()


def test_slack_keeps_tiny_absolute_changes_quiet() -> None:
    profile = trained()
    # Never read kv before; two reads are a change, not an anomaly. Nine are.
    assert profile.deviations({**USUAL, "kv_reads": 2}, RULE) == []
    assert [d.figure for d in profile.deviations({**USUAL, "kv_reads": 9}, RULE)] == ["kv_reads"]


def test_cheaper_calls_are_never_flagged() -> None:
    profile = trained()
    assert profile.deviations({name: 0.0 for name in FIGURES}, RULE) == []


def test_round_trip_through_json() -> None:
    profile = trained()
    profile.flags = 3
    again = ToolProfile.from_json(profile.to_json())
    assert again.calls == profile.calls
    assert again.flags == 3
    for name in FIGURES:
        assert abs(again.moments[name].mean - profile.moments[name].mean) < 1e-9
        assert abs(again.moments[name].var - profile.moments[name].var) < 1e-6
