"""A tenant's details as the Tenants screen shows them (``enter``): the admin API's tenant, its
catalog entry (publisher, vetting status and findings, tools with their annotations, endpoint,
auth modes: what ``smcp-box catalog`` prints) and the names of its secrets."""

from __future__ import annotations

from typing import Any

from smcp_box.tui.api import AdminApi
from smcp_box.tui.format import fmt_bytes, fmt_count


async def tenant_details(api: AdminApi, name: str) -> dict[str, Any]:
    tenant = blob_details(vetting_details(await api.tenant(name)))
    entries = (await api.catalog())["tenants"]
    entry = next((e for e in entries if e["name"] == name), None)
    stored = (await api.secrets(name))["secrets"]
    # What the tenant is and who vouches for it first; the figures and limits after.
    first = {key: tenant[key] for key in ("name", "description", "enabled", "url")}
    catalog = catalog_details(entry) if entry is not None else {}
    secrets = {"secrets set": [s["name"] for s in stored if s["tenant"] == name]}
    shown = first | catalog | secrets
    return shown | {key: value for key, value in tenant.items() if key not in shown}


def catalog_details(entry: dict[str, Any]) -> dict[str, Any]:
    """The catalog entry as rows of the details dialog (nested dicts indent)."""
    vetting = entry["vetting"]
    findings = {
        f"{f['severity'].upper()} {f['tool']}.{f['field']}": f"[{f['rule']}] {f['excerpt']}"
        for f in vetting["findings"]
    }
    tools = entry["tools"]
    return {
        "kind": entry["kind"],
        "auth modes": entry["auth"],
        "publisher": entry["publisher"] or "none (unsigned)",
        "vetting": {
            "tools": vetting["status"],
            "signature": vetting["signature"],
            "tools sha256": vetting["tools_sha256"],
            "findings": findings or "none",
        },
        "tools": "(the module could not list them now)"
        if tools is None
        else ({tool["name"]: _tool_line(tool) for tool in tools} or "none"),
    }


def _tool_line(tool: dict[str, Any]) -> str:
    parts = [tool["title"]] if tool.get("title") else []
    annotations = tool.get("annotations") or {}
    hints = [f"{key}={_hint(value)}" for key, value in annotations.items()]
    if hints:
        parts.append(", ".join(hints))
    parts.append(tool.get("description") or "(no description)")
    return " · ".join(parts)


def _hint(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def vetting_details(details: dict[str, Any]) -> dict[str, Any]:
    """The tenant's details with its pending change and baselines as short lines: the full
    diff is for the approve dialog ("a")."""
    shown = dict(details)
    pending = shown.pop("definitions", None)
    if pending is not None:
        shown["definitions"] = {
            "state": "CHANGED, awaiting approval (press a on the tenant to review and approve)",
            "served": "approved definitions"
            if pending["action"] == "serve_approved"
            else "nothing: refused",
            **{what: pending[what] for what in ("added", "removed", "changed") if pending[what]},
        }
    baselines = shown.pop("baselines", None)
    if baselines:
        shown["baselines"] = {tool["tool"]: baseline_line(tool) for tool in baselines}
    return shown


def baseline_line(tool: dict[str, Any]) -> str:
    state = "BLOCKED" if tool["blocked"] else "warming up" if tool["warming_up"] else "ok"
    mean = tool["mean"]
    return (
        f"{state}; {tool['calls']} calls, {tool['flags']} flagged; usual fuel "
        f"{fmt_count(int(mean['fuel']))}, {mean['wall_ms']:.1f} ms, reply "
        f"{int(mean['reply_bytes'])} B, kv {mean['kv_reads']:.1f}r/{mean['kv_writes']:.1f}w"
    )


def blob_details(details: dict[str, Any]) -> dict[str, Any]:
    """The tenant's blob usage against its quotas, as one group of the details dialog."""
    shown = dict(details)
    count, size = shown.pop("blobs", None), shown.pop("blob_bytes", None)
    quotas = shown.pop("blob_quotas", None)
    if count is None or size is None or quotas is None:
        return shown
    shown["blobs"] = {
        "stored": f"{count} of at most {fmt_count(quotas['blob_max_count'])}",
        "bytes": f"{fmt_bytes(size)} of at most {fmt_bytes(quotas['blob_max_total_bytes'])}",
        "largest allowed": fmt_bytes(quotas["blob_max_bytes"]),
        "see them": "press b on the tenant",
    }
    return shown
