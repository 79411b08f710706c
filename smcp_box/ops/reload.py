"""SIGHUP: re-read the settings, the tenants folder and the TLS certificate, keeping sessions.

What a reload applies at once, and what it only reports:

- live: ``log_level``, ``tenants_dir``, every ``[sandbox]`` limit default but ``tick_ms`` (tenants
  whose effective limits change get a fresh pool; calls running finish under the old limits),
  ``sessions.idle_timeout_s`` and ``max_age_s``, ``store.max_events_per_session``,
  ``audit.retention_days`` and the ``[server]`` settings the MCP
  transport reads per request (origins, SSE keep-alive and retry, body and client-answer
  timeouts, the challenge's realm and metadata URL, session touch, input rounds), the access
  log switch, and the per-address connection and stream caps, for requests and connections
  that arrive after the reload (``header_timeout_s`` is Hypercorn's and needs a restart);
- restart: everything else (listen address, TLS paths, ``max_body_bytes``, folders, the
  database and its quotas, ``tick_ms``, ``shutdown_grace_s``). Such changes are logged as waiting
  for a restart and the running value is kept, so the box never runs half on one configuration
  and half on another.

The box holds one frozen :class:`Settings`; a reload builds the effective one (live changes
applied, restart-only ones kept as running) and swaps it in with one assignment. Everything else
derives from it: the tenants' limit defaults and the transport's settings
(:func:`smcp_box.web.mcp.transport_settings`).

A settings file that no longer parses changes nothing; tenants and certificates still reload.
Sessions live in the database and in the transport, neither of which a reload touches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Final

from quart import Quart

from smcp_box.admin import tenant_admin
from smcp_box.box import Box, configure_sessions
from smcp_box.config import SandboxSettings, Settings, settings_as_dict
from smcp_box.errors import BoxError
from smcp_box.ops.sdnotify import Notifier
from smcp_box.ops.tls import CertReloader
from smcp_box.web.app import ACCESS_LOG_KEY
from smcp_box.web.mcp import EXTENSION_KEY as MCP_EXTENSION
from smcp_box.web.mcp import transport_settings

logger = logging.getLogger("smcp_box.reload")

#: ``[server]`` settings the transport reads per request, so a reload can apply them.
_LIVE_SERVER: Final = (
    "allowed_origins",
    "sse_keepalive_s",
    "server_request_timeout_s",
    "sse_retry_ms",
    "body_timeout_s",
    "max_connections_per_address",
    "max_sse_streams_per_address",
    "session_touch_s",
    "auth_realm",
    "resource_metadata_url",
    "max_input_rounds",
    "access_log",
)
LIVE_SETTINGS: Final = frozenset(
    {
        "log_level",
        "tenants_dir",
        "tenants_scan_s",
        "sessions.idle_timeout_s",
        "sessions.max_age_s",
        "store.max_events_per_session",
        "audit.retention_days",
        "vetting.trusted_publishers",
        "vetting.require_signature",
    }
    | {f"server.{name}" for name in _LIVE_SERVER}
    # The ticker and the run slots are made once, with the sandbox.
    | {
        f"sandbox.{f.name}"
        for f in fields(SandboxSettings)
        if f.name not in ("tick_ms", "cpu_slots")
    }
)


@dataclass
class ReloadResult:
    applied: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    tenants_loaded: list[str] = field(default_factory=list)
    tenants_failed: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def changed_settings(old: Settings, new: Settings) -> list[str]:
    """Dotted names of the settings whose values differ."""
    return sorted(_diff(settings_as_dict(old), settings_as_dict(new), ""))


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str) -> set[str]:
    names: set[str] = set()
    for key, value in old.items():
        if isinstance(value, dict):
            names |= _diff(value, new[key], f"{prefix}{key}.")
        elif new[key] != value:
            names.add(f"{prefix}{key}")
    return names


def merge_live(old: Settings, new: Settings, names: list[str]) -> Settings:
    """``old`` with the live settings among ``names`` taken from ``new``."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in LIVE_SETTINGS:
            continue
        section, _, key = name.rpartition(".")
        if section:
            sections.setdefault(section, {})[key] = getattr(getattr(new, section), key)
        else:
            top[key] = getattr(new, key)
    for section, changes in sections.items():
        top[section] = dataclasses.replace(getattr(old, section), **changes)
    return dataclasses.replace(old, **top) if top else old


