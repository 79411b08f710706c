"""The JavaScript tenant SDK in plain Node (no component build): tests/sdk/js/*.test.mjs run by
Node's test runner with the SDK's test hooks (smcp_box_sdk/js/testing.mjs), which stand in for
the host interface. The built component is driven in tests/e2e/test_js_components.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from smcp_box_sdk import JS_DIR

TESTS = Path(__file__).parent / "js"


def test_the_js_sdk_and_the_jsnotes_example_pass_their_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the JavaScript SDK's tests need node on PATH (CI has it)")
    run = subprocess.run(
        [node, "--import", (JS_DIR / "testing.mjs").as_uri(), "--test", str(TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    counts = dict(re.findall(r"^# (pass|fail) (\d+)$", run.stdout, re.MULTILINE))
    assert counts == {"pass": "15", "fail": "0"}, run.stdout
