"""Approvals of changed tool definitions (``smcp-box tenant approve``): who approved what, why
and when, with the definitions themselves, so that the box can keep serving them after the
module changes again.

Rows are only ever added: the latest row of a tenant is its approved set, the earlier ones its
history. The definitions and the reason are sealed (the definitions may quote ``[config]``
values, the reason is an admin's free text); the fingerprint and the actor are lookup fields.
Approvals are not secret, but a backup read without the data key should not show them either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .crypto import Crypto
from .db import Database, Row

_TABLE = "definition_approvals"
_SELECT = (
    "SELECT id, tenant, definitions_sha256, definitions_enc, actor, reason_enc, approved_at"
    " FROM definition_approvals"
)


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    tenant: str
    #: The tools fingerprint (as tenant.toml's ``tools_sha256`` would pin it).
    definitions_sha256: str
    #: The approved tool definitions, in canonical order.
    definitions: tuple[dict[str, Any], ...]
    actor: str
    reason: str
    approved_at: float
    #: The approved prompts, resource templates and static resources by kind; None in a row
    #: written before they were covered (its approval holds the tools only).
    others: dict[str, tuple[dict[str, Any], ...]] | None = None


class Approvals:
    def __init__(self, db: Database, crypto: Crypto, clock: Callable[[], float]) -> None:
        self._db = db
        self._crypto = crypto
        self._clock = clock

    def _from_row(self, row: Row) -> ApprovalRecord:
        row_id, tenant, sha, definitions_enc, actor, reason_enc, at = row
        sealed = self._crypto.open_json(definitions_enc, _TABLE, tenant, sha, "definitions")
        # A list: a row from before prompts and resources were approved (tools only).
        definitions = sealed["tools"] if isinstance(sealed, dict) else sealed
        others = None
        if isinstance(sealed, dict):
            others = {
                str(kind): tuple(dict(item) for item in items)
                for kind, items in sealed["others"].items()
            }
        reason = self._crypto.open_text(reason_enc, _TABLE, tenant, sha, "reason")
        return ApprovalRecord(
            id=int(row_id),
            tenant=str(tenant),
            definitions_sha256=str(sha),
            definitions=tuple(dict(item) for item in definitions),
            actor=str(actor),
            reason=reason,
            approved_at=float(at),
            others=others,
        )

    async def record(
        self,
        tenant: str,
        definitions_sha256: str,
        definitions: list[dict[str, Any]],
        *,
        actor: str,
        reason: str,
        others: dict[str, list[dict[str, Any]]] | None = None,
    ) -> ApprovalRecord:
        """``definitions``: the tools, whose fingerprint is ``definitions_sha256``; ``others``:
        the other kinds approved with them (sealed in the same value, so no schema change)."""
        kept_others = others or {}
        sealed = self._crypto.seal_json(
            {"tools": definitions, "others": kept_others},
            _TABLE,
            tenant,
            definitions_sha256,
            "definitions",
        )
        sealed_reason = self._crypto.seal_text(reason, _TABLE, tenant, definitions_sha256, "reason")
        now = self._clock()
        rows = await self._db.write_one(
            "INSERT INTO definition_approvals (tenant, definitions_sha256, definitions_enc,"
            " actor, reason_enc, approved_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (tenant, definitions_sha256, sealed, actor, sealed_reason, now),
        )
        return ApprovalRecord(
            id=int(rows[0][0]),
            tenant=tenant,
            definitions_sha256=definitions_sha256,
            definitions=tuple(definitions),
            actor=actor,
            reason=reason,
            approved_at=now,
            others={kind: tuple(items) for kind, items in kept_others.items()},
        )

    async def history(self, tenant: str | None = None) -> list[ApprovalRecord]:
        """Every approval (of one tenant, or all), oldest first."""
        query, params = _SELECT, list[str]()
        if tenant is not None:
            query, params = _SELECT + " WHERE tenant = ?", [tenant]
        async with self._db.read() as tx:
            rows = await tx.all(query + " ORDER BY id", params)
        return [self._from_row(row) for row in rows]

    async def delete_tenant(self, tenant: str) -> int:
        rows = await self._db.write_one(
            "DELETE FROM definition_approvals WHERE tenant = ? RETURNING id", (tenant,)
        )
        return len(rows)
