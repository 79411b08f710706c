"""Reading a tenant (its tenant.toml and module) from local files for upload to the box.

The CLI and the TUI send file *contents* rather than paths: the box may run under systemd with
its own view of the filesystem (``ProtectHome``, ``PrivateTmp``), so a path the admin sees need
not exist for the box.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from smcp_box.errors import ConfigError

MANIFEST_NAME = "tenant.toml"


def read_tenant_upload(path: Path) -> tuple[str, bytes]:
    """(tenant.toml text, module bytes) from a tenant folder or its tenant.toml."""
    path = path.expanduser()
    manifest_path = path / MANIFEST_NAME if path.is_dir() else path
    try:
        text = manifest_path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {manifest_path}: {exc.strerror}") from None
    try:
        module = tomllib.loads(text).get("module")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{manifest_path} is not valid TOML: {exc}") from None
    if not isinstance(module, str) or not module:
        raise ConfigError(f"{manifest_path} does not name its module ('module = \"...\"')")
    module_path = manifest_path.parent / module
    try:
        return text, module_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the module {module_path}: {exc.strerror}") from None
