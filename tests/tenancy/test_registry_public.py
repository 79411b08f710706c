"""Loading a public tenant (auth = "none") warns in the log, every time it is loaded."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest

from smcp_box.config import SandboxSettings
from smcp_box.sandbox import Sandbox
from smcp_box.tenancy.registry import TenantRegistry

REPO = Path(__file__).resolve().parents[2]


def test_public_tenant_is_loaded_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tests" / "tenants" / "conformance", tenants / "conformance")
    shutil.copytree(REPO / "tenants" / "notes", tenants / "notes")
    sandbox = Sandbox(tmp_path / "cache")
    try:
        registry = TenantRegistry(
            sandbox=sandbox,
            kv=None,
            defaults=SandboxSettings(),
            clock=time.time,  # type: ignore[arg-type]
        )
        with caplog.at_level(logging.WARNING, logger="smcp_box.tenants"):
            report = registry.load_folder(tenants)
        assert sorted(report.loaded) == ["conformance", "notes"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "conformance is PUBLIC" in warnings[0]
    finally:
        sandbox.close()
