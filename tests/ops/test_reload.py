"""SIGHUP's work in-process: which settings apply live, which wait for a restart, and that
sessions and tenants survive. (tests/ops/test_signals.py sends the real signal.)"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smcp_box.config import Settings
from smcp_box.errors import ConfigError
from smcp_box.ops.reload import LIVE_SETTINGS, changed_settings, merge_live, reload_box
from smcp_box.web.app import create_app
from smcp_box.web.mcp import EXTENSION_KEY as MCP_EXTENSION
from smcp_box.web.mcp import transport_settings
from tests.e2e.clients import legacy_headers, legacy_session, modern_call_tool
from tests.ops.support import add_ops_tenant, box_settings, serving, started


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def with_changes(settings: Settings, **sections: dict[str, object]) -> Settings:
    top = {name: value for name, value in sections.items() if not isinstance(value, dict)}
    for name, changes in sections.items():
        if isinstance(changes, dict):
            top[name] = dataclasses.replace(getattr(settings, name), **changes)
    return dataclasses.replace(settings, **top)


def test_changed_and_merged_settings(tmp_path: Path) -> None:
    old = box_settings(tmp_path, tmp_path / "tenants", tmp_path / "cache")
    new = with_changes(
        old,
        log_level="debug",
        sandbox={"timeout_ms": 250, "tick_ms": 5},
        server={"port": 9999, "allowed_origins": ("https://box.lan",)},
        store={"kv_max_keys": 5},
    )
    names = changed_settings(old, new)
    assert names == [
        "log_level",
        "sandbox.tick_ms",
        "sandbox.timeout_ms",
        "server.allowed_origins",
        "server.port",
        "store.kv_max_keys",
    ]
    merged = merge_live(old, new, names)
    assert merged.log_level == "debug"
    assert merged.sandbox.timeout_ms == 250
    assert merged.server.allowed_origins == ("https://box.lan",)
    # What needs a restart keeps its running value.
    assert merged.sandbox.tick_ms == old.sandbox.tick_ms
    assert merged.server.port == old.server.port
    assert merged.store == old.store
    assert not {"server.port", "store.kv_max_keys", "sandbox.tick_ms"} & LIVE_SETTINGS


async def test_reload_applies_live_settings_and_keeps_sessions(
    tmp_path: Path, ops_module: Path, module_cache: Path, root_level: None
) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)  # no timeout_ms of its own: the box default applies
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box:
        _, key = await box.store.create_api_key("ops", "r")
        app = create_app(box.settings, box.app_services())
        async with serving(box, app) as base, httpx.AsyncClient(timeout=30) as http:
            url = f"{base}/t/ops/mcp"
            session = await legacy_session(http, url, key)
            slow = await modern_call_tool(http, url, key, "sleep", {"ms": 400})
            assert slow["result"]["content"][0]["text"] == "awake"
            origin = {"Origin": "https://box.lan"}
            denied = await http.post(url, json={}, headers={**legacy_headers(key), **origin})
            assert denied.status_code == 403

            new = with_changes(
                settings,
                log_level="debug",
                sandbox={"timeout_ms": 150},
                server={"allowed_origins": ("https://box.lan",)},
                store={"kv_max_keys": 5},
            )
            result = await reload_box(box, lambda: new, app=app)
            assert result.applied == ["log_level", "sandbox.timeout_ms", "server.allowed_origins"]
            assert result.needs_restart == ["store.kv_max_keys"]
            assert result.errors == []
            assert logging.getLogger().level == logging.DEBUG
            assert box.settings.sandbox.timeout_ms == 150
            assert box.settings.store.kv_max_keys == settings.store.kv_max_keys

            # The new default limit applies to the tenant's calls at once.
            slow = await modern_call_tool(http, url, key, "sleep", {"ms": 400})
            assert slow["error"]["code"] == -32052
            # The new origin is allowed.
            allowed = await http.post(
                url,
                json={"jsonrpc": "2.0", "id": 5, "method": "ping"},
                headers={**legacy_headers(key, session), **origin},
            )
            assert allowed.status_code == 200, allowed.text
            # The session opened before the reload still works.
            ping = await http.post(
                url,
                json={"jsonrpc": "2.0", "id": 6, "method": "tools/list"},
                headers=legacy_headers(key, session),
            )
            assert ping.status_code == 200, ping.text
            assert "sleep" in ping.text


async def test_a_broken_settings_file_changes_nothing(
    tmp_path: Path, ops_module: Path, module_cache: Path, root_level: None
) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box:

        def broken() -> Settings:
            raise ConfigError("unknown setting 'sandbox.fule' in /etc/smcp-box/config.toml")

        add_ops_tenant(tenants, ops_module, name="ops-two")
        result = await reload_box(box, broken)
        assert box.settings == settings
        assert result.errors == [
            "configuration: unknown setting 'sandbox.fule' in /etc/smcp-box/config.toml"
        ]
        # Tenants still reload.
        assert box.tenants.names() == ["ops", "ops-two"]
        await box.auditor.flush()
        (row,) = await box.store.audit_page(event="box.reload")
        assert row.outcome == "error"
        assert row.detail["errors"] == result.errors


async def test_reload_swaps_one_settings_object_the_transport_reads(
    tmp_path: Path, ops_module: Path, module_cache: Path, root_level: None
) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box:
        app = create_app(box.settings, box.app_services())
        transport = app.extensions[MCP_EXTENSION]
        assert transport.settings is transport_settings(box.settings)
        server = {
            "sse_retry_ms": 2500,
            "body_timeout_s": 7.5,
            "session_touch_s": 12.0,
            "auth_realm": "lab",
            "resource_metadata_url": "https://box.lan/meta/{tenant}",
            "max_input_rounds": 3,
            "server_request_timeout_s": 60.0,
            "max_body_bytes": 8192,
        }
        new = with_changes(settings, server=server, sandbox={"queue_timeout_ms": 250})
        result = await reload_box(box, lambda: new, app=app)
        live = sorted(f"server.{name}" for name in server if name != "max_body_bytes")
        assert result.applied == sorted([*live, "sandbox.queue_timeout_ms"])
        assert result.needs_restart == ["server.max_body_bytes"]
        # One object: the box's settings, whose [server] section the transport now reads.
        assert transport.settings is transport_settings(box.settings)
        for name, value in server.items():
            expected = settings.server.max_body_bytes if name == "max_body_bytes" else value
            assert getattr(transport.settings, name) == expected
        assert box.tenants.require("ops").module.limits.queue_timeout_ms == 250
