"""``smcp-box tenant diff|approve|baselines|baseline-reset``: approvals of changed tool
definitions and behaviour baselines, through the admin API."""

from __future__ import annotations

import argparse
from typing import Any

from smcp_box.admin.cli_commands import add_admin_command, emit
from smcp_box.admin.client import AdminClient
from smcp_box.seams import JsonObject


def register_tenant_actions(actions: Any) -> None:
    """Add the actions to ``smcp-box tenant``'s subparsers."""
    diff = add_admin_command(
        actions,
        "diff",
        _diff,
        "show how a tenant's module's tool definitions differ from the approved ones",
    )
    diff.add_argument("name")
    approve = add_admin_command(
        actions,
        "approve",
        _approve,
        "approve a tenant's changed tool definitions (recorded with your reason); the box "
        "then serves them",
    )
    approve.add_argument("name")
    approve.add_argument("--reason", required=True, help="why the change is acceptable")
    approve.add_argument(
        "--sha256",
        default=None,
        help="the definitions fingerprint you reviewed (tenant diff prints it); refused if the "
        "module changed again since",
    )
    baselines = add_admin_command(
        actions, "baselines", _baselines, "show a tenant's per-tool behaviour baselines"
    )
    baselines.add_argument("name")
    reset = add_admin_command(
        actions,
        "baseline-reset",
        _baseline_reset,
        "forget a tool's behaviour baseline and unblock it (it learns again from its next calls)",
    )
    reset.add_argument("name")
    reset.add_argument("tool")


async def _diff(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.tenant_definitions(args.name)
    return emit(args, body, diff_text(body))


def diff_text(body: JsonObject) -> str:
    pending = body.get("pending")
    approved = body.get("approved")
    lines = []
    if approved is not None:
        lines.append(
            f"approved {approved['definitions_sha256']} by {approved['actor']}: "
            f"{approved['reason']}"
        )
    unapproved = body.get("unapproved")
    if pending is None and unapproved is not None:
        lines.append(
            f"tenant {body['tenant']}: definitions NOT PINNED and never approved "
            f"({unapproved['current_sha256']}); approving them holds later changes for review"
        )
        lines.append(unapproved["diff"].rstrip("\n"))
        lines.append(
            f"approve: smcp-box tenant approve {body['tenant']} --sha256 "
            f"{unapproved['review_sha256']} --reason TEXT"
        )
        return "\n".join(lines)
    if pending is None:
        lines.append(f"tenant {body['tenant']}: no change awaiting approval")
        return "\n".join(lines)
    action = (
        "serving the approved definitions"
        if pending["action"] == "serve_approved"
        else "NOT SERVED"
    )
    lines.append(
        f"tenant {body['tenant']}: definitions CHANGED ({action}); module tools now "
        f"{pending['current_sha256']}"
    )
    for what in ("added", "removed", "changed"):
        if pending[what]:
            lines.append(f"  {what}: {', '.join(pending[what])}")
    lines.append(pending["diff"].rstrip("\n"))
    lines.append(
        f"approve: smcp-box tenant approve {body['tenant']} --sha256 "
        f"{pending['review_sha256']} --reason TEXT"
    )
    return "\n".join(lines)


async def _approve(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.approve_tenant(args.name, args.reason, args.sha256)
    approved = body["approved"]
    return emit(
        args,
        body,
        f"approved the tool definitions {approved['definitions_sha256']} of tenant "
        f"{body['tenant']} ({', '.join(approved['tools']) or 'no tools'}); they are served now",
    )


async def _baselines(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.tenant_baselines(args.name)
    return emit(args, body, baselines_text(body))


def baselines_text(body: JsonObject) -> str:
    head = f"tenant {body['tenant']}: baseline mode {body['mode']}"
    if not body["tools"]:
        return head + "; no tool called yet"
    lines = [head]
    for tool in body["tools"]:
        state = "BLOCKED" if tool["blocked"] else "warming up" if tool["warming_up"] else "ok"
        mean = tool["mean"]
        lines.append(
            f"  {tool['tool']}: {state}, {tool['calls']} calls, {tool['flags']} flagged; usual "
            f"fuel {mean['fuel']:.0f}, wall {mean['wall_ms']:.2f} ms, memory "
            f"{mean['memory_bytes']:.0f} B, kv {mean['kv_reads']:.1f} reads / "
            f"{mean['kv_writes']:.1f} writes, {mean['notifications']:.1f} notifications, reply "
            f"{mean['reply_bytes']:.0f} B"
        )
    return "\n".join(lines)


async def _baseline_reset(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.reset_baseline(args.name, args.tool)
    return emit(
        args,
        body,
        f"reset the baseline of {body['tenant']}/{body['tool']}: unblocked, learning anew",
    )
