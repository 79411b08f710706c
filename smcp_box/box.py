"""The running appliance: every long-lived service of one box, built from the settings.

``Box.start`` opens things in dependency order (store, sandbox, tenants) and ``Box.stop`` closes
them in reverse, so that a failure half-way leaves nothing open. The web app, the CLI and the
tests all build the box the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smcp_box.auth.apikeys import ApiKeyAuthenticator
from smcp_box.config import Settings
from smcp_box.metrics import LiveMetrics
from smcp_box.sandbox import Sandbox
from smcp_box.store import Store, load_data_key
from smcp_box.tenancy.registry import TenantRegistry
from smcp_box.web.services import JsonObject, McpServices

logger = logging.getLogger("smcp_box")


class StoreAuditor:
    """Implements the Auditor seam on the store's hash-chained audit log."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(
        self,
        event: str,
        *,
        tenant: str | None,
        actor: str,
        source_ip: str | None,
        outcome: str,
        detail: JsonObject,
    ) -> None:
        await self._store.append_audit(
            event, tenant=tenant, actor=actor, source_ip=source_ip, outcome=outcome, detail=detail
        )


@dataclass
class Box:
    settings: Settings
    store: Store
    sandbox: Sandbox
    tenants: TenantRegistry
    authenticator: ApiKeyAuthenticator
    auditor: StoreAuditor
    metrics: LiveMetrics
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    _background: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, *, clock: Callable[[], float] = time.time) -> Box:
        state = settings.state_path()
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.cache_path().mkdir(parents=True, exist_ok=True, mode=0o700)
        data_key = load_data_key(state, settings.credentials_path())
        store = await Store.open(
            settings.database_path(),
            data_key,
            encrypt=settings.store.encrypt,
            clock=clock,
            max_events_per_session=settings.store.max_events_per_session,
            kv_max_keys=settings.store.kv_max_keys,
            kv_max_value_bytes=settings.store.kv_max_value_bytes,
            kv_max_total_bytes=settings.store.kv_max_total_bytes,
        )
        try:
            sandbox = Sandbox(settings.cache_path(), tick_s=settings.sandbox.tick_ms / 1000)
        except BaseException:
            await store.close()
            raise
        auditor = StoreAuditor(store)
        registry = TenantRegistry(sandbox=sandbox, kv=store, defaults=settings.sandbox, clock=clock)
        try:
            report = registry.load_folder(settings.tenants_path())
        except BaseException:
            sandbox.close()
            await store.close()
            raise
        await auditor.record(
            "box.start",
            tenant=None,
            actor="system",
            source_ip=None,
            outcome="ok",
            detail={"tenants": report.loaded, "failed": sorted(report.failed)},
        )
        box = cls(
            settings=settings,
            store=store,
            sandbox=sandbox,
            tenants=registry,
            authenticator=ApiKeyAuthenticator(store, auditor),
            auditor=auditor,
            metrics=LiveMetrics(clock),
            clock=clock,
            started_at=clock(),
        )
        box._background.append(asyncio.create_task(box._expire_sessions_forever()))
        return box

    def mcp_services(self) -> McpServices:
        return McpServices(
            tenants=self.tenants,
            authenticator=self.authenticator,
            sessions=self.store,
            auditor=self.auditor,
            observer=self.metrics,
            clock=self.clock,
            new_session_id=lambda: secrets.token_urlsafe(32),
        )

    async def _expire_sessions_forever(self) -> None:
        idle = self.settings.sessions.idle_timeout_s
        while True:
            await asyncio.sleep(min(60.0, idle / 2))
            try:
                ended = await self.store.expire_sessions(self.clock() - idle)
            except Exception:
                logger.exception("expiring idle sessions failed; will retry")
                continue
            if ended:
                logger.info("ended %d idle session(s)", ended)

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        self.sandbox.close()
        await self.store.close()
