"""Every tenant's tool baselines, in memory: judged and updated on each tools/call.

Profiles (:class:`~smcp_box.vetting.baseline.ToolProfile`) are loaded from the store at start
and written back by the box at most every :data:`FLUSH_INTERVAL_S` (only those that changed):
a restart loses at most that many seconds of learning, and a busy tool costs no write per call.

A call far outside its tool's baseline is *flagged*: counted (``/metrics``), and audited at most
once per :data:`AUDIT_INTERVAL_S` per tool (the row says how many flags it stands for). Under
``baseline = "block"`` the tool is also *blocked*: its later calls are refused until an admin
runs ``smcp-box tenant baseline-reset TENANT TOOL``, which also forgets its profile.

Only names of tools the module lists are profiled: a client cannot grow this table by calling
made-up tool names. Used on the event loop only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from smcp_box.seams import JsonObject
from smcp_box.store.baselines import BaselineRow
from smcp_box.vetting.baseline import BaselineRule, Deviation, ToolProfile

#: Longest a changed profile waits before the box writes it to the database.
FLUSH_INTERVAL_S: Final = 30.0
#: Shortest time between two audit rows of flags of one tool.
AUDIT_INTERVAL_S: Final = 60.0

_Key = tuple[str, str]


@dataclass(frozen=True)
class Flag:
    """One call flagged as far outside its tool's baseline."""

    tenant: str
    tool: str
    deviations: tuple[Deviation, ...]
    #: Whether this flag should be audited now (rate limit), and for how many flags.
    audit: bool
    flags_since_last_audit: int
    #: The tool is blocked from now on (``baseline = "block"``).
    blocked: bool


class TenantBaselines:
    def __init__(self, rule: BaselineRule | None = None) -> None:
        self.rule = rule or BaselineRule()
        self._profiles: dict[_Key, ToolProfile] = {}
        self._blocked: set[_Key] = set()
        self._dirty: set[_Key] = set()
        #: Flags since the box started, for the /metrics counter.
        self._flag_counts: dict[_Key, int] = {}
        self._last_audit: dict[_Key, float] = {}
        self._unaudited: dict[_Key, int] = {}

    def replace_all(self, rows: Iterable[BaselineRow]) -> None:
        self._profiles = {(r.tenant, r.tool): ToolProfile.from_json(r.profile) for r in rows}
        self._blocked = {(r.tenant, r.tool) for r in rows if r.blocked}
        self._dirty.clear()

    def is_blocked(self, tenant: str, tool: str) -> bool:
        return (tenant, tool) in self._blocked

    def observe(
        self, tenant: str, tool: str, figures: Mapping[str, float], now: float, *, block: bool
    ) -> Flag | None:
        """Judge one finished call of ``tool`` and learn from it; the flag when it is far off."""
        key = (tenant, tool)
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = ToolProfile()
        self._dirty.add(key)
        deviations = profile.deviations(figures, self.rule)
        if not deviations:
            profile.learn(figures, self.rule)
            return None
        profile.flags += 1
        self._flag_counts[key] = self._flag_counts.get(key, 0) + 1
        self._unaudited[key] = self._unaudited.get(key, 0) + 1
        if block:
            self._blocked.add(key)
        audit = now - self._last_audit.get(key, float("-inf")) >= AUDIT_INTERVAL_S
        count = self._unaudited.pop(key) if audit else 0
        if audit:
            self._last_audit[key] = now
        return Flag(tenant, tool, tuple(deviations), audit, count, block)

    def reset(self, tenant: str, tool: str) -> bool:
        """Forget the tool's profile and unblock it; whether there was anything to forget."""
        key = (tenant, tool)
        known = key in self._profiles or key in self._blocked
        self._profiles.pop(key, None)
        self._blocked.discard(key)
        self._dirty.discard(key)
        self._unaudited.pop(key, None)
        return known

    def drop_tenant(self, tenant: str) -> None:
        for key in [k for k in self._profiles if k[0] == tenant]:
            self.reset(*key)

    def take_dirty(self) -> list[BaselineRow]:
        """The profiles changed since the last call, as rows to save."""
        rows = [
            BaselineRow(key[0], key[1], self._profiles[key].to_json(), key in self._blocked)
            for key in sorted(self._dirty)
            if key in self._profiles
        ]
        self._dirty.clear()
        return rows

    def tools_json(self, tenant: str) -> list[JsonObject]:
        """Per tool of ``tenant``: its profile, whether it is blocked, flags since start."""
        return [
            {
                "tool": tool,
                "blocked": (name, tool) in self._blocked,
                "warming_up": profile.calls < self.rule.warmup,
                "flags_since_start": self._flag_counts.get((name, tool), 0),
                **profile.to_json(),
            }
            for (name, tool), profile in sorted(self._profiles.items())
            if name == tenant
        ]

    def flag_counts(self) -> dict[_Key, int]:
        return dict(self._flag_counts)

    def blocked(self) -> list[_Key]:
        return sorted(self._blocked)


__all__ = ["AUDIT_INTERVAL_S", "FLUSH_INTERVAL_S", "Flag", "TenantBaselines"]
