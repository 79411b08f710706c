"""``smcp-box vet`` on component and stdio tenant folders refuses what their kind may not import:
a component importing an interface outside the ``smcp:box`` world, a stdio module importing WASI
sockets; each report names the import and the tenant is not passed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import wasmtime

from smcp_box.config import SandboxSettings
from smcp_box.tenancy.vet_command import run_vet_command
from tests.sandbox.test_sandbox_components import component_importing
from tests.sandbox.test_sandbox_stdio import SOCKET_MODULE


def tenant_folder(parent: Path, name: str, kind: str, module: bytes) -> Path:
    folder = parent / name
    folder.mkdir()
    (folder / f"{name}.wasm").write_bytes(module)
    digest = hashlib.sha256(module).hexdigest()
    (folder / "tenant.toml").write_text(
        f'name = "{name}"\nkind = "{kind}"\nmodule = "{name}.wasm"\nsha256 = "{digest}"\n'
    )
    return folder


@pytest.mark.parametrize(
    ("kind", "module", "named"),
    [
        (
            "component",
            component_importing("wasi:http/outgoing-handler@0.2.0"),
            ["wasi:http/outgoing-handler@0.2.0", "smcp:box world"],
        ),
        (
            "stdio",
            bytes(wasmtime.wat2wasm(SOCKET_MODULE)),
            ["sock_accept is a WASI socket function", "no network"],
        ),
    ],
    ids=["component-outside-the-world", "stdio-with-sockets"],
)
def test_vet_refuses_imports_outside_the_kind(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    module: bytes,
    named: list[str],
) -> None:
    folder = tenant_folder(tmp_path, "sneaky", kind, module)
    code = run_vet_command([folder], tmp_path / "cache", SandboxSettings(), as_json=True)
    out = capsys.readouterr().out
    assert code == 1, out
    (report,) = json.loads(out)
    assert report["ok"] is False
    text = json.dumps(report)
    for words in named:
        assert words in text, text
