"""Once a second, copy each tenant's sandbox gauges (fuel, memory, warm instances) into the
live metrics, so that the admin API can draw per-second series without touching the hot path."""

from __future__ import annotations

import asyncio
import logging

from smcp_box.box import Box

logger = logging.getLogger("smcp_box.admin")

SAMPLE_INTERVAL_S = 1.0


def sample_once(box: Box) -> None:
    for name in box.tenants.names():
        try:
            pool = box.sandbox.stats(name)
        except KeyError:
            # Unloaded between names() and stats(): a removal or reload is in progress.
            continue
        box.metrics.record_gauges(
            name,
            fuel_total=pool.fuel_used,
            memory_bytes=pool.memory_bytes,
            warm_instances=pool.warm_instances,
        )


async def sample_metrics_forever(box: Box, interval_s: float = SAMPLE_INTERVAL_S) -> None:
    while True:
        try:
            sample_once(box)
        except Exception:
            # Metrics are best effort; a broken sample must never take the admin API down.
            logger.exception("sampling sandbox metrics failed; will retry")
        await asyncio.sleep(interval_s)
