"""The store facade: one per box, one SQLite file, one writer connection.

:class:`Store` satisfies :class:`smcp_box.web.services.SessionStore` and adds kv, API keys, the
audit log and maintenance. The work is done by one small class per concern (``sessions``,
``kv``, ``apikeys``, ``audit``) sharing the :class:`~.backend.Database` and
:class:`~.crypto.Crypto`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

from smcp_box.config import Settings, read_store_password
from smcp_box.config import box_id as configured_box_id
from smcp_box.errors import DecryptionFailed, StoreError
from smcp_box.seams import ChangeFeed, JsonObject, SessionRecord

from .apikeys import DEFAULT_LAST_USED_RESOLUTION, ApiKeyRecord, ApiKeys
from .approvals import ApprovalRecord, Approvals
from .audit import Audit, AuditEntry, AuditRecord, ChainVerification
from .backend import Database
from .baselines import BaselineRow, Baselines
from .blobs import Blobs
from .chain import AuditVerification, ChainFinding
from .crypto import Crypto
from .db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_SYNCHRONOUS,
    SqliteDatabase,
    Synchronous,
    backup_to,
    sqlite_only,
)
from .fleet import Fleet
from .kv import Kv, KvLimits, KvQuota
from .oauth import OAuthRecords
from .pg import DEFAULT_POOL_SIZE, PgDatabase
from .secrets import Secrets
from .sessions import DEFAULT_MAX_EVENTS_PER_SESSION, Sessions
from .signing_keys import SigningKeyRecord, SigningKeys
from .tasks import Tasks
from .tenant_state import TenantAdminState, TenantStates
from .users import UserRecord, Users

if TYPE_CHECKING:
    from smcp_box.seams import SessionStore

_KEY_CHECK: Final = "key_check"
_HEALTH: Final = "healthcheck"
_DEFAULT_LIMITS: Final = KvLimits()
#: The box id of a store opened without one (tests and offline tools); a box passes its own
#: (``config.box_id``), which names its audit chain and owns its task and blob rows.
DEFAULT_BOX_ID: Final = "box"


@dataclass(frozen=True)
class DatabaseHealth:
    """What :meth:`Store.database_health` found."""

    backend: str
    #: A file path, or the DSN without its password.
    location: str
    reachable: bool
    #: Milliseconds the trivial query took (or took to fail).
    latency_ms: float
    error: str | None


async def open_configured(
    settings: Settings, data_key: bytes, *, clock: Callable[[], float] = time.time
) -> Store:
    """The store ``settings`` name: its ``[store]`` backend (SQLite file, or PostgreSQL at
    ``dsn`` with the credentials folder's ``store-password``), limits and encryption."""
    store_settings = settings.store
    options: StoreOptions = {
        "encrypt": store_settings.encrypt,
        "clock": clock,
        "max_events_per_session": store_settings.max_events_per_session,
        "kv_max_keys": store_settings.kv_max_keys,
        "kv_max_value_bytes": store_settings.kv_max_value_bytes,
        "kv_max_total_bytes": store_settings.kv_max_total_bytes,
        "box_id": configured_box_id(settings),
    }
    if store_settings.backend == "postgres":
        return await Store.open_postgres(
            store_settings.dsn, data_key, password=read_store_password(settings), **options
        )
    return await Store.open(settings.database_path(), data_key, **options)


class StoreOptions(TypedDict, total=False):
    """What a store takes on either backend (:meth:`Store.open`, :meth:`Store.open_postgres`);
    each left out defaults as in :meth:`Store.open_on`."""

    #: False only for the benchmarks: values stored unencrypted.
    encrypt: bool
    clock: Callable[[], float]
    token_source: Callable[[int], bytes]
    max_events_per_session: int
    kv_max_keys: int
    kv_max_value_bytes: int
    kv_max_total_bytes: int
    kv_max_key_bytes: int
    api_key_last_used_resolution: float
    #: ``[cluster] box_id``: whose audit chain, tasks and blob writes this store's are.
    box_id: str


class Store:
    """Everything the box persists. Open with :meth:`open`, close with :meth:`close`.

    All methods are coroutines safe to call concurrently; they are serialized on one connection.
    Errors: :class:`~smcp_box.errors.StorageFull` when the disk or ``max_db_bytes`` is full (the
    change rolled back), :class:`~smcp_box.errors.KvQuotaExceeded` naming the kv limit,
    :class:`~smcp_box.errors.DecryptionFailed` for a wrong key or a tampered value,
    :class:`~smcp_box.errors.SessionNotFound` when updating or appending to a session that is
    not open, :class:`~smcp_box.errors.StoreError` for anything else the database reports.
    """

    def __init__(
        self,
        db: Database,
        crypto: Crypto,
        clock: Callable[[], float],
        token_source: Callable[[int], bytes],
        *,
        max_events_per_session: int,
        kv_limits: KvLimits,
        api_key_last_used_resolution: float,
        box_id: str = DEFAULT_BOX_ID,
    ) -> None:
        """Use :meth:`open`; this only wires the parts together."""
        self._db = db
        self._crypto = crypto
        self._clock = clock
        #: The box this store serves (``[cluster] box_id``): its audit rows go to this box's
        #: chain, and it owns the task and blob rows whose crash recovery must stay with one box
        #: (see store/tasks.py, blobs.py).
        self.box_id = box_id

        self._sessions = Sessions(db, crypto, clock, max_events_per_session=max_events_per_session)
        self._kv = Kv(db, crypto, clock, kv_limits)
        self._keys = ApiKeys(
            db,
            crypto,
            clock,
            token_source,
            last_used_resolution=api_key_last_used_resolution,
        )
        self._audit = Audit(db, crypto, clock, box_id)
        self._tenant_states = TenantStates(db, crypto, clock)
        self._signing_keys = SigningKeys(db, crypto)
        #: The authorization server's clients, codes, refresh tokens, consents and logins
        #: (store/oauth.py); one object rather than a dozen pass-through methods here.
        self.oauth = OAuthRecords(db, crypto, clock)
        self._users = Users(db, crypto, clock)
        self._secrets = Secrets(db, crypto, clock)
        self._approvals = Approvals(db, crypto, clock)
        self._baselines = Baselines(db, clock)
        #: Durable tasks of the MCP tasks extension (store/tasks.py, docs/tasks.md).
        self.tasks = Tasks(db, crypto, clock, token_source, box_id)
        #: Per-tenant blobs (store/blobs.py), streamed a chunk at a time; one object like
        #: ``oauth``, since its writers and readers are objects of their own.
        self.blobs = Blobs(db, crypto, clock, box_id)
        #: The heartbeat rows of every box sharing this store (store/fleet.py).
        self.fleet = Fleet(db, clock)

    @classmethod
    async def open(
        cls,
        path: Path,
        data_key: bytes,
        *,
        max_db_bytes: int | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
        **options: Unpack[StoreOptions],
    ) -> Store:
        """Open (creating and migrating if needed) the database at ``path``.

        ``encrypt=False`` stores values unencrypted and ``synchronous="NORMAL"`` gives up
        durability against power loss; both exist only for the benchmarks, never use them in
        production. ``max_db_bytes`` caps the database file (SQLite ``max_page_count``);
        writes past it raise :class:`~smcp_box.errors.StorageFull`. ``options``: see
        :class:`StoreOptions`.

        Raises :class:`~smcp_box.errors.DecryptionFailed` if ``data_key`` is not the key the
        database was created with, and :class:`~smcp_box.errors.StoreError` if the database is
        from a newer release.
        """
        # The key is validated before any file is touched.
        crypto = Crypto(data_key, encrypt=options.get("encrypt", True))
        db = await SqliteDatabase.open(
            path,
            busy_timeout_ms=busy_timeout_ms,
            max_db_bytes=max_db_bytes,
            synchronous=synchronous,
        )
        return await cls._open_with_options(db, crypto, options)

    @classmethod
    async def open_postgres(
        cls,
        dsn: str,
        data_key: bytes,
        *,
        password: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        **options: Unpack[StoreOptions],
    ) -> Store:
        """Open (migrating if needed) the PostgreSQL database at ``dsn``, shared by every box
        of a fleet; raises :class:`~smcp_box.errors.DecryptionFailed` on a data key mismatch.
        ``options``: see :class:`StoreOptions`."""
        crypto = Crypto(data_key, encrypt=options.get("encrypt", True))
        db = await PgDatabase.open(dsn, password=password, pool_size=pool_size)
        return await cls._open_with_options(db, crypto, options)

    @classmethod
    async def _open_with_options(cls, db: Database, crypto: Crypto, options: StoreOptions) -> Store:
        return await cls.open_on(
            db,
            crypto,
            clock=options.get("clock", time.time),
            token_source=options.get("token_source", secrets.token_bytes),
            max_events_per_session=options.get(
                "max_events_per_session", DEFAULT_MAX_EVENTS_PER_SESSION
            ),
            kv_limits=KvLimits(
                options.get("kv_max_keys", _DEFAULT_LIMITS.max_keys),
                options.get("kv_max_value_bytes", _DEFAULT_LIMITS.max_value_bytes),
                options.get("kv_max_total_bytes", _DEFAULT_LIMITS.max_total_bytes),
                options.get("kv_max_key_bytes", _DEFAULT_LIMITS.max_key_bytes),
            ),
            api_key_last_used_resolution=options.get(
                "api_key_last_used_resolution", DEFAULT_LAST_USED_RESOLUTION
            ),
            box_id=options.get("box_id", DEFAULT_BOX_ID),
        )

    @classmethod
    async def open_on(
        cls,
        db: Database,
        crypto: Crypto,
        *,
        clock: Callable[[], float] = time.time,
        token_source: Callable[[int], bytes] = secrets.token_bytes,
        max_events_per_session: int = DEFAULT_MAX_EVENTS_PER_SESSION,
        kv_limits: KvLimits = _DEFAULT_LIMITS,
        api_key_last_used_resolution: float = DEFAULT_LAST_USED_RESOLUTION,
        box_id: str = DEFAULT_BOX_ID,
    ) -> Store:
        """A store on an opened, migrated database of any backend (the store owns it from
        here: it is closed on failure and by :meth:`close`), after the data key check."""
        store = cls(
            db,
            crypto,
            clock,
            token_source,
            max_events_per_session=max_events_per_session,
            kv_limits=kv_limits,
            api_key_last_used_resolution=api_key_last_used_resolution,
            box_id=box_id,
        )
        try:
            await store._check_key()
        except BaseException:
            await db.close()
            raise
        return store

    async def _check_key(self) -> None:
        # A wrong key would otherwise surface only later, row by row, as failed decryptions;
        # refusing at open is clearer and keeps a wrong key from writing rows nobody can read.
        expected = self._crypto.key_check()
        async with self._db.write() as tx:
            # Boxes sharing one database may start at once: one of them writes the check.
            await tx.lock("meta", _KEY_CHECK)
            row = await tx.one("SELECT value FROM meta WHERE name = ?", (_KEY_CHECK,))
            if row is None:
                await tx.run("INSERT INTO meta (name, value) VALUES (?, ?)", (_KEY_CHECK, expected))
                return
        if not hmac.compare_digest(bytes(row[0]), expected):
            raise DecryptionFailed(
                f"The data key does not match the one {self._db.location} was created with. Start "
                "with the original key file (or credential); a new key cannot read this data."
            )

    async def close(self) -> None:
        """Close the connection (idempotent).

        Always close a store: its connection thread keeps the process alive until then.
        """
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- sessions and events (SessionStore) -----------------------------------------------

    async def create_session(
        self, tenant: str, session_id: str, protocol_version: str, client_info: JsonObject
    ) -> None:
        await self._sessions.create_session(tenant, session_id, protocol_version, client_info)

    async def get_session(self, tenant: str, session_id: str) -> SessionRecord | None:
        return await self._sessions.get_session(tenant, session_id)

    async def update_session_state(
        self, tenant: str, session_id: str, state: JsonObject, *, epoch: int | None = None
    ) -> None:
        """Replace the session's state and mark it as seen now (SessionNotFound if not open;
        with ``epoch``, SessionMoved once another box took it over since)."""
        await self._sessions.update_session_state(tenant, session_id, state, epoch=epoch)

    async def claim_session(
        self, tenant: str, session_id: str, seen: SessionRecord
    ) -> SessionRecord:
        """Take the session over for this box (a no-op when it owns it; store/sessions.py)."""
        return await self._sessions.claim_session(tenant, session_id, seen)

    def join_fleet(self, box_id: str, feed: ChangeFeed | None) -> Callable[[], None]:
        """Own sessions as ``box_id``, announce takeovers on ``feed`` and heed other boxes'
        (docs/scale-out.md, "Sessions that move"); returns the function that stops heeding."""
        return self._sessions.join_fleet(box_id, feed)

    async def end_session(self, tenant: str, session_id: str) -> bool:
        return await self._sessions.end_session(tenant, session_id)

    async def append_event(self, tenant: str, session_id: str, stream_id: str, payload: str) -> str:
        """Persist one SSE event; returns its id ``"<stream seq>-<event seq>"``."""
        return await self._sessions.append_event(tenant, session_id, stream_id, payload)

    async def replay_events(
        self, tenant: str, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, str]]] | None:
        return await self._sessions.replay_events(tenant, session_id, last_event_id)

    async def list_sessions(self, tenant: str | None = None) -> list[SessionRecord]:
        return await self._sessions.list_sessions(tenant)

    async def expire_sessions(self, idle_before: float, created_before: float | None = None) -> int:
        return await self._sessions.expire_sessions(idle_before, created_before)

    def configure_sessions(
        self, *, idle_timeout_s: float, max_age_s: float, max_events_per_session: int
    ) -> None:
        """Session lifetimes (a lookup finds an expired session gone at once, before the
        background cleaner deletes it) and the events kept per session for replay."""
        self._sessions.configure(
            idle_timeout_s=idle_timeout_s,
            max_age_s=max_age_s,
            max_events_per_session=max_events_per_session,
        )

    async def count_open_sessions(self, tenant: str | None = None) -> int:
        return await self._sessions.count_open_sessions(tenant)

    async def count_owned_sessions(self, owner_box: str) -> int:
        """Open sessions the box ``owner_box`` owns now (sessions move between boxes)."""
        return await self._sessions.count_owned_sessions(owner_box)

    # --- kv -------------------------------------------------------------------------------

    async def kv_get(self, tenant: str, key: str) -> str | None:
        return await self._kv.kv_get(tenant, key)

    async def kv_set(self, tenant: str, key: str, value: str, quota: KvQuota | None = None) -> None:
        await self._kv.kv_set(tenant, key, value, quota)

    async def kv_cas(
        self,
        tenant: str,
        key: str,
        expected: str | None,
        value: str,
        quota: KvQuota | None = None,
    ) -> bool:
        return await self._kv.kv_cas(tenant, key, expected, value, quota)

    async def kv_incr(self, tenant: str, key: str, delta: int, quota: KvQuota | None = None) -> int:
        return await self._kv.kv_incr(tenant, key, delta, quota)

    async def kv_delete(self, tenant: str, key: str) -> bool:
        return await self._kv.kv_delete(tenant, key)

    async def kv_list(self, tenant: str, prefix: str = "") -> list[str]:
        return await self._kv.kv_list(tenant, prefix)

    async def kv_usage(self, tenant: str) -> tuple[int, int]:
        return await self._kv.kv_usage(tenant)

    async def kv_clear(self, tenant: str) -> int:
        return await self._kv.kv_clear(tenant)

    @property
    def kv_limits(self) -> KvLimits:
        return self._kv.limits

    # --- API keys ---------------------------------------------------------------------------

    async def create_api_key(self, tenant: str, label: str) -> tuple[str, str]:
        return await self._keys.create_api_key(tenant, label)

    async def verify_api_key(self, secret: str) -> ApiKeyRecord | None:
        return await self._keys.verify_api_key(secret)

    async def list_api_keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        return await self._keys.list_api_keys(tenant)

    async def revoke_api_key(self, key_id: str) -> bool:
        return await self._keys.revoke_api_key(key_id)

    # --- OAuth signing keys and revoked access tokens -----------------------------------------

    async def signing_keys(self) -> list[SigningKeyRecord]:
        """Every stored signing key (private JWKs, unsealed), oldest first."""
        return await self._signing_keys.all()

    async def rotate_signing_key(
        self, kid: str, private_jwk: JsonObject, *, replaces: str | None, now: float
    ) -> bool:
        """Make ``kid`` the signing key, retiring ``replaces``; False if another writer
        rotated first (the active key is no longer ``replaces``)."""
        return await self._signing_keys.rotate(kid, private_jwk, replaces=replaces, now=now)

    async def delete_signing_keys_retired_before(self, before: float) -> int:
        return await self._signing_keys.delete_retired_before(before)

    async def revoke_token_id(self, jti: str, expires_at: float) -> None:
        """Deny the access token with id ``jti`` until it expires."""
        await self._signing_keys.revoke_token(jti, expires_at)

    async def revoked_token_ids(self, now: float) -> dict[str, float]:
        """Ids of revoked access tokens not yet expired at ``now``, with their expiry."""
        return await self._signing_keys.revoked_tokens(now)

    async def prune_revoked_token_ids(self, now: float) -> int:
        return await self._signing_keys.prune_revoked_tokens(now)

    # --- users and their grants (see store/users.py) ----------------------------------------

    async def create_user(self, username: str, password_hash: str) -> UserRecord:
        """AlreadyExists if the name is taken; ValueError if it is not a valid username."""
        return await self._users.create_user(username, password_hash)

    async def get_user(self, username: str) -> UserRecord | None:
        return await self._users.get_user(username)

    async def list_users(self) -> list[UserRecord]:
        return await self._users.list_users()

    async def set_password(self, username: str, password_hash: str) -> bool:
        return await self._users.set_password(username, password_hash)

    async def set_user_disabled(self, username: str, disabled: bool) -> bool:
        return await self._users.set_user_disabled(username, disabled)

    async def delete_user(self, username: str) -> bool:
        return await self._users.delete_user(username)

    async def set_user_grant(self, username: str, tenant: str, scopes: frozenset[str]) -> bool:
        return await self._users.set_user_grant(username, tenant, scopes)

    async def user_grants(self, username: str) -> dict[str, frozenset[str]]:
        return await self._users.user_grants(username)

    async def remove_user_grant(self, username: str, tenant: str) -> bool:
        return await self._users.remove_user_grant(username, tenant)

    async def remove_tenant_grants(self, tenant: str) -> int:
        return await self._users.remove_tenant_grants(tenant)

    # --- admin state of tenants ------------------------------------------------------------

    async def tenant_states(self) -> dict[str, TenantAdminState]:
        """Every tenant's admin state, by tenant name."""
        return await self._tenant_states.all()

    async def tenant_state(self, tenant: str) -> TenantAdminState | None:
        return await self._tenant_states.get(tenant)

    async def save_tenant_state(self, state: TenantAdminState) -> None:
        """Insert or replace the row of ``state.tenant``."""
        await self._tenant_states.save(state)

    async def save_added_tenant(self, state: TenantAdminState, module: bytes) -> None:
        """Record an admin-added tenant and its module's bytes in one transaction."""
        await self._tenant_states.save_added(state, module)

    async def added_tenant_module(self, tenant: str) -> bytes | None:
        """The module bytes of an admin-added tenant (None for any other tenant)."""
        return await self._tenant_states.module(tenant)

    async def add_tenant_state_if_absent(self, state: TenantAdminState) -> bool:
        """Insert ``state`` unless its tenant already has a row; whether it was inserted."""
        return await self._tenant_states.insert_if_absent(state)

    async def delete_tenant_state(self, tenant: str) -> bool:
        return await self._tenant_states.delete(tenant)

    # --- tenant secrets ---------------------------------------------------------------------

    async def set_secret(self, tenant: str, name: str, value: str) -> None:
        """Insert or replace one secret; the value is sealed, bound to tenant and name."""
        await self._secrets.set(tenant, name, value)

    async def delete_secret(self, tenant: str, name: str) -> bool:
        return await self._secrets.delete(tenant, name)

    async def delete_tenant_secrets(self, tenant: str) -> int:
        return await self._secrets.delete_tenant(tenant)

    async def secret_names(self, tenant: str | None = None) -> list[tuple[str, str, float]]:
        """(tenant, name, updated_at) per secret, never the values."""
        return await self._secrets.names(tenant)

    async def all_secrets(self) -> dict[str, dict[str, str]]:
        """tenant -> name -> value, opened: what the box hands its modules."""
        return await self._secrets.all()

    # --- approvals of changed tool definitions and behaviour baselines -----------------------

    async def record_approval(
        self,
        tenant: str,
        definitions_sha256: str,
        definitions: list[dict[str, Any]],
        *,
        actor: str,
        reason: str,
        others: dict[str, list[dict[str, Any]]] | None = None,
    ) -> ApprovalRecord:
        """Add an approval row: from now on these definitions (tools, and ``others``: prompts
        and resources by kind) are the tenant's approved set."""
        return await self._approvals.record(
            tenant, definitions_sha256, definitions, actor=actor, reason=reason, others=others
        )

    async def approvals(self, tenant: str | None = None) -> list[ApprovalRecord]:
        """Every approval (of one tenant, or all), oldest first: the last is the one in force."""
        return await self._approvals.history(tenant)

    async def delete_tenant_approvals(self, tenant: str) -> int:
        return await self._approvals.delete_tenant(tenant)

    async def save_baselines(self, rows: Sequence[BaselineRow]) -> None:
        await self._baselines.save_many(rows)

    async def baselines(self) -> list[BaselineRow]:
        return await self._baselines.all()

    async def delete_baselines(self, tenant: str, tool: str | None = None) -> int:
        return await self._baselines.delete(tenant, tool)

    # --- audit ------------------------------------------------------------------------------

    async def append_audit(
        self,
        event: str,
        *,
        tenant: str | None,
        actor: str,
        source_ip: str | None,
        outcome: str,
        detail: dict[str, Any],
    ) -> int:
        return await self._audit.append_audit(
            event, tenant=tenant, actor=actor, source_ip=source_ip, outcome=outcome, detail=detail
        )

    async def append_audit_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Append ``entries`` in order in one transaction (all or none); returns their ids."""
        return await self._audit.append_audit_many(entries)

    async def audit_page(
        self,
        *,
        tenant: str | None = None,
        event: str | None = None,
        since_id: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        return await self._audit.audit_page(
            tenant=tenant, event=event, since_id=since_id, limit=limit, before_id=before_id
        )

    async def audit_by_time(
        self,
        *,
        after: tuple[float, str, int] | None = None,
        tenant: str | None = None,
        event: str | None = None,
        since_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Every chain's rows merged in time order (ties by box, place in chain), after the
        row ``after`` = (ts, box, seq): how ``audit export`` reads a fleet's log."""
        return await self._audit.audit_by_time(
            after=after, tenant=tenant, event=event, since_id=since_id, limit=limit
        )

    async def verify_audit_chain(self) -> AuditVerification:
        """Every box's chain verified: one verdict, naming the first broken chain's box."""
        return await self._audit.verify_audit_chain()

    async def verify_audit_chains(self) -> list[ChainVerification]:
        """Every box's chain verified, each on its own (box order)."""
        return await self._audit.verify_audit_chains()

    async def scan_audit_chain(self) -> list[ChainFinding]:
        """Every edited, inserted or deleted row, where verification stops at the first."""
        return await self._audit.scan_audit_chain()

    async def prune_audit(self, older_than: float) -> int:
        return await self._audit.prune_audit(older_than)

    # --- maintenance ------------------------------------------------------------------------

    async def integrity_check(self) -> list[str]:
        """Problems SQLite finds in the file and its foreign keys; empty when healthy."""
        async with sqlite_only(self._db, "The integrity check").read() as tx:
            rows = await tx.all("PRAGMA integrity_check")
            fk_rows = await tx.all("PRAGMA foreign_key_check")
        problems = [str(row[0]) for row in rows if row[0] != "ok"]
        problems += [f"foreign key violation in {r[0]} row {r[1]} -> {r[2]}" for r in fk_rows]
        return problems

    async def backup(self, dest: Path) -> None:
        """Write a consistent copy of the database to ``dest`` while the store keeps serving.

        The copy is only as secret as the data key: it needs the same key to open.
        """
        self._db.check_open()
        await backup_to(sqlite_only(self._db, "An online backup").path, dest)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgres"``."""
        return self._db.backend

    def round_trips(self) -> int | None:
        """Round trips to the database server since the store opened (PostgreSQL: each
        statement, a statement's first preparing on a connection, each BEGIN and COMMIT);
        None on SQLite, which has no server."""
        return self._db.round_trips()

    async def database_health(self) -> DatabaseHealth:
        """Where the database is and whether a trivial query answers, with its latency; never
        raises for an unreachable database (that is what it reports)."""
        started = time.perf_counter()
        error: str | None = None
        try:
            async with self._db.read() as tx:
                await tx.one("SELECT 1")
        except StoreError as exc:
            error = exc.message
        return DatabaseHealth(
            backend=self._db.backend,
            location=self._db.location,
            reachable=error is None,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            error=error,
        )

    async def healthcheck(self) -> None:
        """A cheap write and read; raises StoreError if the database is not writable."""
        stamp = repr(self._clock()).encode()
        async with self._db.write() as tx:
            await tx.run(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (_HEALTH, stamp),
            )
            row = await tx.one("SELECT value FROM meta WHERE name = ?", (_HEALTH,))
        if row is None or bytes(row[0]) != stamp:
            raise StoreError("The database health check read back something it did not write.")


if TYPE_CHECKING:

    def _satisfies_session_store(store: Store) -> SessionStore:
        return store  # mypy checks Store against the protocol here
