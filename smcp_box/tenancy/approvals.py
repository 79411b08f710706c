"""Which definitions a tenant is held to, and what happens when its module's differ.

Definitions are its tools, and beside them its prompts, resource templates and (when listed
without state) static resources: the *others*. A ``tools_sha256`` pin covers the tools alone;
the others are held to what the latest approval recorded (an approval recorded from a matching
pin records the module's others of that moment), and an approval from before they were covered
holds the tools only.

The approved definitions of a tenant are those of its latest approval in the database
(``smcp-box tenant approve``), or, when its tenant.toml pins a ``tools_sha256`` the database has
no approval for (a pre-approved tenant as shipped), that pin. A module whose definitions match
is served as it is; the first time a pin is seen to match, its definitions are recorded as an
approval by ``tenant.toml`` so that they can be served later if the module changes.

A module whose definitions differ is a *pending change*. Under ``[vetting]
on_changed_definitions = "serve_approved"`` (the default) the tenant keeps serving the approved
definitions (``tools/list`` answers them, ``tools/call`` of any other tool is refused); under
``"refuse"``, or when only a pin is known (its text was never seen), the tenant is not served.
Either way the change is kept here for ``tenant diff`` and ``tenant approve``, and alerted once.

The registry judges from worker threads and the admin API reads on the loop: one lock guards
all state. Writes to the database are the caller's (:mod:`smcp_box.tenancy.vetting_sync`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from smcp_box.config import CHANGED_DEFINITIONS_MODES
from smcp_box.errors import ModuleRejected
from smcp_box.seams import JsonObject
from smcp_box.store.approvals import ApprovalRecord
from smcp_box.tenancy.manifest import TenantManifest
from smcp_box.vetting.definitions import (
    Others,
    approved_view,
    definitions_diff,
    definitions_sha256,
    item_names,
    other_view,
    others_diff,
    review_sha256,
)

#: Approved or current others, each kind in its canonical order (``other_view``).
OthersView = Mapping[str, tuple[JsonObject, ...]]


def canonical_others(others: Others) -> dict[str, tuple[JsonObject, ...]]:
    return {kind: tuple(other_view(kind, items)) for kind, items in others.items()}


#: The actor of an approval recorded because tenant.toml's pin matched the module.
PIN_ACTOR: Final = "tenant.toml"


def strictest(modes: Sequence[str], *choices: str | None) -> str:
    """The strictest of ``choices`` (None: no say) in ``modes``, ordered lenient to strict."""
    return max((c for c in choices if c is not None), key=modes.index, default=modes[0])


@dataclass(frozen=True)
class Approved:
    sha256: str
    definitions: tuple[JsonObject, ...]
    actor: str
    reason: str
    approved_at: float
    #: The approved others (None: recorded before they were covered; not held).
    others: OthersView | None = None


@dataclass(frozen=True)
class PendingChange:
    """A module whose definitions (tools, or others) differ from the approved ones."""

    tenant: str
    current_sha256: str
    current: tuple[JsonObject, ...]
    #: The approved fingerprint (the pin, or the latest approval's).
    approved_sha256: str
    #: The approved definitions; None when only a pin is known.
    approved: tuple[JsonObject, ...] | None
    #: "serve_approved": the tenant serves ``approved``; "refuse": it is not served.
    action: str
    manifest_path: Path | None
    detected_at: float
    #: The module's others, and the approved ones (None: not held, only tools are).
    current_others: OthersView = field(default_factory=dict)
    approved_others: OthersView | None = None

    @property
    def review_sha256(self) -> str:
        """What approving this change approves (the tools fingerprint for a tools-only module)."""
        return review_sha256(self.current_sha256, self.current_others)

    def changes(self) -> dict[str, list[str]]:
        """Names added, removed and changed (changed: same name, other definition): tools by
        their name, the others as "prompt:NAME", "template:URI_TEMPLATE", "resource:URI"."""
        current: dict[str, Mapping[str, object]] = {str(t.get("name")): t for t in self.current}
        before: dict[str, Mapping[str, object]] = {
            str(t.get("name")): t for t in self.approved or ()
        }
        known_before = self.approved is not None
        if self.approved_others is not None:
            for kind in set(self.current_others) | set(self.approved_others):
                current |= item_names(kind, self.current_others.get(kind, ()))
                before |= item_names(kind, self.approved_others.get(kind, ()))
        return {
            "added": sorted(set(current) - set(before)),
            "removed": sorted(set(before) - set(current)) if known_before else [],
            "changed": sorted(
                name for name in set(current) & set(before) if current[name] != before[name]
            ),
        }

    def diff(self) -> str:
        approved_label = f"approved {self.approved_sha256[:12]}"
        current_label = f"module {self.current_sha256[:12]}"
        tools = ""
        if self.approved is None or self.current_sha256 != self.approved_sha256:
            tools = definitions_diff(
                self.approved,
                self.current,
                approved_label=approved_label,
                current_label=current_label,
            )
        if self.approved_others is None:
            return tools
        return tools + others_diff(
            self.approved_others,
            self.current_others,
            approved_label="approved",
            current_label="module",
        )

    def summary(self) -> str:
        if self.approved is None:
            return "the box knows only the pin, not the pinned text"
        parts = [f"{what} {', '.join(names)}" for what, names in self.changes().items() if names]
        return "; ".join(parts) or "same tools, a definition changed"

    def to_json(self) -> JsonObject:
        return {
            "tenant": self.tenant,
            "action": self.action,
            "approved_sha256": self.approved_sha256,
            "current_sha256": self.current_sha256,
            "review_sha256": self.review_sha256,
            "detected_at": self.detected_at,
            **self.changes(),
            "diff": self.diff(),
        }


@dataclass(frozen=True)
class DefinitionsVerdict:
    #: The tool definitions the tenant serves instead of its module's (None: the module's own).
    served: tuple[JsonObject, ...] | None
    #: The approved fingerprint the module was held to (None: unpinned and never approved).
    approved_sha256: str | None
    pending: PendingChange | None
    #: The others served instead of the module's (None: the module's own).
    served_others: OthersView | None = None


@dataclass
class _Unrecorded:
    """A pin seen to match, whose definitions are not in the database yet."""

    tenant: str
    sha256: str
    definitions: list[JsonObject] = field(default_factory=list)
    others: OthersView = field(default_factory=dict)


class DefinitionApprovals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Approved] = {}
        #: Every fingerprint ever approved per tenant (a pin among them is not newer).
        self._known: dict[str, set[str]] = {}
        self._pending: dict[str, PendingChange] = {}
        self._unrecorded: dict[str, _Unrecorded] = {}
        #: (tenant, fingerprint) of the changes already alerted: one alert per change.
        self._alerted: set[tuple[str, str]] = set()
        self._unalerted: list[PendingChange] = []

    # --- the database's approvals -------------------------------------------------------

    def replace_all(self, records: Iterable[ApprovalRecord]) -> None:
        """Load every approval (oldest first, as the store lists them)."""
        with self._lock:
            self._latest.clear()
            self._known.clear()
            for record in records:
                self._add(record)

    def add(self, record: ApprovalRecord) -> None:
        """An approval just written to the database; the tenant's change (if it was this one)
        is no longer pending."""
        with self._lock:
            self._add(record)
            pending = self._pending.get(record.tenant)
            approved = review_sha256(record.definitions_sha256, record.others or {})
            if pending is not None and pending.review_sha256 == approved:
                del self._pending[record.tenant]

    def _add(self, record: ApprovalRecord) -> None:
        self._latest[record.tenant] = Approved(
            record.definitions_sha256,
            tuple(record.definitions),
            record.actor,
            record.reason,
            record.approved_at,
            None if record.others is None else canonical_others(record.others),
        )
        self._known.setdefault(record.tenant, set()).add(record.definitions_sha256)

    def latest(self, tenant: str) -> Approved | None:
        with self._lock:
            return self._latest.get(tenant)

    # --- judging a module at load -------------------------------------------------------

    def judge(
        self,
        manifest: TenantManifest,
        tools: Sequence[JsonObject],
        mode: str,
        now: float,
        others: Others | None = None,
    ) -> DefinitionsVerdict:
        """What tenant ``manifest`` serves given its module's ``tools`` and ``others``; raises
        ModuleRejected when the tenant must not be served (``mode`` "refuse", or nothing
        approved to serve)."""
        if mode not in CHANGED_DEFINITIONS_MODES:
            raise ValueError(f"unknown on_changed_definitions mode {mode!r}")
        name = manifest.name
        current = tuple(approved_view(tools))
        sha = definitions_sha256(current)
        current_others = canonical_others(others or {})
        pin = manifest.tools_sha256
        with self._lock:
            latest = self._latest.get(name)
            known = self._known.get(name, set())
            approved_sha: str | None
            approved: tuple[JsonObject, ...] | None
            approved_others: OthersView | None = None
            if latest is not None and (pin is None or pin in known):
                approved_sha, approved = latest.sha256, latest.definitions
                approved_others = latest.others
            else:
                approved_sha, approved = pin, None
            others_match = approved_others is None or dict(approved_others) == current_others
            if approved_sha is None or (sha == approved_sha and others_match):
                self._pending.pop(name, None)
                if pin is not None and sha == pin and pin not in known:
                    # What the pin does not cover is approved as first seen with it.
                    self._unrecorded[name] = _Unrecorded(name, sha, list(current), current_others)
                    self._add(
                        ApprovalRecord(
                            0,
                            name,
                            sha,
                            current,
                            PIN_ACTOR,
                            _PIN_REASON,
                            now,
                            others=dict(current_others),
                        )
                    )
                return DefinitionsVerdict(None, approved_sha, None)
            serve = mode == "serve_approved" and approved is not None
            action = "serve_approved" if serve else "refuse"
            previous = self._pending.get(name)
            pending = PendingChange(
                tenant=name,
                current_sha256=sha,
                current=current,
                approved_sha256=approved_sha,
                approved=approved,
                action=action,
                manifest_path=manifest.manifest_path,
                detected_at=now,
                current_others=current_others,
                approved_others=approved_others,
            )
            if previous is not None and previous.review_sha256 == pending.review_sha256:
                pending = replace(pending, detected_at=previous.detected_at)
            self._pending[name] = pending
            if (name, pending.review_sha256) not in self._alerted:
                self._alerted.add((name, pending.review_sha256))
                self._unalerted.append(pending)
        if action == "refuse":
            raise ModuleRejected(_refusal(pending, mode), data={"tenant": name})
        return DefinitionsVerdict(approved, approved_sha, pending, approved_others)

    # --- what the admin API and the box's bookkeeping read --------------------------------

    def pending(self, tenant: str) -> PendingChange | None:
        with self._lock:
            return self._pending.get(tenant)

    def pending_all(self) -> dict[str, PendingChange]:
        with self._lock:
            return dict(self._pending)

    def forget(self, tenant: str) -> None:
        """Drop the tenant's pending change (removed, or reloaded and now approved)."""
        with self._lock:
            self._pending.pop(tenant, None)

    def drop_tenant(self, tenant: str) -> None:
        """Forget everything about ``tenant`` (removed with its data)."""
        with self._lock:
            self._latest.pop(tenant, None)
            self._known.pop(tenant, None)
            self._pending.pop(tenant, None)
            self._unrecorded.pop(tenant, None)
            self._alerted = {key for key in self._alerted if key[0] != tenant}

    def take_unrecorded(self) -> list[tuple[str, str, list[JsonObject], OthersView]]:
        """Pins seen to match whose definitions the database does not hold yet."""
        with self._lock:
            taken = [
                (u.tenant, u.sha256, u.definitions, u.others) for u in self._unrecorded.values()
            ]
            self._unrecorded.clear()
        return taken

    def take_unalerted(self) -> list[PendingChange]:
        with self._lock:
            taken, self._unalerted = self._unalerted, []
        return taken


_PIN_REASON: Final = "tools_sha256 in tenant.toml matched the module"


def _refusal(pending: PendingChange, mode: str) -> str:
    since = "approved" if pending.approved is not None else "pinned"
    why = (
        '[vetting] on_changed_definitions = "refuse"'
        if mode == "refuse"
        else "the box has only the pin, not the pinned definitions, to serve instead"
    )
    return (
        f"tenant {pending.tenant!r}: its definitions changed since they were {since} "
        f"({pending.summary()}): approved tools_sha256 {pending.approved_sha256}, the module's "
        f"now {pending.current_sha256} (to approve: {pending.review_sha256}). It is not served "
        f"({why}). Review the change with "
        f"`smcp-box tenant diff {pending.tenant}` and approve it with `smcp-box tenant approve "
        f"{pending.tenant} --reason TEXT`, or set tools_sha256 in its tenant.toml."
    )


__all__ = [
    "PIN_ACTOR",
    "Approved",
    "DefinitionApprovals",
    "DefinitionsVerdict",
    "PendingChange",
    "canonical_others",
    "strictest",
]
