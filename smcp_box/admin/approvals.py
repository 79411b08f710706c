"""Admin decisions about tool definitions and baselines: approving a pending change (or an
unpinned tenant's definitions), resetting a tool's baseline. One change at a time
(``Box.admin_lock``), written to the database before it takes effect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from smcp_box.box import Box
from smcp_box.errors import Conflict, NotFound
from smcp_box.seams import JsonObject, ModuleDescription
from smcp_box.store.approvals import ApprovalRecord
from smcp_box.vetting.definitions import (
    approved_view,
    definitions_sha256,
    item_names,
    others_view,
    review_sha256,
)


@dataclass(frozen=True)
class Approval:
    record: ApprovalRecord
    #: The fingerprint approved before (None: the tenant was unpinned and never approved).
    previous_sha256: str | None
    #: Tool names added, removed and changed by what was approved.
    changes: dict[str, list[str]]


@dataclass(frozen=True)
class _Candidate:
    sha256: str
    definitions: list[JsonObject]
    previous_sha256: str | None
    changes: dict[str, list[str]]
    manifest_path: Path | None
    #: The prompts and resources approved with the tools, by kind.
    others: dict[str, list[JsonObject]]

    @property
    def review_sha256(self) -> str:
        return review_sha256(self.sha256, self.others)


def _candidate(box: Box, name: str) -> _Candidate:
    """What ``approve`` would record: the tenant's pending change, or the current definitions
    of a served tenant that is unpinned and was never approved."""
    pending = box.tenants.approvals.pending(name)
    if pending is not None:
        return _Candidate(
            pending.current_sha256,
            list(pending.current),
            pending.approved_sha256,
            pending.changes(),
            pending.manifest_path,
            {kind: list(items) for kind, items in pending.current_others.items()},
        )
    tenant = box.tenants.get(name)
    report = tenant.vet_report if tenant is not None else None
    described = tenant.known_description if tenant is not None else None
    if tenant is None or report is None or report.pinned is not None or described is None:
        raise NotFound(
            f"tenant {name!r} has no changed tool definitions awaiting approval (its "
            "module's definitions are the approved ones)"
        )
    current = approved_view(described.tools or ())
    others = current_others(described)
    names = [str(tool.get("name")) for tool in current]
    for kind, items in others.items():
        names.extend(item_names(kind, items))
    return _Candidate(
        definitions_sha256(current),
        current,
        None,
        {"added": sorted(names), "removed": [], "changed": []},
        tenant.manifest.manifest_path,
        others,
    )


def current_others(described: ModuleDescription) -> dict[str, list[JsonObject]]:
    """The prompts and resources of a module's description, as an approval records them."""
    return others_view(described.prompts, described.resource_templates, described.resources)


async def approve(
    box: Box, name: str, *, actor: str, reason: str, expected_sha256: str | None = None
) -> Approval:
    """Record the tenant's pending definitions (or, for an unpinned tenant, its current ones)
    as approved and serve them (a tenant refused for them is loaded again). ``expected_sha256``:
    the definitions the admin reviewed; a module that changed again since is refused with
    Conflict, so nobody approves text they did not see."""
    async with box.admin_lock:
        candidate = _candidate(box, name)
        if expected_sha256 is not None and expected_sha256 != candidate.review_sha256:
            raise Conflict(
                f"tenant {name!r}: its module's definitions are now {candidate.review_sha256}, "
                f"not the {expected_sha256} you reviewed; look at the diff again "
                f"(smcp-box tenant diff {name})"
            )
        record = await box.store.record_approval(
            name,
            candidate.sha256,
            candidate.definitions,
            actor=actor,
            reason=reason,
            others=candidate.others,
        )
        box.tenants.approvals.add(record)
        if candidate.manifest_path is not None:
            # Served (or refused) anew against the approval: the same module keeps its warm
            # instances, and its vetting report now compares with the approved fingerprint.
            await asyncio.to_thread(box.tenants.load_tenant, candidate.manifest_path)
        else:
            tenant = box.tenants.get(name)
            if tenant is not None:
                tenant.hold_to_definitions(None, None, None)
        return Approval(record, candidate.previous_sha256, candidate.changes)


async def reset_baseline(box: Box, name: str, tool: str) -> bool:
    """Forget ``tool``'s baseline (it learns again from its next calls) and unblock it."""
    async with box.admin_lock:
        known = box.tenants.baselines.reset(name, tool)
        deleted = await box.store.delete_baselines(name, tool)
        return known or deleted > 0
