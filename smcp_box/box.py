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
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from smcp_box import __version__
from smcp_box.auth.apikeys import ApiKeyAuthenticator
from smcp_box.auth.cimd import CimdFetcher
from smcp_box.auth.resource import TenantAuthenticator
from smcp_box.auth.server import BoxAuthorizationServer
from smcp_box.auth.throttle import LoginThrottle
from smcp_box.auth.tokens import ROTATION_CHECK_S, TokenService
from smcp_box.config import Settings, box_id, read_store_password, read_token
from smcp_box.errors import BoxError
from smcp_box.metrics import BoxFigures, LiveMetrics, TenantFigures, tenant_figures
from smcp_box.sandbox import Sandbox
from smcp_box.seams import (
    Auditor,
    Authenticator,
    Change,
    ChangeFeed,
    ChangeListener,
    JsonObject,
    Principal,
    TenantRuntime,
)
from smcp_box.store import Store, load_data_key
from smcp_box.store.audit_writer import AuditWriter
from smcp_box.store.changes import (
    ADMIN_APPROVALS,
    ADMIN_BASELINES,
    ADMIN_SECRETS,
    TOPIC_ADMIN,
    TOPIC_RESYNC,
    TOPIC_TENANT,
    CoalescedJob,
    LocalChangeFeed,
)
from smcp_box.store.fleet import Beat, new_instance
from smcp_box.store.pg_notify import PgChangeFeed
from smcp_box.store.statelock import StateLock, hold_exclusive
from smcp_box.store.store import open_configured
from smcp_box.store.tenant_state import TenantAdminState
from smcp_box.tenancy import added, vetting_sync
from smcp_box.tenancy.baselines import FLUSH_INTERVAL_S
from smcp_box.tenancy.blob_resources import follow_blob_resources
from smcp_box.tenancy.legacy_overrides import import_legacy_overrides
from smcp_box.tenancy.quotas import Admission
from smcp_box.tenancy.registry import LoadReport, TenantRegistry
from smcp_box.tenancy.tasks import TaskRunner
from smcp_box.web.connections import ConnectionGuard
from smcp_box.web.drain import DrainSwitch
from smcp_box.web.mcp_tasks import TaskService
from smcp_box.web.metrics_endpoint import LATENCY_WINDOW_S
from smcp_box.web.services import AppServices, McpServices, OAuthServices

logger = logging.getLogger("smcp_box")

#: Below the state directory: the files of tenants added through the admin API.
ADDED_TENANTS_DIR = "tenants"


def lock_state(settings: Settings) -> StateLock:
    """Take the one-box-per-state-directory lock (on the database's folder) for the process's
    life; ConfigError naming the holder's PID if another box (or a restore) has it.

    ``smcp-box serve`` takes it before binding its port, so a second box never listens at all.
    """
    settings.state_path().mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_dir = settings.database_path().parent
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return hold_exclusive(lock_dir)


#: How often old audit rows are pruned; the first run comes ``AUDIT_PRUNE_FIRST_S`` after start.
AUDIT_PRUNE_INTERVAL_S = 3600.0
AUDIT_PRUNE_FIRST_S = 30.0
#: How often the box records what loads noted about tool definitions (alerts, matching pins).
VETTING_UPKEEP_S = 2.0
#: The actor of audit rows written by a reload another box's change caused.
FLEET_ACTOR = "system:fleet"


class AuditingAuthenticator:
    """The transport's Authenticator: the tenant's credential check, plus an audit row per
    success.

    Failures are audited by the transport, which has the request's context; successes
    here, as background rows, so that the hot path does not wait for a database write.
    """

    def __init__(self, inner: Authenticator, auditor: Auditor) -> None:
        self._inner = inner
        self._auditor = auditor

    async def authenticate(
        self,
        tenant: TenantRuntime,
        headers: Mapping[str, str],
        source_ip: str | None,
        resource: str | None = None,
    ) -> Principal:
        principal = await self._inner.authenticate(tenant, headers, source_ip, resource)
        # A public tenant checks no credential, so there is no authentication to record.
        if principal.method != "none":
            await self._auditor.record(
                "auth.success",
                tenant=principal.tenant,
                actor=principal.subject,
                source_ip=source_ip,
                outcome="ok",
                detail={"method": principal.method},
            )
        return principal


