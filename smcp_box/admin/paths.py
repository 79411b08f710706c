"""Where the admin socket lives. Kept apart from the server so that clients can import it
without loading the box."""

from __future__ import annotations

from pathlib import Path

from smcp_box.config import Settings

SOCKET_NAME = "admin.sock"


def admin_socket_path(settings: Settings) -> Path:
    """``[admin] socket`` when set, else ``<runtime_dir>/admin.sock``."""
    explicit = settings.admin.socket
    return Path(explicit) if explicit else settings.runtime_path() / SOCKET_NAME
