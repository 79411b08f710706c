"""The example tenants' real tool lists, produced by their built modules, must vet clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp_box.sandbox import Limits, Sandbox
from smcp_box.vetting import scan_tools, tools_fingerprint, vet_tools
from tests.sandbox.support import RecordingHost

TENANTS = Path(__file__).resolve().parents[2] / "tenants"
TOOLS_LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("cwasm-cache"))
    yield box
    box.close()


def listed_tools(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    wasm = (TENANTS / name / f"{name}.wasm").read_bytes()
    module = sandbox.load(name, wasm, Limits())
    outcome = sandbox.call_sync(module, TOOLS_LIST, RecordingHost())
    tools = json.loads(outcome.reply)["result"]["tools"]
    assert isinstance(tools, list)
    assert tools
    return tools


@pytest.mark.parametrize("name", ["notes", "utils"])
def test_example_tenant_tools_scan_clean(sandbox: Sandbox, name: str) -> None:
    tools = listed_tools(sandbox, name)
    assert scan_tools(tools) == []
    report = vet_tools(name, tools, tools_fingerprint(tools))
    assert report.ok, report.summary


@pytest.mark.parametrize("name", ["notes", "utils"])
def test_example_tenant_fingerprint_is_stable_across_calls(sandbox: Sandbox, name: str) -> None:
    assert tools_fingerprint(listed_tools(sandbox, name)) == tools_fingerprint(
        listed_tools(sandbox, name)
    )
