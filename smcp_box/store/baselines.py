"""Per-tenant, per-tool behaviour baselines (``tenancy/baselines.py`` keeps them in memory):
persisted so that a restart does not start every profile from nothing.

A profile is figures only (counts, means, variances) and the ``blocked`` flag of ``baseline =
"block"``; nothing in it is secret, so it is stored as plain JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .db import Database


@dataclass(frozen=True)
class BaselineRow:
    tenant: str
    tool: str
    #: The profile as :meth:`smcp_box.vetting.baseline.ToolProfile.to_json` writes it.
    profile: dict[str, Any]
    blocked: bool
    updated_at: float = 0.0


class Baselines:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def save_many(self, rows: Sequence[BaselineRow]) -> None:
        """Insert or replace ``rows`` in one transaction."""
        if not rows:
            return
        now = self._clock()
        async with self._db.write() as tx:
            for row in rows:
                await tx.run(
                    "INSERT INTO tool_baselines (tenant, tool, profile, blocked, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, tool) DO UPDATE SET"
                    " profile = excluded.profile, blocked = excluded.blocked,"
                    " updated_at = excluded.updated_at",
                    (
                        row.tenant,
                        row.tool,
                        json.dumps(row.profile, separators=(",", ":"), sort_keys=True),
                        int(row.blocked),
                        now,
                    ),
                )

    async def all(self) -> list[BaselineRow]:
        async with self._db.read() as tx:
            rows = await tx.all(
                "SELECT tenant, tool, profile, blocked, updated_at FROM tool_baselines"
                " ORDER BY tenant, tool"
            )
        return [
            BaselineRow(str(t), str(tool), dict(json.loads(p)), bool(b), float(u))
            for t, tool, p, b, u in rows
        ]

    async def delete(self, tenant: str, tool: str | None = None) -> int:
        """Drop one tool's baseline, or (``tool=None``) all of a tenant's."""
        if tool is None:
            rows = await self._db.write_one(
                "DELETE FROM tool_baselines WHERE tenant = ? RETURNING tool", (tenant,)
            )
        else:
            rows = await self._db.write_one(
                "DELETE FROM tool_baselines WHERE tenant = ? AND tool = ? RETURNING tool",
                (tenant, tool),
            )
        return len(rows)
