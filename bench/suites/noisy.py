"""Noisy neighbour: tenant B's p99 while tenant A floods, against B alone (target <= 2x).

Runs :func:`bench.noisy_neighbour.run` (a real box, A's flood from its own process) for
``Sizes.noisy_duration_s`` per phase.
"""

from __future__ import annotations

from bench import noisy_neighbour
from bench.suites.context import Context


def run(ctx: Context) -> dict[str, object]:
    ctx.log(f"noisy neighbour: {ctx.sizes.noisy_duration_s:g} s alone, then as long flooded")
    result = noisy_neighbour.run(
        ctx.sizes.noisy_duration_s,
        noisy_neighbour.QUIET_RATE,
        ctx.workdir / "noisy",
        settings=ctx.box_settings,
    )
    ctx.log(
        f"noisy neighbour: B p99 {result['quiet_alone']['p99_ms']} ms alone, "
        f"{result['quiet_flooded']['p99_ms']} ms flooded: {result['p99_ratio']}x"
    )
    return result
