"""bench/inprocess_bench.py at toy size: a real box in process answers every call of both eras
(it stops at the first call that is not a 200 with a result) and prints its CPU per call."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_inprocess_bench_measures_a_real_box(era: str) -> None:
    argv = ["--era", era, "--calls", "64", "--concurrency", "4", "--passes", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_BOX_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.inprocess_bench", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert re.fullmatch(rf"{era}, c=4: CPU per call, µs: [\d.]+ [\d.]+; min [\d.]+", line), (
        done.stdout + done.stderr
    )