def advertised_address(settings: Settings) -> str:
    """``host:port`` of this box's MCP listener as others reach it (its heartbeat row, for
    ``lb-config``): ``[server] host``, or the host name when that is a wildcard address."""
    host = settings.server.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104  (recognizing a wildcard, not binding one)
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{settings.server.port}"


async def _release_id(store: Store, box: str, instance: str) -> None:
    """Mark this process's heartbeat row stopped; a failure is logged (the row then turns
    gone after ``dead_after_s``)."""
    try:
        await store.fleet.stop(box, instance)
    except BoxError as exc:
        logger.error("could not mark this box stopped in the fleet: %s", exc.message)


async def open_change_feed(settings: Settings) -> ChangeFeed:
    """The feed that tells every box sharing the store about changes: LISTEN/NOTIFY on a
    connection of its own on PostgreSQL (started), in-process on SQLite."""
    if settings.store.backend != "postgres":
        return LocalChangeFeed(box_id(settings))
    feed = PgChangeFeed(
        settings.store.dsn, box_id(settings), password=read_store_password(settings)
    )
    await feed.start()
    return feed


def configure_sessions(store: Store, settings: Settings) -> None:
    """Hand the store the session lifetimes and event retention of ``settings`` (at start and
    on every reload)."""
    store.configure_sessions(
        idle_timeout_s=settings.sessions.idle_timeout_s,
        max_age_s=settings.sessions.max_age_s,
        max_events_per_session=settings.store.max_events_per_session,
    )


