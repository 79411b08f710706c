"""Durable tasks (the MCP tasks extension, docs/tasks.md): one row per task, sealed.

A task belongs to a tenant and to the caller who created it (``owner``, the credential's
subject): every read and change names both, so one tenant's callers never see each other's
tasks, let alone another tenant's. Ids are 128 random bits, so they cannot be guessed either.

Everything a caller or module supplied (the call's params, the input requests and responses,
the module's request state, the result or error) is sealed with (``tasks``, tenant, task id,
field) in the AAD; tool names, statuses and times stay readable for listing and purging.

A task is kept ``ttl_ms`` after its last change (``expires_at``): never less than ``ttlMs``
from its creation, as the wire promises, and a result is kept a full TTL after it arrived.

Statuses are the wire's: ``working`` and ``input_required`` are open (they count against the
tenant's ``max_open_tasks``), ``completed``, ``failed`` and ``cancelled`` are terminal and
final: a late outcome never overwrites a terminal status (a result arriving after a cancel is
dropped).

Boxes. Several boxes may share one database (docs/scale-out.md, "Store areas on PostgreSQL").
A task's module call runs on one box, named in the row's ``box_id`` (the box that created it, or
that started its latest round). When a box dies its ``working`` tasks can never finish: they
are failed by :meth:`Tasks.recover_for` with that box's id, which the box itself runs at start
for its own id, and which a box that notices another one is gone (its heartbeat stopped) runs
for that one. Never for a live box's id: that would fail calls it is still running. Rows
written before box ids existed carry ``''`` and count as every box's (only a single SQLite box
ever wrote such rows, and its first start after the upgrade recovers them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from smcp_box.errors import TaskQuotaExceeded
from smcp_box.seams import JsonObject

from .crypto import Crypto
from .db import Database, Row, Tx

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]

OPEN_STATUSES: Final[tuple[TaskStatus, ...]] = ("working", "input_required")
TERMINAL_STATUSES: Final[tuple[TaskStatus, ...]] = ("completed", "failed", "cancelled")

#: Random bytes in a task id (128 bits, as unguessable as a session id).
TASK_ID_BYTES: Final = 16

_TABLE: Final = "tasks"
_COLUMNS: Final = (
    "rowid, task_id, tenant, owner, tool, status, created_at, updated_at, ttl_ms, expires_at,"
    " poll_interval_ms, timeout_s, request_enc, input_requests_enc, input_responses_enc,"
    " request_state_enc, result_enc, error_enc"
)
_OPEN_SQL: Final = "('working', 'input_required')"
#: The box id of rows written before tasks had one (see the module doc).
UNOWNED: Final = ""


@dataclass(frozen=True)
class TaskRecord:
    """One task as stored, opened."""

    task_id: str
    tenant: str
    owner: str
    tool: str
    status: TaskStatus
    created_at: float
    updated_at: float
    ttl_ms: int
    expires_at: float
    poll_interval_ms: int
    #: Wall-clock limit of each module call made for the task, in seconds.
    timeout_s: float
    #: The tools/call params (name, arguments, _meta) the task runs.
    request: JsonObject
    #: Pending inputRequests by key (non-empty only while input_required).
    input_requests: JsonObject
    #: inputResponses collected for the pending round, by key.
    input_responses: JsonObject
    #: The module's requestState for its next round, verbatim.
    request_state: Any
    #: The CallToolResult (completed only).
    result: JsonObject | None
    #: The JSON-RPC error object (failed only).
    error: JsonObject | None
    #: Paging position (the row id); not on the wire.
    seq: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class TaskPage:
    tasks: list[TaskRecord]
    #: Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


class Tasks:
    def __init__(
        self,
        db: Database,
        crypto: Crypto,
        clock: Callable[[], float],
        token_source: Callable[[int], bytes],
        box_id: str,
    ) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock
        self._token_source = token_source
        #: The box whose module calls this object's tasks run on (the row's ``box_id``).
        self.box_id = box_id

    # --- creation ----------------------------------------------------------------------------

    async def create(
        self,
        tenant: str,
        owner: str,
        tool: str,
        request: JsonObject,
        *,
        ttl_ms: int,
        poll_interval_ms: int,
        timeout_s: float,
        max_open: int,
    ) -> TaskRecord:
        """Store a new ``working`` task, durably, before anyone is told its id.

        Raises TaskQuotaExceeded when the tenant already has ``max_open`` open tasks (checked
        in the same transaction as the insert, so concurrent creations cannot overshoot).
        """
        task_id = base64.urlsafe_b64encode(self._token_source(TASK_ID_BYTES)).decode().rstrip("=")
        now = self._clock()
        async with self._db.write() as tx:
            # Count and insert as one step against other boxes' creations for the tenant.
            await tx.lock(_TABLE, tenant)
            row = await tx.one(
                f"SELECT COUNT(*) FROM tasks WHERE tenant = ? AND status IN {_OPEN_SQL}",  # noqa: S608 (fixed text)
                (tenant,),
            )
            open_count = int(row[0]) if row is not None else 0
            if open_count >= max_open:
                raise TaskQuotaExceeded(
                    f"tenant {tenant!r} already has {open_count} open tasks, its max_open_tasks "
                    f"quota ({max_open}); wait for one to finish, cancel one (tasks/cancel), or "
                    "raise [quotas] max_open_tasks",
                    quota="max_open_tasks",
                )
            await tx.run(
                "INSERT INTO tasks (task_id, tenant, owner, tool, status, created_at, updated_at,"
                " ttl_ms, expires_at, poll_interval_ms, timeout_s, request_enc, box_id)"
                " VALUES (?, ?, ?, ?, 'working', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    tenant,
                    owner,
                    tool,
                    now,
                    now,
                    ttl_ms,
                    now + ttl_ms / 1000.0,
                    poll_interval_ms,
                    timeout_s,
                    self._seal(request, tenant, task_id, "request"),
                    self.box_id,
                ),
            )
            created = await self._one(tx, tenant, task_id, None)
        assert created is not None  # inserted in this transaction
        return created

    # --- reads -------------------------------------------------------------------------------

    async def get(self, tenant: str, task_id: str, owner: str | None) -> TaskRecord | None:
        """The task, or None if it does not exist, belongs to another tenant or (when
        ``owner`` is given) to another caller, or is past its TTL and not running."""
        async with self._db.read() as tx:
            record = await self._one(tx, tenant, task_id, owner)
        # Past its TTL a task is gone for callers even before the purge deletes it, unless its
        # module call is still running (its end is recorded, then the purge takes it).
        if record is None or (record.expires_at <= self._clock() and record.status != "working"):
            return None
        return record

    async def list(
        self,
        tenant: str | None = None,
        owner: str | None = None,
        *,
        cursor: str | None = None,
        limit: int = 50,
        open_only: bool = False,
    ) -> TaskPage:
        """Tasks oldest first, ``limit`` at a time; None for tenant or owner lists all (the
        admin's view). ``cursor`` is a previous page's ``next_cursor``; ValueError if it is
        not one."""
        after = _parse_cursor(cursor)
        where = ["rowid > ?"]
        params: list[Any] = [after]
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if open_only:
            where.append(f"status IN {_OPEN_SQL}")
        sql = f"SELECT {_COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY rowid LIMIT ?"  # noqa: S608 (fixed text)
        async with self._db.read() as tx:
            rows = await tx.all(sql, (*params, limit + 1))
        records = [self._open_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return TaskPage(records, str(records[-1].seq) if more and records else None)

    async def count_open(self, tenant: str | None = None) -> dict[str, int]:
        """Open tasks by tenant (for /metrics and the admin views)."""
        sql = f"SELECT tenant, COUNT(*) FROM tasks WHERE status IN {_OPEN_SQL}"  # noqa: S608 (fixed text)
        params: tuple[str, ...] = ()
        if tenant is not None:
            sql += " AND tenant = ?"
            params = (tenant,)
        async with self._db.read() as tx:
            rows = await tx.all(sql + " GROUP BY tenant", params)
        return {str(t): int(n) for t, n in rows}

    async def open_by_status(self, tenant: str) -> dict[str, int]:
        """A tenant's open tasks by status, every open status present (zero when none)."""
        sql = f"SELECT status, COUNT(*) FROM tasks WHERE tenant = ? AND status IN {_OPEN_SQL}"  # noqa: S608 (fixed text)
        async with self._db.read() as tx:
            rows = await tx.all(sql + " GROUP BY status", (tenant,))
        counts: dict[str, int] = dict.fromkeys(OPEN_STATUSES, 0)
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    # --- changes -----------------------------------------------------------------------------

    async def complete(self, tenant: str, task_id: str, result: JsonObject) -> bool:
        """``completed`` with ``result``; False if the task is no longer open."""
        return await self._finish(tenant, task_id, "completed", "result_enc", "result", result)

    async def fail(self, tenant: str, task_id: str, error: JsonObject) -> bool:
        """``failed`` with the JSON-RPC error object ``error``; False if no longer open."""
        return await self._finish(tenant, task_id, "failed", "error_enc", "error", error)

    async def _finish(
        self,
        tenant: str,
        task_id: str,
        status: TaskStatus,
        column: str,
        field: str,
        value: JsonObject,
    ) -> bool:
        now = self._clock()
        rows = await self._db.write_one(
            f"UPDATE tasks SET status = ?, {column} = ?,"  # noqa: S608 (fixed text)
            " updated_at = ?, expires_at = ? + ttl_ms / 1000.0,"
            " input_requests_enc = NULL, input_responses_enc = NULL, request_state_enc = NULL"
            f" WHERE tenant = ? AND task_id = ? AND status IN {_OPEN_SQL} RETURNING task_id",
            (
                status,
                self._seal(value, tenant, task_id, field),
                now,
                now,
                tenant,
                task_id,
            ),
        )
        return bool(rows)

    async def require_input(
        self, tenant: str, task_id: str, input_requests: JsonObject, request_state: Any
    ) -> bool:
        """Park a working task as ``input_required`` on ``input_requests`` (the module's
        InputRequiredResult); False if the task is no longer working (cancelled meanwhile)."""
        now = self._clock()
        rows = await self._db.write_one(
            "UPDATE tasks SET status = 'input_required',"
            " updated_at = ?, expires_at = ? + ttl_ms / 1000.0,"
            " input_requests_enc = ?, input_responses_enc = NULL, request_state_enc = ?"
            " WHERE tenant = ? AND task_id = ? AND status = 'working' RETURNING task_id",
            (
                now,
                now,
                self._seal(input_requests, tenant, task_id, "input_requests"),
                None
                if request_state is None
                else self._seal(request_state, tenant, task_id, "request_state"),
                tenant,
                task_id,
            ),
        )
        return bool(rows)

    async def answer_inputs(
        self, tenant: str, task_id: str, owner: str, responses: Mapping[str, Any]
    ) -> TaskRecord | None:
        """Record ``responses`` (tasks/update's inputResponses) for pending keys.

        Responses to keys that are not pending are ignored (the client may answer late or
        twice). When no key is left pending the task goes back to ``working`` and the record
        returned carries every response: the caller then runs the module's next round, on this
        box (the row's ``box_id``). Returns None if the task is unknown to this owner; a task
        that is not input_required is returned unchanged.
        """
        async with self._db.write() as tx:
            # Read, merge and write as one step against another box answering the same task.
            await tx.lock(_TABLE, tenant, task_id)
            record = await self._one(tx, tenant, task_id, owner)
            if record is None or record.status != "input_required":
                return record
            answered = {k: v for k, v in responses.items() if k in record.input_requests}
            if not answered:
                return record
            collected = {**record.input_responses, **answered}
            pending = {k: v for k, v in record.input_requests.items() if k not in collected}
            status: TaskStatus = "input_required" if pending else "working"
            now = self._clock()
            await tx.run(
                "UPDATE tasks SET status = ?,"
                " updated_at = ?, expires_at = ? + ttl_ms / 1000.0, input_requests_enc = ?,"
                " input_responses_enc = ?, box_id = ? WHERE rowid = ?"
                " AND status = 'input_required'",
                (
                    status,
                    now,
                    now,
                    self._seal(pending, tenant, task_id, "input_requests"),
                    self._seal(collected, tenant, task_id, "input_responses"),
                    self.box_id,
                    record.seq,
                ),
            )
            return await self._one(tx, tenant, task_id, owner)

    async def resume(self, tenant: str, task_id: str) -> bool:
        """Clear the collected inputs of a task whose next round has started; False if the
        task is no longer working."""
        now = self._clock()
        rows = await self._db.write_one(
            "UPDATE tasks SET input_requests_enc = NULL, input_responses_enc = NULL,"
            " request_state_enc = NULL, updated_at = ?, expires_at = ? + ttl_ms / 1000.0,"
            " box_id = ? WHERE tenant = ? AND task_id = ? AND status = 'working' RETURNING task_id",
            (now, now, self.box_id, tenant, task_id),
        )
        return bool(rows)

    async def cancel(self, tenant: str, task_id: str, owner: str | None) -> TaskRecord | None:
        """Mark an open task ``cancelled``; a terminal one stays as it is (cancel is
        idempotent). None if the task is unknown (to this owner, when given)."""
        async with self._db.write() as tx:
            record = await self._one(tx, tenant, task_id, owner)
            if record is None or not record.is_open:
                return record
            now = self._clock()
            await tx.run(
                "UPDATE tasks SET status = 'cancelled',"
                " updated_at = ?, expires_at = ? + ttl_ms / 1000.0, input_requests_enc = NULL,"
                " input_responses_enc = NULL, request_state_enc = NULL WHERE rowid = ?"
                " AND status IN ('working', 'input_required')",  # not over a result meanwhile
                (now, now, record.seq),
            )
            return await self._one(tx, tenant, task_id, owner)

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete tasks past their TTL. A task whose module is still running is kept until
        it ends (its call's own timeout bounds that); one waiting for input is not running
        anything and goes."""
        at = self._clock() if now is None else now
        rows = await self._db.write_one(
            "DELETE FROM tasks WHERE expires_at <= ? AND status != 'working' RETURNING task_id",
            (at,),
        )
        return len(rows)

    async def recover_for(self, box_id: str, reason: str) -> int:
        """Fail every task left ``working`` by the box ``box_id`` (its module call died with
        that box), with a JSON-RPC error naming ``reason``; returns how many.

        Run it for this box's own id at start and at shutdown, and for a box known to be gone
        (its heartbeat stopped); never for a live box's id. Tasks waiting for input are intact:
        their next round starts, on whichever box, when the client answers."""
        now = self._clock()
        failed = 0
        async with self._db.write() as tx:
            rows = await tx.all(
                "SELECT rowid, tenant, task_id FROM tasks WHERE status = 'working'"
                " AND box_id IN (?, ?)",
                (box_id, UNOWNED),
            )
            for seq, tenant, task_id in rows:
                error = {"code": -32603, "message": reason}
                done = await tx.all(
                    "UPDATE tasks SET status = 'failed',"
                    " updated_at = ?, expires_at = ? + ttl_ms / 1000.0, error_enc = ?,"
                    " input_requests_enc = NULL, input_responses_enc = NULL,"
                    " request_state_enc = NULL WHERE rowid = ? AND status = 'working'"
                    " AND box_id IN (?, ?) RETURNING rowid",  # not if another box took it on
                    (now, now, self._seal(error, tenant, task_id, "error"), seq, box_id, UNOWNED),
                )
                failed += len(done)
        return failed

    async def delete_tenant(self, tenant: str) -> int:
        rows = await self._db.write_one(
            "DELETE FROM tasks WHERE tenant = ? RETURNING task_id", (tenant,)
        )
        return len(rows)

    # --- rows --------------------------------------------------------------------------------

    def _seal(self, value: Any, tenant: str, task_id: str, field: str) -> bytes:
        return self._crypto.seal_json(value, _TABLE, tenant, task_id, field)

    def _unseal(self, blob: bytes | None, tenant: str, task_id: str, field: str) -> Any:
        return (
            None if blob is None else self._crypto.open_json(blob, _TABLE, tenant, task_id, field)
        )

    async def _one(self, tx: Tx, tenant: str, task_id: str, owner: str | None) -> TaskRecord | None:
        sql = f"SELECT {_COLUMNS} FROM tasks WHERE tenant = ? AND task_id = ?"  # noqa: S608 (fixed text)
        params: tuple[str, ...] = (tenant, task_id)
        if owner is not None:
            sql += " AND owner = ?"
            params = (*params, owner)
        row = await tx.one(sql, params)
        return None if row is None else self._open_row(row)

    def _open_row(self, row: Row) -> TaskRecord:
        (seq, task_id, tenant, owner, tool, status, created, updated, ttl_ms, expires) = row[:10]
        (poll_ms, timeout_s, request, requests, responses, state, result, error) = row[10:]
        return TaskRecord(
            task_id=str(task_id),
            tenant=str(tenant),
            owner=str(owner),
            tool=str(tool),
            status=status,
            created_at=float(created),
            updated_at=float(updated),
            ttl_ms=int(ttl_ms),
            expires_at=float(expires),
            poll_interval_ms=int(poll_ms),
            timeout_s=float(timeout_s),
            request=self._unseal(request, tenant, task_id, "request"),
            input_requests=self._unseal(requests, tenant, task_id, "input_requests") or {},
            input_responses=self._unseal(responses, tenant, task_id, "input_responses") or {},
            request_state=self._unseal(state, tenant, task_id, "request_state"),
            result=self._unseal(result, tenant, task_id, "result"),
            error=self._unseal(error, tenant, task_id, "error"),
            seq=int(seq),
        )


def _parse_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise ValueError(f"{cursor!r} is not a task list cursor; pass a page's next_cursor")
    return int(cursor)
