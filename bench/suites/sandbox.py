"""Sandbox figures, from ``bench/sandbox_bench.py`` (owned by the sandbox's authors).

That script is run as it is, in a subprocess, so its figures come from a clean interpreter.
If it offers a machine-readable form (a ``measure()`` returning a dict, or ``--json``) that is
used; otherwise its printed table is parsed: one line per figure, ``<name>  <value> µs``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from bench.procs import REPO
from bench.suites.context import Context

SCRIPT = REPO / "bench" / "sandbox_bench.py"
_LINE = re.compile(r"^\s*(?P<name>\S.*?)\s+(?P<value>[\d.]+) µs")

#: Which printed line is which headline figure (matched by the start of the name).
HEADLINES = {
    "raw_call_us_median": "call, raw path (Instance.call",
    "instantiate_us_median": "fresh instance of a precompiled module",
    "high_level_call_us_median": "call, high-level Func.__call__",
    "async_call_us_median": "call, await Sandbox.call",
    "cache_load_us_median": "load precompiled module from disk",
}


def parse(text: str) -> dict[str, object]:
    figures: dict[str, float] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            figures[match["name"].strip()] = float(match["value"])
    out: dict[str, object] = {"figures_us": figures}
    for key, prefix in HEADLINES.items():
        out[key] = next((v for name, v in figures.items() if name.startswith(prefix)), None)
    return out


def run(ctx: Context) -> dict[str, object]:
    if not SCRIPT.exists():
        raise RuntimeError(f"{SCRIPT} is missing")
    ctx.log("sandbox: running bench/sandbox_bench.py")
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sandbox_bench.py failed:\n{done.stdout}{done.stderr}")
    text = done.stdout.strip()
    if text.startswith("{"):
        return json.loads(text)
    result = parse(text)
    result["source"] = "bench/sandbox_bench.py"
    return result
