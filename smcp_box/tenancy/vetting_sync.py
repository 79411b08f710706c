"""The database side of approvals and baselines: loading them at start, writing back what the
registry learned, and alerting pending changes once.

The registry judges modules synchronously (often in a worker thread) and tenants learn their
baselines on every call; neither can wait on the store. They note what must be written and the
box calls :func:`settle` after each load and every few seconds, and :func:`flush_baselines`
every :data:`~smcp_box.tenancy.baselines.FLUSH_INTERVAL_S` and at stop.
"""

from __future__ import annotations

import logging

from smcp_box.seams import Auditor
from smcp_box.store.store import Store
from smcp_box.tenancy.approvals import PIN_ACTOR
from smcp_box.tenancy.registry import TenantRegistry

logger = logging.getLogger("smcp_box.vetting")

#: What an approval recorded from a matching tenant.toml pin says as its reason.
PIN_REASON = "tools_sha256 in tenant.toml matched the module's definitions"


async def load_vetting_state(store: Store, registry: TenantRegistry) -> None:
    """Before the first load: every approval and baseline from the database."""
    registry.approvals.replace_all(await store.approvals())
    registry.baselines.replace_all(await store.baselines())


async def settle(store: Store, registry: TenantRegistry, auditor: Auditor) -> None:
    """Record the definitions of pins seen to match (so that they can be served if the
    module changes), and audit each newly pending change once."""
    for tenant, sha, definitions, others in registry.approvals.take_unrecorded():
        await store.record_approval(
            tenant,
            sha,
            definitions,
            actor=PIN_ACTOR,
            reason=PIN_REASON,
            others={kind: list(items) for kind, items in others.items()},
        )
    for pending in registry.approvals.take_unalerted():
        changes = pending.changes()
        logger.warning(
            "tenant %s: its definitions changed (%s); %s until an admin approves: "
            "smcp-box tenant diff %s, then smcp-box tenant approve %s --reason TEXT",
            pending.tenant,
            pending.summary(),
            "the approved definitions are served"
            if pending.action == "serve_approved"
            else "it is not served",
            pending.tenant,
            pending.tenant,
        )
        await auditor.record(
            "tenant.definitions_changed",
            tenant=pending.tenant,
            actor="system",
            source_ip=None,
            outcome="alert",
            detail={
                "action": pending.action,
                "approved_sha256": pending.approved_sha256,
                "current_sha256": pending.current_sha256,
                "review_sha256": pending.review_sha256,
                **changes,
            },
        )


async def flush_baselines(store: Store, registry: TenantRegistry) -> int:
    """Write the baselines changed since the last flush; how many rows."""
    rows = registry.baselines.take_dirty()
    await store.save_baselines(rows)
    return len(rows)


__all__ = ["PIN_REASON", "flush_baselines", "load_vetting_state", "settle"]
