"""The C walkthrough in docs/abi.md compiles and behaves as the document says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .harness import REPO, Host, Tenant, build, text_of

DOC = REPO / "docs" / "abi.md"


def walkthrough_source() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## 6. Write your first tenant in C", 1)[1]
    match = re.search(r"```c\n(.*?)```", section, re.DOTALL)
    assert match is not None, "section 6 of docs/abi.md has no C example"
    return match.group(1)


def test_walkthrough_tenant_builds_and_runs(tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    source = tmp_path / "hello.c"
    source.write_text(walkthrough_source(), encoding="utf-8")
    stderr = build([source], tmp_path / "hello.wasm")
    assert stderr.strip() == ""
    tenant = Tenant(tmp_path / "hello.wasm", Host(config={"greeting": "Hi"}))
    info = tenant.result("initialize")
    assert info["serverInfo"] == {"name": "hello", "version": "0.1.0"}
    assert info["instructions"] == "Greets people."
    assert [t["name"] for t in tenant.result("tools/list")["tools"]] == ["greet"]
    result = tenant.tool("greet", {"name": "Ada"})
    assert result == {"content": [{"type": "text", "text": "Hi, Ada"}], "isError": False}
    assert tenant.host.kv == {"greetings": "1"}
    tenant.tool("greet", {"name": "Bo"})
    assert tenant.host.kv == {"greetings": "2"}
    missing = tenant.tool("greet", {})
    assert missing["isError"] is True
    assert text_of(missing) == "missing required argument 'name' (a string)"


def test_documented_build_command_matches_cc_sh() -> None:
    """The flags printed in the walkthrough are the ones sdk/c/cc.sh really uses."""
    doc = DOC.read_text(encoding="utf-8")
    script = (REPO / "sdk" / "c" / "cc.sh").read_text(encoding="utf-8")
    flags = [
        "--target=wasm32-freestanding",
        "-mcpu=lime1",
        "-std=c11",
        "-O2",
        "-g0",
        "-ffreestanding",
        "-nostdlib",
        "-Wl,--no-entry",
        "-Wl,--strip-all",
        "-Wl,-z,stack-size=131072",
    ]
    for flag in flags:
        assert flag in script, flag
        assert flag in doc, flag
    for source in re.findall(r'"\$SDK_DIR/(\w+\.c)"', script):
        assert f"sdk/c/{source}" in doc, source
