"""The URL clients use to reach a tenant, as shown in key snippets and tenant details."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from smcp_box.config import Settings

_ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104 - compared against, never bound


def mcp_base_url(settings: Settings) -> str:
    server = settings.server
    scheme = "https" if server.tls_cert else "http"
    # A box listening on every address is reached by its name, not by "0.0.0.0".
    host = socket.gethostname() if server.host in _ANY_ADDRESS else server.host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{server.port}"


def mcp_url(settings: Settings, tenant: str) -> str:
    return f"{mcp_base_url(settings)}/t/{tenant}/mcp"


def host_urls(settings: Settings, hosts: Iterable[str]) -> list[str]:
    """``<scheme>://<host>[:port]/mcp`` for each of a tenant's tenant.toml ``hosts``.

    The port is the box's own, left out when it is the scheme's default (a box on 443, or a
    reverse proxy on 443 in front of one that says so in ``server.port``).
    """
    server = settings.server
    scheme = "https" if server.tls_cert else "http"
    default_port = 443 if scheme == "https" else 80
    port = "" if server.port == default_port else f":{server.port}"
    return [f"{scheme}://{host}{port}/mcp" for host in hosts]
