"""Admin routes for approvals of changed tool definitions and for behaviour baselines.

``GET /v1/tenants/NAME/definitions``: the pending change (with its diff), the approval in force
and the history; ``POST /v1/tenants/NAME/approve`` ``{"reason", "definitions_sha256"?}``;
``GET /v1/tenants/NAME/baselines``; ``POST /v1/tenants/NAME/baselines/TOOL/reset``.
"""

from __future__ import annotations

from quart import Blueprint, Response

from smcp_box.admin import approvals
from smcp_box.admin.context import AdminContext, body_object, json_response
from smcp_box.config import BASELINE_MODES
from smcp_box.errors import BadRequest, NotFound
from smcp_box.seams import JsonObject
from smcp_box.store.approvals import ApprovalRecord
from smcp_box.store.changes import ADMIN_APPROVALS, ADMIN_BASELINES, TOPIC_ADMIN
from smcp_box.tenancy.approvals import strictest
from smcp_box.vetting.definitions import (
    definitions_diff,
    definitions_sha256,
    item_names,
    others_diff,
    review_sha256,
)

#: Longest approval reason kept: a sentence or a ticket reference, not a document.
MAX_REASON_CHARS = 2000


def approval_json(record: ApprovalRecord) -> JsonObject:
    return {
        "definitions_sha256": record.definitions_sha256,
        "actor": record.actor,
        "reason": record.reason,
        "approved_at": record.approved_at,
        "tools": [str(tool.get("name")) for tool in record.definitions],
        # Prompts and resources approved with the tools ("prompt:NAME", ...); None: the
        # approval predates their coverage.
        "others": None
        if record.others is None
        else sorted(
            name for kind, items in record.others.items() for name in item_names(kind, items)
        ),
    }


def definitions_json(ctx: AdminContext, name: str) -> JsonObject | None:
    """The tenant's pending change (None: nothing pending), for ``tenant show`` and the TUI."""
    pending = ctx.box.tenants.approvals.pending(name)
    return pending.to_json() if pending is not None else None


def unapproved_json(ctx: AdminContext, name: str) -> JsonObject | None:
    """A served tenant that is unpinned and never approved: its definitions, which ``approve``
    would record (as a diff from nothing). None for any other tenant."""
    tenant = ctx.box.tenants.get(name)
    report = tenant.vet_report if tenant is not None else None
    described = tenant.known_description if tenant is not None else None
    if report is None or report.pinned is not None or described is None:
        return None
    tools = described.tools or ()
    others = approvals.current_others(described)
    label = f"module {report.fingerprint[:12]}"
    return {
        "current_sha256": definitions_sha256(tools),
        "review_sha256": review_sha256(definitions_sha256(tools), others),
        "diff": definitions_diff(None, tools, current_label=label)
        + others_diff(None, others, current_label="module"),
    }


def baselines_json(ctx: AdminContext, name: str) -> JsonObject:
    tenant = ctx.box.tenants.get(name)
    vetting = ctx.box.settings.vetting
    mode = strictest(BASELINE_MODES, vetting.baseline, tenant.manifest.baseline if tenant else None)
    return {
        "tenant": name,
        "mode": mode,
        "warmup_calls": ctx.box.tenants.baselines.rule.warmup,
        "tools": ctx.box.tenants.baselines.tools_json(name),
    }


def approval_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_approvals", __name__, url_prefix="/v1/tenants")
    box = ctx.box

    def known(name: str) -> None:
        if box.tenants.get(name) is None and box.tenants.approvals.pending(name) is None:
            raise NotFound(f"no tenant named {name!r} (list them: smcp-box tenant list)")

    @bp.get("/<name>/definitions")
    async def definitions(name: str) -> Response:
        known(name)
        history = await box.store.approvals(name)
        return json_response(
            {
                "tenant": name,
                "pending": definitions_json(ctx, name),
                "approved": approval_json(history[-1]) if history else None,
                "history": [approval_json(record) for record in history],
                "unapproved": unapproved_json(ctx, name),
            }
        )

    @bp.post("/<name>/approve")
    async def approve(name: str) -> Response:
        body = await body_object()
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise BadRequest(
                "send {'reason': <why these definitions are acceptable>}: an approval needs a "
                "reason"
            )
        if len(reason) > MAX_REASON_CHARS:
            raise BadRequest(f"the reason may be at most {MAX_REASON_CHARS} characters")
        expected = body.get("definitions_sha256")
        if expected is not None and not isinstance(expected, str):
            raise BadRequest("'definitions_sha256' is the fingerprint you reviewed: a string")
        ctx.begin("admin.tenant.approve", name, reason=reason.strip())
        approval = await approvals.approve(
            box, name, actor=ctx.actor(), reason=reason.strip(), expected_sha256=expected
        )
        record = approval.record
        await ctx.announce(TOPIC_ADMIN, ADMIN_APPROVALS)
        await ctx.audit(
            definitions_sha256=record.definitions_sha256,
            previous_sha256=approval.previous_sha256,
            changes=approval.changes,
        )
        return json_response({"tenant": name, "approved": approval_json(record)})

    @bp.get("/<name>/baselines")
    async def baselines(name: str) -> Response:
        known(name)
        return json_response(baselines_json(ctx, name))

    @bp.post("/<name>/baselines/<tool>/reset")
    async def reset(name: str, tool: str) -> Response:
        ctx.begin("admin.tenant.baseline_reset", name, tool=tool)
        if not await approvals.reset_baseline(box, name, tool):
            raise NotFound(f"tenant {name!r} has no baseline for a tool {tool!r}")
        await ctx.announce(TOPIC_ADMIN, ADMIN_BASELINES)
        await ctx.audit()
        return json_response({"tenant": name, "tool": tool, "reset": True})

    return bp
