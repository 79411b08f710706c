"""Session-store figures, from ``bench/store_bench.py`` (owned by the store's authors).

That script is run as it is, in a subprocess. If it prints JSON (or offers ``--json``) that is
used; otherwise its printed lines are parsed for the persisted-events-per-second figures with
encryption on and off.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from bench.procs import REPO
from bench.suites.context import Context

SCRIPT = REPO / "bench" / "store_bench.py"
_RATE = re.compile(r"(?P<value>[\d,]+(?:\.\d+)?)\s*(?:events?/s|ev/s)", re.IGNORECASE)


_RATIO = re.compile(r"ratio encrypted/plain[^:]*:\s*(?P<value>[\d.]+)", re.IGNORECASE)


def parse(text: str) -> dict[str, object]:
    """Rates from lines such as ``encrypt=True: 2125 events/s`` (or "encrypted"/"plain"),
    and the script's own median of per-round ratios when it prints one."""
    encrypted = plain = None
    lines = []
    for line in text.splitlines():
        match = _RATE.search(line)
        if not match:
            continue
        value = float(match["value"].replace(",", ""))
        lines.append(line.strip())
        lowered = line.lower().replace(" ", "")
        if re.search(r"plain|unencrypted|encrypt(ion)?(=|:)?(off|false)|noencryption", lowered):
            plain = plain if plain is not None else value
        elif "encrypt" in lowered:
            encrypted = encrypted if encrypted is not None else value
    result = summarise(encrypted, plain) | {"lines": lines}
    ratio = _RATIO.search(text)
    if ratio:
        # The median of per-round ratios resists drift better than a ratio of medians.
        result["encrypted_over_plain"] = float(ratio["value"])
        result["encryption_cost_pct"] = round((1 - float(ratio["value"])) * 100, 1)
    return result


def summarise(encrypted: float | None, plain: float | None) -> dict[str, object]:
    cost = None
    if encrypted is not None and plain:
        cost = round((1 - encrypted / plain) * 100, 1)
    return {
        "events_per_s_encrypted": encrypted,
        "events_per_s_plain": plain,
        "encryption_cost_pct": cost,
    }


def _from_json(data: dict[str, object]) -> dict[str, object]:
    """Accept the obvious key names for the two rates; keep everything else as given."""

    def pick(*names: str) -> float | None:
        for name in names:
            value = data.get(name)
            if isinstance(value, (int, float)):
                return float(value)
        return None

    encrypted = pick("events_per_s_encrypted", "encrypted_events_per_s", "encrypted")
    plain = pick("events_per_s_plain", "plain_events_per_s", "plain", "unencrypted")
    return {**data, **summarise(encrypted, plain)}


def run(ctx: Context) -> dict[str, object]:
    if not SCRIPT.exists():
        raise RuntimeError(f"{SCRIPT} is missing (the store's authors are writing it)")
    ctx.log("store: running bench/store_bench.py")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *ctx.sizes.store_args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"store_bench.py failed:\n{done.stdout}{done.stderr}")
    text = done.stdout.strip()
    result = _from_json(json.loads(text)) if text.startswith("{") else parse(text)
    result["source"] = "bench/store_bench.py"
    return result
