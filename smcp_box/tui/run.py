"""Entry point of ``smcp-box tui``."""

from __future__ import annotations

from pathlib import Path

from smcp_box.admin.client import AdminClient
from smcp_box.tui.app import AdminTui


def run_tui(
    socket_path: Path | None,
    *,
    read_only: bool = False,
    base_url: str | None = None,
    token: str | None = None,
) -> int:
    # Short timeouts: a hung box should turn the screen "stale" quickly, not freeze it.
    client = AdminClient(socket_path, base_url=base_url, token=token, timeout_s=3.0)
    AdminTui(client, read_only=read_only).run()
    return 0
