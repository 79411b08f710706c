"""Plain-text renderings of admin API answers for the CLI (``--json`` prints them raw)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from smcp_box.config import LIMITS
from smcp_box.seams import JsonObject


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [
        [("-" if c is None else str(c)) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def status_text(body: JsonObject) -> str:
    tenants = body["tenants"]
    lines = [
        f"smcp-box {body['version']} (pid {body['pid']}), up {int(body['uptime_s'])} s",
        f"MCP endpoint base: {body['mcp_base_url']}",
        f"tenants: {tenants['loaded']} loaded, {tenants['enabled']} enabled, "
        f"{tenants['failed']} failed; {body['open_sessions']} open sessions",
        f"sandbox ticker: {'ok' if body['sandbox']['ticker_alive'] else 'NOT RUNNING'}",
    ]
    for failed in body["failed"]:
        lines.append(f"  NOT LOADED {failed['folder']}: {failed['reason']}")
    for name, missing in body.get("missing_secrets", {}).items():
        lines.append(
            f"  MISSING SECRETS {name}: {', '.join(missing)} (smcp-box secret set {name} NAME)"
        )
    paths = body.get("paths", {})
    if paths:
        lines.append(f"state: {paths['state']}  (database {paths['database']})")
        lines.append(f"tenants folder: {paths['tenants']}")
    lines += fleet_lines(body)
    # The whole settings tree is for `--json` and `smcp-box config check`, not this summary.
    lines.append("settings: smcp-box status --json, or smcp-box config check")
    return "\n".join(lines)


def fleet_lines(body: JsonObject) -> list[str]:
    """The status's box, fleet and database part (absent from an older box's answer)."""
    if "fleet" not in body:
        return []
    this, db = body["box"], body["database"]
    lines = [
        f"box {this['box_id']} at {this['address']}" + (" DRAINING" if this["draining"] else "")
    ]
    health = f"{db['latency_ms']:.1f} ms" if db["reachable"] else f"UNREACHABLE: {db['error']}"
    lines.append(f"database: {db['backend']} {db['location']}, {health}")
    rows = [
        (
            ("* " if b["this_box"] else "  ") + b["box_id"],
            b["address"],
            b["status"],
            f"{b['beat_age_s']:.0f} s",
            b["sessions"],
        )
        for b in body["fleet"]
    ]
    if rows:
        lines.append(table(("BOX", "ADDRESS", "STATUS", "LAST BEAT", "SESSIONS"), rows))
    return lines


def drain_text(body: JsonObject) -> str:
    if body["draining"]:
        verb = "is draining" if body["changed"] else "was already draining"
        return (
            f"box {body['box_id']} {verb}: /readyz answers 503, new sessions are refused, "
            f"{body['open_sessions']} open session(s) carry on (smcp-box drain --undo to serve)"
        )
    verb = "serves again" if body["changed"] else "was not draining"
    return f"box {body['box_id']} {verb}: it takes new sessions and /readyz answers 200"


def tenants_text(body: JsonObject) -> str:
    rows = [
        (
            t["name"],
            "enabled" if t["enabled"] else "disabled",
            "public" if t["auth"] == "none" else t["auth"],
            t["calls"],
            t["url"],
        )
        for t in body["tenants"]
    ]
    # A folder that failed to load is a row too, so the admin sees it beside the others.
    rows += [(failed["name"], "failed", "-", "-", failed["folder"]) for failed in body["failed"]]
    text = table(("NAME", "STATE", "AUTH", "CALLS", "URL"), rows) if rows else "no tenants loaded"
    for failed in body["failed"]:
        text += f"\nNOT LOADED {failed['name']} ({failed['folder']}): {failed['reason']}"
    for t in body["tenants"]:
        if t.get("missing_secrets"):
            text += (
                f"\nMISSING SECRETS {t['name']}: {', '.join(t['missing_secrets'])} "
                f"(smcp-box secret set {t['name']} NAME)"
            )
    for name in body.get("definitions_pending", []):
        text += f"\nDEFINITIONS CHANGED {name}: awaiting approval (smcp-box tenant diff {name})"
    for name in body.get("removed", []):
        text += f"\nREMOVED {name} (its folder is kept; smcp-box tenant reload {name} serves it)"
    return text


def rescan_text(body: JsonObject) -> str:
    loaded = body["loaded"]
    lines = [
        f"picked up {len(loaded)} new tenant(s) from {body['tenants_dir']}"
        + (f": {', '.join(loaded)}" if loaded else "")
    ]
    for failed in body["failed"]:
        lines.append(f"NOT LOADED {failed['name']} ({failed['folder']}): {failed['reason']}")
    lines.append(f"serving: {', '.join(body['serving']) or 'no tenants'}")
    return "\n".join(lines)


def tenant_text(t: JsonObject) -> str:
    limits = ", ".join(f"{k}={v}" for k, v in t["limits"].items())
    overrides = ", ".join(f"{k}={v}" for k, v in t.get("admin_limit_overrides", {}).items())
    lines = [
        f"tenant {t['name']}: {'enabled' if t['enabled'] else 'DISABLED'}, auth {t['auth']}",
        f"  {t['description']}" if t["description"] else "",
        f"  url:      {t['url']}",
        *(f"  host url: {url}" for url in t.get("host_urls", [])),
        f"  folder:   {t['folder']}"
        + (" (added through the admin API)" if t.get("origin") == "admin" else ""),
        f"  module:   {t['module']['file']} sha256 {t['module']['sha256']}",
        f"  limits:   {limits}",
        f"  admin overrides: {overrides or 'none'}",
        f"  calls {t['calls']}, errors {t['errors']}, fuel used {t['fuel_used']}",
    ]
    if t.get("publisher"):
        lines.append(f"  publisher: {t['publisher']}")
    if t.get("secrets"):
        missing = t.get("missing_secrets", [])
        lines.append(
            f"  secrets:  {', '.join(t['secrets'])}"
            + (f"  MISSING: {', '.join(missing)}" if missing else " (all set)")
        )
    if t.get("definitions_pending"):
        lines.append(
            f"  TOOL DEFINITIONS CHANGED: the approved ones are served (smcp-box tenant diff "
            f"{t['name']}; smcp-box tenant approve {t['name']} --reason TEXT)"
        )
    if t.get("blocked_tools"):
        lines.append(
            f"  BLOCKED by their baseline: {', '.join(t['blocked_tools'])} (smcp-box tenant "
            f"baseline-reset {t['name']} TOOL)"
        )
    if "open_sessions" in t:
        lines.append(
            f"  open sessions {t['open_sessions']}, active keys {t['active_keys']}, "
            f"kv {t['kv_keys']} keys / {t['kv_bytes']} bytes"
        )
    return "\n".join(line for line in lines if line)


def keys_text(body: JsonObject) -> str:
    rows = [
        (
            k["key_id"],
            k["tenant"],
            "revoked" if k["revoked"] else "active",
            when(k["created_at"]),
            when(k["last_used"]),
            k["label"],
        )
        for k in body["keys"]
    ]
    headers = ("KEY ID", "TENANT", "STATE", "CREATED", "LAST USED", "LABEL")
    return table(headers, rows) if rows else "no API keys"


def users_text(body: JsonObject) -> str:
    """One row per grant (a user without grants gets one row of its own)."""
    rows: list[tuple[object, ...]] = []
    for user in body["users"]:
        state = "disabled" if user["disabled"] else "active"
        grants = user["grants"] or {None: []}
        for tenant, scopes in grants.items():
            rows.append(
                (user["username"], state, when(user["created_at"]), tenant, ",".join(scopes))
            )
    headers = ("USER", "STATE", "CREATED", "TENANT", "SCOPES")
    return table(headers, rows) if rows else "no users (add one: smcp-box user add NAME)"


def oauth_clients_text(body: JsonObject) -> str:
    rows = [
        (
            c["client_id"],
            c["kind"],
            when(c["created_at"]),
            c["client_name"],
            " ".join(c["redirect_uris"]),
        )
        for c in body["clients"]
    ]
    headers = ("CLIENT ID", "KIND", "CREATED", "NAME", "REDIRECT URIS")
    return table(headers, rows) if rows else "no OAuth clients (add one: smcp-box oauth client add)"


def oauth_tokens_text(body: JsonObject) -> str:
    rows = [
        (
            t["client_name"] or t["client_id"],
            t["tenant"],
            ",".join(t["scopes"]),
            when(t["created_at"]),
            when(t["expires_at"]),
        )
        for t in body["tokens"]
    ]
    headers = ("CLIENT", "TENANT", "SCOPES", "CREATED", "EXPIRES")
    return table(headers, rows) if rows else f"no live refresh tokens for {body['username']}"


def revoked_access_text(body: JsonObject) -> str:
    """What went with a grant or a user: "N refresh-token families and M consents"."""
    return (
        f"{body['refresh_families_revoked']} refresh-token famil"
        f"{'y' if body['refresh_families_revoked'] == 1 else 'ies'} and "
        f"{body['consents_revoked']} consent{'' if body['consents_revoked'] == 1 else 's'}"
    )


def new_key_text(body: JsonObject) -> str:
    return "\n".join(
        [
            f"API key {body['key_id']} for tenant {body['tenant']} (shown once, store it now):",
            "",
            f"  {body['key']}",
            "",
            f"URL:    {body['url']}",
            *(f"or:     {url}" for url in body.get("host_urls", [])),
            f"Header: {body['header']}",
            "",
            "Client config:",
            json.dumps(body["client_config"], indent=2),
        ]
        + ([f"\nNote: {body['note']}"] if body.get("note") else [])
    )


def sessions_text(body: JsonObject) -> str:
    rows = [
        (
            s["tenant"],
            s["session_id"],
            s["protocol_version"],
            " ".join(str(v) for v in (s["client"]["name"], s["client"]["version"]) if v) or "-",
            when(s["created_at"]),
            when(s["last_seen"]),
        )
        for s in body["sessions"]
    ]
    headers = ("TENANT", "SESSION", "PROTOCOL", "CLIENT", "CREATED", "LAST SEEN")
    return table(headers, rows) if rows else "no open sessions"


def audit_lines(entries: Sequence[JsonObject]) -> list[str]:
    lines = []
    for e in entries:
        detail = json.dumps(e["detail"], separators=(",", ":"), sort_keys=True)
        lines.append(
            f"{e['id']:>6}  {when(e['ts'])}  {e['event']:<22} {e['tenant'] or '-':<14} "
            f"{e['outcome']:<7} {e['actor']}  {detail}"
        )
    return lines


def limits_text(tenant: JsonObject) -> str:
    """A tenant's effective limits, one a line: value, unit and allowed range, with the ones an
    admin overrode marked (``smcp-box tenant limits NAME`` without flags)."""
    overrides = tenant.get("admin_limit_overrides", {})
    lines = [f"limits of {tenant['name']} (* = set by an admin; --reset NAME drops it):"]
    for name, value in tenant["limits"].items():
        bound = LIMITS.get(name)
        allowed = f"{bound.unit}, {bound.low}..{bound.high}" if bound is not None else ""
        mark = "*" if name in overrides else " "
        lines.append(f"  {mark} {name:<22} {value:>14}  {allowed}")
    return "\n".join(lines)
