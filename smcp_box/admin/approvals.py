"""Admin decisions about tool definitions and baselines: approving a pending change, resetting
a tool's baseline. One change at a time (``Box.admin_lock``), written to the database before
it takes effect."""

from __future__ import annotations

import asyncio

from smcp_box.admin.errors import Conflict, NotFound
from smcp_box.box import Box
from smcp_box.store.approvals import ApprovalRecord
from smcp_box.tenancy.approvals import PendingChange


async def approve(
    box: Box, name: str, *, actor: str, reason: str, expected_sha256: str | None = None
) -> tuple[ApprovalRecord, PendingChange]:
    """Record the tenant's pending definitions as approved and serve them (a tenant refused
    for them is loaded again). ``expected_sha256``: the definitions the admin reviewed; a
    module that changed again since is refused with Conflict, so nobody approves unseen text."""
    async with box.admin_lock:
        pending = box.tenants.approvals.pending(name)
        if pending is None:
            raise NotFound(
                f"tenant {name!r} has no changed tool definitions awaiting approval (its "
                "module's definitions are the approved ones)"
            )
        if expected_sha256 is not None and expected_sha256 != pending.current_sha256:
            raise Conflict(
                f"tenant {name!r}: its module's definitions are now {pending.current_sha256}, "
                f"not the {expected_sha256} you reviewed; look at the diff again "
                f"(smcp-box tenant diff {name})"
            )
        record = await box.store.record_approval(
            name, pending.current_sha256, list(pending.current), actor=actor, reason=reason
        )
        box.tenants.approvals.add(record)
        if pending.manifest_path is not None:
            # Served (or refused) anew against the approval: the same module keeps its warm
            # instances, and its vetting report now compares with the approved fingerprint.
            await asyncio.to_thread(box.tenants.load_tenant, pending.manifest_path)
        else:
            tenant = box.tenants.get(name)
            if tenant is not None:
                tenant.hold_to_definitions(None, None)
        return record, pending


async def reset_baseline(box: Box, name: str, tool: str) -> bool:
    """Forget ``tool``'s baseline (it learns again from its next calls) and unblock it."""
    async with box.admin_lock:
        known = box.tenants.baselines.reset(name, tool)
        deleted = await box.store.delete_baselines(name, tool)
        return known or deleted > 0