@dataclass
class Box:
    settings: Settings
    store: Store
    sandbox: Sandbox
    tenants: TenantRegistry
    authenticator: ApiKeyAuthenticator
    #: OAuth access tokens: signing keys (rotated by a background task), issue and verify.
    tokens: TokenService
    auditor: AuditWriter
    metrics: LiveMetrics
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    _background: list[asyncio.Task[Any]] = field(default_factory=list)
    _lock: StateLock | None = None
    #: Serializes admin changes to tenants (the socket's and the TCP admin API's).
    admin_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Quotas and per-address limits, kept for the life of the box (its buckets and lockouts
    #: survive reloads); built from ``settings.quotas`` and the registry's tenant policies.
    admission: Admission = field(init=False)
    #: Per-address connection and SSE stream caps and their drop counts (web/connections.py),
    #: kept for the life of the box like ``admission``.
    connections: ConnectionGuard = field(init=False)

    #: This box's id in a fleet (``[cluster] box_id`` or the host name).
    box_id: str = field(init=False)
    #: Changes announced to every box sharing the store, this one included (seams.ChangeFeed);
    #: in-process on SQLite.
    changes: ChangeFeed = field(init=False)
    #: Random per process: tells this box's heartbeat row from another process's under the
    #: same box id (store/fleet.py).
    instance: str = field(default_factory=new_instance)
    #: ``smcp-box drain``: on, the box refuses new sessions and /readyz answers 503.
    drain_switch: DrainSwitch = field(default_factory=DrainSwitch)
    #: The change feed to use (:meth:`start` passes the PostgreSQL one); None: in-process.
    feed: InitVar[ChangeFeed | None] = None

    def __post_init__(self, feed: ChangeFeed | None) -> None:
        self.admission = Admission(self.settings.quotas, self.tenants.policy)
        self.connections = ConnectionGuard(self.settings.server)
        self.box_id = box_id(self.settings)
        self.changes = feed if feed is not None else LocalChangeFeed(self.box_id)
        # Sessions are owned by this box id; takeovers are announced on, and heard from, the
        # feed (docs/scale-out.md, "Sessions that move"). The feed lives as long as the box.
        self.store.join_fleet(self.box_id, self.changes)

    #: The OAuth authorization server and its sign-in throttle (set by :meth:`start`).
    oauth: OAuthServices | None = None
    #: Runs durable tasks (tenancy/tasks.py; set by :meth:`start`).
    task_runner: TaskRunner | None = None
    #: Reloads caused by other boxes' changes (:meth:`follow_fleet`).
    _fleet_jobs: list[CoalescedJob] = field(default_factory=list)
    _fleet_stops: list[Callable[[], None]] = field(default_factory=list)
    #: (box id, instance) of dead boxes whose leftovers this box recovered.
    _swept: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        lock: StateLock | None = None,
    ) -> Box:
        """``lock``: the state lock already taken with :func:`lock_state` (the box then owns
        it and releases it at stop); else the box takes it here."""
        state = settings.state_path()
        # Before the database is opened, so that a second box or a restore keeps this one out.
        if lock is None:
            lock = lock_state(settings)
        async with contextlib.AsyncExitStack() as undo:
            undo.callback(lock.release)
            settings.cache_path().mkdir(parents=True, exist_ok=True, mode=0o700)
            data_key = load_data_key(state, settings.credentials_path())
            store = await open_configured(settings, data_key, clock=clock)
            undo.push_async_callback(store.close)
            # Before anything else uses the database: a second live box under this id stops
            # here, naming the other's address.
            instance = new_instance()
            await store.fleet.claim(
                Beat(box_id(settings), instance, advertised_address(settings), __version__),
                dead_after_s=settings.cluster.dead_after_s,
            )
            # A start that fails from here on leaves the id free, as a clean stop does.
            undo.push_async_callback(_release_id, store, box_id(settings), instance)
            configure_sessions(store, settings)
            changes = await open_change_feed(settings)
            if isinstance(changes, PgChangeFeed):
                undo.push_async_callback(changes.close)
            # Nothing of this box's is in flight yet: chunks it wrote that no blob points at
            # are what a crash mid-write left (other boxes' are theirs, see recover_for).
            await store.blobs.recover_for(store.box_id)
            sandbox = Sandbox.from_settings(settings.cache_path(), settings.sandbox)
            undo.callback(sandbox.close)
            auditor = AuditWriter(store, clock=clock)
            auditor.start()
            undo.push_async_callback(auditor.close)
            tokens = TokenService(store, settings.oauth, clock, changes=changes)
            await tokens.start()
            authenticator = ApiKeyAuthenticator(store)
            authenticator.follow(changes)
            registry = TenantRegistry(
                auditor=auditor,
                sandbox=sandbox,
                kv=store,
                defaults=settings.sandbox,
                clock=clock,
                quota_defaults=settings.quotas,
                vetting=settings.vetting,
                blobs=store.blobs,
            )
            box = cls(
                settings=settings,
                store=store,
                sandbox=sandbox,
                tenants=registry,
                authenticator=authenticator,
                tokens=tokens,
                auditor=auditor,
                metrics=LiveMetrics(clock),
                clock=clock,
                started_at=clock(),
                _lock=lock,
                instance=instance,
                feed=changes,
            )
            box.oauth = OAuthServices(
                server=BoxAuthorizationServer(
                    settings=settings.oauth,
                    records=store.oauth,
                    users=store,
                    tokens=tokens,
                    tenants=registry,
                    auditor=auditor,
                    cimd=CimdFetcher(settings.oauth),
                    clock=clock,
                ),
                throttle=LoginThrottle(
                    settings.oauth.login_max_failures_per_user,
                    settings.oauth.login_max_failures_per_ip,
                    settings.oauth.login_window_s,
                ),
            )
            # Before serving: tasks a crash left running are failed with a reason, not lost.
            box.task_runner = TaskRunner(store.tasks)
            await box.task_runner.recover()
            await import_legacy_overrides(settings.tenants_path(), store)
            # Before the first load, so that modules see their secrets from the first call.
            registry.secrets.replace_all(await store.all_secrets())
            # And are held to their approved definitions and baselines from the first call.
            await vetting_sync.load_vetting_state(store, registry)
            report = await box.reload_tenants(actor="system")
            await auditor.record(
                "box.start",
                tenant=None,
                actor="system",
                source_ip=None,
                outcome="ok",
                detail={"tenants": report.loaded, "failed": sorted(report.failed)},
            )
            undo.pop_all()
        box.follow_fleet()
        box._background.append(asyncio.create_task(box._expire_sessions_forever()))
        box._background.append(asyncio.create_task(box._prune_audit_forever()))
        box._background.append(asyncio.create_task(box._rotate_signing_keys_forever()))
        box._background.append(asyncio.create_task(box._vetting_upkeep_forever()))
        box._background.append(asyncio.create_task(box._purge_tasks_forever()))
        box._background.append(asyncio.create_task(box._heartbeat_forever()))
        return box

    async def recover_for(self, box_id: str) -> tuple[int, int]:
        """Take over what the box ``box_id`` left unfinished when it died: fail the tasks it
        was running and delete the chunks of its uncommitted blob writes; returns (tasks
        failed, chunks deleted). At start a box does this for its own id; for another box only
        once it is known to be gone (the fleet's heartbeat sweep calls this), never while it
        lives: its calls and writes in flight look the same in the database."""
        tasks = 0 if self.task_runner is None else await self.task_runner.recover_for(box_id)
        return tasks, await self.store.blobs.recover_for(box_id)

    def follow_fleet(self) -> None:
        """Act on the changes other boxes sharing the store commit (docs/scale-out.md
        "Fan-out"): a tenant's admin state, approvals or baselines reload secrets, vetting
        state and tenants from the database; secrets alone reload secrets. This box's own
        changes took effect when it made them. A resync (the feed reconnected, so notices
        may be lost) reloads everything."""
        everything = CoalescedJob(self.reload_from_store, "reloading tenants")
        secrets_only = CoalescedJob(self._reload_secrets, "reloading secrets")
        self._fleet_jobs = [everything, secrets_only]

        def admin_changed(change: Change) -> None:
            if change.payload == ADMIN_SECRETS:
                secrets_only.trigger()
            elif change.payload in (ADMIN_APPROVALS, ADMIN_BASELINES):
                everything.trigger()

        def from_others(listener: ChangeListener) -> ChangeListener:
            def heard(change: Change) -> None:
                if change.origin != self.box_id:
                    listener(change)

            return heard

        self._fleet_stops = [
            self.changes.subscribe(TOPIC_TENANT, from_others(everything.trigger)),
            self.changes.subscribe(TOPIC_ADMIN, from_others(admin_changed)),
            self.changes.subscribe(TOPIC_RESYNC, everything.trigger),
        ]

    async def reload_from_store(self) -> None:
        """Reload what the database holds for every box: secrets, approvals and baselines,
        then the tenants under their admin state."""
        await self._reload_secrets()
        await vetting_sync.load_vetting_state(self.store, self.tenants)
        await self.reload_tenants(actor=FLEET_ACTOR)

    async def _reload_secrets(self) -> None:
        self.tenants.secrets.replace_all(await self.store.all_secrets())

    def added_tenants_path(self) -> Path:
        """Where tenants added through the admin API keep their tenant.toml and module."""
        return self.settings.state_path() / ADDED_TENANTS_DIR

    def mcp_services(self) -> McpServices:
        return McpServices(
            tenants=self.tenants,
            authenticator=AuditingAuthenticator(
                TenantAuthenticator(self.authenticator, self.tokens), self.auditor
            ),
            sessions=self.store,
            auditor=self.auditor,
            observer=self.metrics,
            clock=self.clock,
            # The box id first, so a load balancer routes a session's requests by its prefix.
            new_session_id=lambda: f"{self.box_id}-{secrets.token_urlsafe(32)}",
            admission=self.admission,
            box_id=self.box_id,
            changes=self.changes,
            blob_changes=follow_blob_resources(self.store.blobs, self.tenants),
            tasks=None
            if self.task_runner is None
            else TaskService(self.task_runner, self.settings.tasks),
            drain=self.drain_switch,
        )

    def app_services(self) -> AppServices:
        """What ``create_app`` serves: the web layer gets these, never the box itself."""
        return AppServices(
            mcp=self.mcp_services(),
            readiness=self.readiness_problems,
            metrics_snapshot=self.metrics_snapshot,
            tokens=self.tokens,
            oauth=self.oauth,
            metrics_token=read_token(
                self.settings, self.settings.metrics.token_file, "metrics-token", "metrics token"
            ),
            catalog_tenants=self.tenants.all,
            # The transport's check without its audit rows: listing is not signing in.
            catalog_authenticator=TenantAuthenticator(self.authenticator, self.tokens),
            connections=self.connections,
        )

    async def readiness_problems(self) -> list[str]:
        """Why the box cannot serve now: empty while the database is writable and the
        wall-clock ticker runs."""
        problems: list[str] = []
        try:
            await self.store.healthcheck()
        except BoxError as exc:
            problems.append(f"database: {exc.message}")
        if not self.sandbox.ticker_alive():
            problems.append("sandbox: the wall-clock ticker is not running")
        draining = self.drain_switch.readiness_problem()
        if draining is not None:
            problems.append(draining)
        return problems

    # --- fleet: heartbeats and drain (docs/scale-out.md, "Box identity and drain") ---------

    async def current_beat(self) -> Beat:
        """What this box's heartbeat row says now."""
        # This box's own: on a shared database the other boxes' sessions are theirs to count.
        sessions = await self.store.count_owned_sessions(self.box_id)
        return Beat(
            box_id=self.box_id,
            instance=self.instance,
            address=advertised_address(self.settings),
            version=__version__,
            state="draining" if self.drain_switch.draining else "up",
            sessions=sessions,
        )

    async def heartbeat(self) -> bool:
        """Write this box's heartbeat row now; False (logged) when another process has taken
        this box id over after this one fell silent for ``dead_after_s``."""
        try:
            mine = await self.store.fleet.beat(await self.current_beat())
        except BoxError as exc:
            logger.error("writing the heartbeat failed: %s", exc.message)
            return True
        if not mine:
            logger.error(
                "box id %r was taken over by another process after this one missed its "
                "heartbeats; stop this box, or give one of them another [cluster] box_id",
                self.box_id,
            )
        return mine

    async def _heartbeat_forever(self) -> None:
        while True:
            # Read each time round: SIGHUP may change the settings.
            await asyncio.sleep(self.settings.cluster.heartbeat_s)
            try:
                await self.heartbeat()
                await self.sweep_gone_boxes()
            except Exception:
                logger.exception("writing the heartbeat failed; will retry")

    async def sweep_gone_boxes(self) -> list[str]:
        """Recover what boxes that fell silent left unfinished (:meth:`recover_for`): once
        per dead process, by every box that notices. Recovery only ever touches rows still
        naming the dead box, so boxes sweeping at once, or a task another box has since taken
        on, come to no harm. Returns the box ids swept now."""
        records = await self.store.fleet.boxes(dead_after_s=self.settings.cluster.dead_after_s)
        swept: list[str] = []
        for record in records:
            process = (record.box_id, record.instance)
            if record.status != "gone" or record.box_id == self.box_id or process in self._swept:
                continue
            tasks, chunks = await self.recover_for(record.box_id)
            self._swept.add(process)
            swept.append(record.box_id)
            if tasks or chunks:
                logger.warning(
                    "box %r is gone: failed %d task(s) it was running and removed %d chunk(s) "
                    "of its unfinished blob writes",
                    record.box_id,
                    tasks,
                    chunks,
                )
        return swept

    async def set_draining(self, draining: bool) -> bool:
        """Start (or with False, stop) draining; the heartbeat row says so at once. Whether
        anything changed."""
        switch = self.drain_switch
        changed = switch.drain(self.clock()) if draining else switch.undo()
        if changed:
            await self.heartbeat()
        return changed

    async def metrics_snapshot(self) -> tuple[BoxFigures, list[TenantFigures]]:
        """One scrape's figures: the box-wide ones and each tenant's."""
        tenants = [(tenant.name, tenant.enabled) for tenant in self.tenants.all()]
        figures = await tenant_figures(
            self.metrics, self.sandbox, self.store, tenants, window_s=LATENCY_WINDOW_S
        )
        counters = self.sandbox.cache_counters
        writer = self.auditor.stats
        scheduler = self.sandbox.scheduler
        round_trips = self.store.round_trips()
        box_figures = BoxFigures(
            started_at=self.started_at,
            tenants_failed=len(self.tenants.last_report.failed),
            ticker_alive=self.sandbox.ticker_alive(),
            cache={
                "hit": counters.hits,
                "compile": counters.compiles,
                "discarded": counters.discarded,
                "write_failure": counters.write_failures,
            },
            audit={
                "rows_written": writer.rows_written,
                "rows_dropped": writer.rows_dropped,
                "pending": self.auditor.pending,
            },
            definitions_pending=tuple(sorted(self.tenants.approvals.pending_all())),
            baseline_flags=self.tenants.baselines.flag_counts(),
            baseline_blocked=tuple(self.tenants.baselines.blocked()),
            connections=self.connections.figures(),
            scheduler={
                "slots": scheduler.slots,
                "running": scheduler.running,
                "waiting": scheduler.waiting,
                "granted": scheduler.grants,
                "yielded": scheduler.yields,
            },
            store_round_trips={} if round_trips is None else {self.store.backend: round_trips},
        )
        return box_figures, figures

    async def reload_tenants(self, *, actor: str) -> LoadReport:
        """(Re)load the tenants folder and the tenants added through the admin API, under the
        admin state in the database, and audit what changed (:meth:`audit_tenant_changes`)."""
        # Not in the middle of an admin change, whose state may not be in the database yet.
        async with self.admin_lock:
            before = self.tenants.modules()
            states = await self.store.tenant_states()
            await self._restore_added_files(states)
            report = self.tenants.load_folder(
                self.settings.tenants_path(), states, self.added_tenants_path()
            )
            after = self.tenants.modules()
        await self.audit_tenant_changes(before, after, report, actor=actor)
        return report

    async def audit_tenant_changes(
        self,
        before: Mapping[str, str],
        after: Mapping[str, str],
        report: LoadReport,
        *,
        actor: str,
    ) -> None:
        """Audit what a load changed from ``before`` to ``after`` (name -> module sha256, as
        ``tenants.modules()`` gives it): a row per tenant loaded, reloaded with another module,
        unloaded, or failed. Unchanged tenants leave no row."""
        rows: list[tuple[str, str | None, str, JsonObject]] = []
        for name, sha in sorted(after.items()):
            if name not in before:
                rows.append(("tenant.load", name, "ok", {"sha256": sha}))
            elif before[name] != sha:
                rows.append(
                    ("tenant.reload", name, "ok", {"sha256": sha, "previous": before[name]})
                )
        for name in sorted(set(before) - set(after)):
            rows.append(("tenant.unload", name, "ok", {"previous": before[name]}))
        for folder, reason in sorted(report.failed.items()):
            detail: JsonObject = {"folder": folder, "reason": reason}
            rows.append(("tenant.load_failed", None, "error", detail))
        for event, tenant, outcome, detail in rows:
            await self.auditor.record(
                event, tenant=tenant, actor=actor, source_ip=None, outcome=outcome, detail=detail
            )
        await self.settle_vetting()

    async def settle_vetting(self) -> None:
        """Record matching pins' definitions and alert changed definitions once
        (:func:`smcp_box.tenancy.vetting_sync.settle`); failures are logged, not raised."""
        try:
            await vetting_sync.settle(self.store, self.tenants, self.auditor)
        except BoxError as exc:
            logger.error("recording tool-definition approvals failed: %s", exc.message)

    async def _vetting_upkeep_forever(self) -> None:
        """Settle what admin loads noted (every few seconds) and write changed baselines (at
        most every FLUSH_INTERVAL_S)."""
        last_flush = self.clock()
        while True:
            await asyncio.sleep(VETTING_UPKEEP_S)
            await self.settle_vetting()
            if self.clock() - last_flush >= FLUSH_INTERVAL_S:
                last_flush = self.clock()
                await self.flush_baselines()

    async def flush_baselines(self) -> None:
        try:
            await vetting_sync.flush_baselines(self.store, self.tenants)
        except Exception:
            logger.exception("writing behaviour baselines failed; will retry")

    async def _restore_added_files(self, states: Mapping[str, TenantAdminState]) -> None:
        """Rewrite an added tenant's files from the database when they are missing or differ;
        a tenant whose files cannot be restored is reported by the load that follows."""
        for name, state in sorted(states.items()):
            if state.origin != "admin" or state.manifest is None or state.module_sha256 is None:
                continue
            folder = self.added_tenants_path() / name
            if await asyncio.to_thread(
                added.files_match, folder, state.manifest, state.module_sha256
            ):
                continue
            module = await self.store.added_tenant_module(name)
            if module is None:
                logger.error("added tenant %s: its module is not in the database", name)
                continue
            try:
                await asyncio.to_thread(added.write_files, folder, state.manifest, module)
            except BoxError as exc:
                logger.error("%s", exc.message)
                continue
            logger.warning(
                "added tenant %s: restored its files in %s from the database", name, folder
            )

    async def _expire_sessions_forever(self) -> None:
        while True:
            # Read each time round: SIGHUP may change the settings.
            lifetimes = self.settings.sessions
            await asyncio.sleep(min(60.0, lifetimes.idle_timeout_s / 2, lifetimes.max_age_s / 2))
            try:
                await self.expire_sessions()
                # Expired codes, sign-in sessions and refresh tokens go on the same schedule.
                await self.store.oauth.prune()
            except Exception:
                logger.exception("expiring sessions failed; will retry")

    async def expire_sessions(self) -> int:
        """Delete the sessions past ``[sessions] idle_timeout_s`` or ``max_age_s``, with their
        events (lookups already treat them as gone); returns how many."""
        lifetimes = self.settings.sessions
        now = self.clock()
        ended = await self.store.expire_sessions(
            now - lifetimes.idle_timeout_s, now - lifetimes.max_age_s
        )
        if ended:
            logger.info("ended %d expired session(s)", ended)
        return ended

    async def _purge_tasks_forever(self) -> None:
        while True:
            # Read each time round: SIGHUP may change the settings.
            await asyncio.sleep(self.settings.tasks.purge_interval_s)
            await self.purge_tasks()

    async def purge_tasks(self) -> int:
        """Delete the tasks past their TTL (lookups already treat them as gone)."""
        if self.task_runner is None:
            return 0
        try:
            purged = await self.task_runner.purge_expired()
        except Exception:
            logger.exception("purging expired tasks failed; will retry")
            return 0
        if purged:
            logger.info("purged %d expired task(s)", purged)
        return purged

    async def _rotate_signing_keys_forever(self) -> None:
        while True:
            await asyncio.sleep(ROTATION_CHECK_S)
            await self.rotate_signing_keys()

    async def rotate_signing_keys(self) -> bool:
        """Make a new OAuth signing key when ``signing_key_rotation_days`` have passed, and
        drop retired keys whose tokens have all expired; True when a key was made."""
        try:
            made = await self.tokens.rotate_if_due()
        except Exception:
            # The current key keeps signing; a rotation late by a minute is harmless.
            logger.exception("rotating the OAuth signing key failed; will retry")
            return False
        if made:
            logger.info("made a new OAuth signing key; the old one stays until its tokens expire")
        return made

    async def _prune_audit_forever(self) -> None:
        await asyncio.sleep(AUDIT_PRUNE_FIRST_S)
        while True:
            await self.prune_audit()
            await asyncio.sleep(AUDIT_PRUNE_INTERVAL_S)

    async def prune_audit(self) -> int:
        """Drop audit rows older than ``audit.retention_days`` (behind a signed checkpoint)."""
        days = self.settings.audit.retention_days
        try:
            pruned = await self.store.prune_audit(self.clock() - days * 86_400)
        except BoxError as exc:
            # Refused when the chain does not verify: the evidence stays, and so does the alarm.
            logger.error("pruning the audit log failed: %s", exc.message)
            return 0
        except Exception:
            logger.exception("pruning the audit log failed; will retry")
            return 0
        if pruned:
            logger.info("pruned %d audit row(s) older than %d days", pruned, days)
        return pruned

    async def stop(self) -> None:
        for stop in self._fleet_stops:
            stop()
        for job in self._fleet_jobs:
            await job.close()
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        if self.task_runner is not None:
            # Running task calls stop; their tasks fail with a reason a client can read.
            await self.task_runner.close()
        await self.settle_vetting()
        await self.flush_baselines()
        try:
            await self.auditor.record(
                "box.stop", tenant=None, actor="system", source_ip=None, outcome="ok", detail={}
            )
        except BoxError as exc:
            logger.error("could not audit the stop: %s", exc.message)
        # Every queued audit row is committed before the store closes.
        await self.auditor.close()
        if isinstance(self.changes, PgChangeFeed):
            await self.changes.close()
        # A clean stop: the fleet sees this box gone at once, and its id is free.
        await _release_id(self.store, self.box_id, self.instance)
        self.sandbox.close()
        await self.store.close()
        if self._lock is not None:
            self._lock.release()
