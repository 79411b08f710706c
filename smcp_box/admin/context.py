"""What every admin route shares: the box, who is asking, auditing, and JSON in and out.

Every state-changing admin request is audited, success or failure: a handler names its audit
event with :meth:`AdminContext.begin` before it changes anything, and the app's error handler
records the failure under that name if the request then fails. Reads are not audited: the TUI
polls them every second and would drown the log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from quart import Response, g, request

from smcp_box.box import Box
from smcp_box.errors import BadRequest
from smcp_box.seams import JsonObject

#: Header in which the CLI and TUI name the local user driving them. Anyone who can open the
#: socket is already a full admin, so this is a label for the audit log, not a credential.
USER_HEADER = "x-smcp-admin-user"
_USER_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def json_response(body: Any, status: int = 200) -> Response:
    """JSON without key sorting, so that objects keep the order in which they were built."""
    return Response(
        json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )


@dataclass(frozen=True)
class AdminContext:
    box: Box
    via: Literal["socket", "tcp"]

    def actor(self) -> str:
        claimed = request.headers.get(USER_HEADER, "")
        user = claimed if _USER_PATTERN.fullmatch(claimed) else "unknown"
        return f"admin:{user}@{self.via}"

    def source_ip(self) -> str | None:
        return request.remote_addr if self.via == "tcp" else None

    def begin(self, event: str, tenant: str | None = None, **detail: Any) -> None:
        g.audit_event = event
        g.audit_tenant = tenant
        g.audit_detail = detail

    async def audit(self, *, outcome: str = "ok", tenant: str | None = None, **detail: Any) -> None:
        """Record the event named by :meth:`begin`, with its detail plus ``detail``; ``tenant``
        names the tenant when it was only known after :meth:`begin`."""
        if tenant is not None:
            g.audit_tenant = tenant
        await self.box.auditor.record(
            g.audit_event,
            tenant=g.get("audit_tenant"),
            actor=self.actor(),
            source_ip=self.source_ip(),
            outcome=outcome,
            detail={**g.get("audit_detail", {}), **detail},
        )
        g.audit_event = None

    async def announce(self, topic: str, payload: str) -> None:
        """Tell every box sharing the store about the change this request just committed
        (this box's listeners first): docs/scale-out.md "Fan-out"."""
        await self.box.changes.publish(topic, payload)


async def body_object() -> JsonObject:
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def query_int(name: str, default: int | None, *, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be between {low} and {high}")
    return value


def query_float(name: str, default: float, *, low: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be between {low:g} and {high:g}")
    return value


def query_str(name: str) -> str | None:
    value = request.args.get(name)
    return value or None
