"""Request ids and the access-log line: the same for every route, whichever path served it.

Both the Quart app's hooks (:mod:`smcp_box.web.app`) and the MCP endpoint's lean ASGI path
(:mod:`smcp_box.web.mcp_asgi`) use these, so that a request's id and its log line do not depend
on which of the two answered it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Final

#: The access log's logger: one line per request when ``[server] access_log`` is on.
access_logger = logging.getLogger("smcp_box.access")

REQUEST_ID_HEADER: Final = "X-Request-Id"
#: A client's own request id is kept only if it is this tame: it goes into logs and audit rows.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Request ids the box makes: 16 hex digits from a counter that starts at a random point, so
#: they are unique within the process and unlikely to repeat across restarts. They name a
#: request in the log and in bug reports and are no secret, so a counter does: drawing random
#: bytes from the kernel for each request cost more than the rest of the id handling.
_request_ids = itertools.count(int.from_bytes(os.urandom(8), "big") >> 1)
#: Paths are logged up to this many characters: a path is chosen by the client.
_MAX_LOGGED_PATH: Final = 200


def choose_request_id(offered: str | None) -> str:
    """The client's ``X-Request-Id`` when it is tame, else a new one."""
    if offered and _CLIENT_REQUEST_ID.fullmatch(offered):
        return offered
    return f"{next(_request_ids) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def log_access(
    *,
    method: str,
    path: str,
    status: int,
    size: int | None,
    duration_ms: float,
    client: str | None,
    tenant: str | None,
) -> None:
    """The request's access-log line, in the logfmt of every other line (the formatter adds the
    request id). Never the query string, headers or body: they carry keys, tokens and session
    ids. For a streamed reply (SSE) the duration runs to its headers and its size is "-"."""
    access_logger.info(
        "%s %s %d %s %.1fms client=%s tenant=%s",
        method,
        path[:_MAX_LOGGED_PATH],
        status,
        "-" if size is None else size,
        duration_ms,
        client or "-",
        tenant or "-",
    )
