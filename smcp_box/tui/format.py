"""Formatting of numbers, sizes, times and text sparklines for narrow table cells."""

from __future__ import annotations

import time
from collections.abc import Sequence

_BLOCKS = " ▁▂▃▄▅▆▇█"


def fmt_time(ts: float | None) -> str:
    """Local month-day and time; the year is noise in an admin's table."""
    if ts is None:
        return "-"
    return time.strftime("%m-%d %H:%M:%S", time.localtime(ts))


def fmt_clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def fmt_count(value: float) -> str:
    """3 significant-ish characters: 950, 1.2k, 34M, 5.6G."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def fmt_bytes(value: float) -> str:
    for limit, suffix in ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{int(value)}B"


def fmt_ms(value: float) -> str:
    if value <= 0:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.0f}"
    return f"{value / 1000:.1f}s"


def spark_text(values: Sequence[float], width: int) -> str:
    """A one-line sparkline of ``width`` cells; each cell shows the max of its share of values."""
    if width <= 0 or not values:
        return ""
    chunks: list[float] = []
    for cell in range(width):
        start = cell * len(values) // width
        end = max(start + 1, (cell + 1) * len(values) // width)
        chunks.append(max(values[start:end]))
    top = max(chunks)
    if top <= 0:
        return _BLOCKS[1] * width
    # Any non-zero value gets at least the lowest bar, so that rare events stay visible.
    return "".join(
        _BLOCKS[0 if v <= 0 else max(1, round(v / top * (len(_BLOCKS) - 1)))] for v in chunks
    )


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
