"""A tenant's details as the Tenants screen shows them (``enter``): the admin API's tenant, its
catalog entry (publisher, vetting status and findings, tools with their annotations, endpoint,
auth modes: what ``smcp-box catalog`` prints) and the names of its secrets."""

from __future__ import annotations

from typing import Any

from smcp_box.tui.api import AdminApi


async def tenant_details(api: AdminApi, name: str) -> dict[str, Any]:
    tenant = await api.tenant(name)
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