def apply_settings(box: Box, new: Settings, app: Quart | None) -> tuple[list[str], list[str]]:
    """Apply the live part of ``new`` to the running box; returns (applied, needs restart)."""
    names = changed_settings(box.settings, new)
    applied = [name for name in names if name in LIVE_SETTINGS]
    restart = [name for name in names if name not in LIVE_SETTINGS]
    if not applied:
        return applied, restart
    effective = merge_live(box.settings, new, names)
    # The one swap; what follows derives from it.
    box.settings = effective
    logging.getLogger().setLevel(effective.log_level.upper())
    # The next load resolves every tenant's limits from these defaults.
    box.tenants.set_defaults(effective.sandbox, effective.quotas)
    box.admission.update_settings(effective.quotas)
    configure_sessions(box.store, effective)
    box.connections.update_settings(effective.server)
    box.tenants.set_vetting(effective.vetting)
    if app is not None:
        app.config[ACCESS_LOG_KEY] = effective.server.access_log
        app.config["BODY_TIMEOUT"] = effective.server.body_timeout_s
    transport = app.extensions.get(MCP_EXTENSION) if app is not None else None
    if transport is not None:
        transport.settings = transport_settings(effective)
    return applied, restart


async def reload_box(
    box: Box,
    load_settings: Callable[[], Settings],
    *,
    app: Quart | None = None,
    reloader: CertReloader | None = None,
    notifier: Notifier | None = None,
) -> ReloadResult:
    """Everything SIGHUP does, in order: settings, tenants, certificate; then an audit row."""
    result = ReloadResult()
    if notifier is not None:
        notifier.reloading("reloading configuration, tenants and certificates")
    try:
        result.applied, result.needs_restart = apply_settings(box, load_settings(), app)
    except BoxError as exc:
        result.errors.append(f"configuration: {exc.message}")
        logger.error("configuration not reloaded, keeping the running one: %s", exc.message)
    if result.applied:
        logger.info("configuration reloaded; applied: %s", ", ".join(result.applied))
    if result.needs_restart:
        logger.warning(
            "changed settings that take effect only after a restart: %s",
            ", ".join(result.needs_restart),
        )
    try:
        report = await box.reload_tenants(actor="system:reload")
        result.tenants_loaded, result.tenants_failed = list(report.loaded), dict(report.failed)
        logger.info("reloaded tenants: %s; not loaded: %s", report.loaded, sorted(report.failed))
    except BoxError as exc:
        result.errors.append(f"tenants: {exc.message}")
        logger.error("tenants not reloaded, keeping the loaded ones: %s", exc.message)
    if reloader is not None:
        try:
            reloader.reload()
        except BoxError as exc:
            result.errors.append(f"certificate: {exc.message}")
            logger.error("certificate not reloaded, keeping the current one: %s", exc.message)
    await box.auditor.record(
        "box.reload",
        tenant=None,
        actor="system:reload",
        source_ip=None,
        outcome="error" if result.errors else "ok",
        detail={
            "applied": result.applied,
            "needs_restart": result.needs_restart,
            "errors": result.errors,
        },
    )
    if notifier is not None:
        notifier.ready(f"serving {len(box.tenants.names())} tenant(s)")
    return result


#: How often a box whose ``tenants_scan_s`` is 0 looks again whether SIGHUP turned scans on.
_SCAN_OFF_RECHECK_S: Final = 5.0

Fingerprint = tuple[tuple[str, int, int], ...]


async def scan_tenants_once(box: Box, last: Fingerprint | None) -> tuple[Fingerprint, bool]:
    """One check of ``tenants_scan_s``: serve new folders when the unserved part of the tenants
    folder changed since ``last`` (None: the first check, which only takes the fingerprint, as
    start-up just loaded the folder). Returns the new fingerprint and whether it scanned."""
    tenants_dir = box.settings.tenants_path()
    now = await asyncio.to_thread(box.tenants.unserved_fingerprint, tenants_dir)
    if last is None or now == last:
        return now, False
    before = box.tenants.modules()
    try:
        report = await tenant_admin.rescan(box)
    except BoxError as exc:
        logger.error("tenants folder not scanned: %s", exc.message)
        return now, True
    if report.loaded or report.failed:
        logger.info(
            "tenants folder scan: serving %s; not loaded: %s",
            ", ".join(report.loaded) or "nothing new",
            ", ".join(sorted(report.failed)) or "none",
        )
    await box.audit_tenant_changes(before, box.tenants.modules(), report, actor="system:scan")
    # What this scan loaded is served now: the next check starts from what is left.
    return await asyncio.to_thread(box.tenants.unserved_fingerprint, tenants_dir), True


async def scan_tenants_forever(box: Box) -> None:
    """``tenants_scan_s``: serve new folders of the tenants folder without a command."""
    last: Fingerprint | None = None
    while True:
        interval = box.settings.tenants_scan_s
        if interval > 0:
            last, _ = await scan_tenants_once(box, last)
        else:
            last = None
        await asyncio.sleep(interval if interval > 0 else _SCAN_OFF_RECHECK_S)
