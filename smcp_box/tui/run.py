"""Entry point of ``smcp-box tui``."""

from __future__ import annotations

import logging
from pathlib import Path

from textual.logging import TextualHandler

from smcp_box.admin.client import AdminClient
from smcp_box.tui.app import AdminTui


def run_tui(
    socket_path: Path | None,
    *,
    read_only: bool = False,
    base_url: str | None = None,
    token: str | None = None,
) -> int:
    # Log records go to Textual's own log (its devtools console), never to the terminal the
    # screen is drawn on: a line written there would tear the screen.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(TextualHandler())
    # Short timeouts: a hung box should turn the screen "stale" quickly, not freeze it.
    client = AdminClient(socket_path, base_url=base_url, token=token, timeout_s=3.0)
    AdminTui(client, read_only=read_only).run()
    return 0
