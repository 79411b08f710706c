"""The files of tenants added through the admin API, kept in step with the database.

The database holds an added tenant's tenant.toml and module bytes; ``<state_dir>/tenants/NAME/``
holds a copy the registry loads like any tenant folder. The copy is rewritten from the database
whenever it is missing or differs (a restore from a backup, which copies only the database, or a
hand-edited file), so that the database alone is enough to bring every tenant back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tomllib
from pathlib import Path

from smcp_box.errors import ConfigError
from smcp_box.tenancy.manifest import MANIFEST_NAME


def module_file(folder: Path, manifest_text: str) -> Path:
    """Where the tenant.toml ``manifest_text`` says its module is, inside ``folder``."""
    try:
        module = tomllib.loads(manifest_text).get("module")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the recorded tenant.toml of {folder.name!r} is not TOML: {exc}"
        ) from None
    relative = Path(module) if isinstance(module, str) else None
    if relative is None or relative.is_absolute() or ".." in relative.parts:
        raise ConfigError(f"the recorded tenant.toml of {folder.name!r} names no module inside it")
    return folder / relative


def files_match(folder: Path, manifest_text: str, module_sha256: str) -> bool:
    """Whether the folder holds exactly the recorded tenant.toml and a module of that hash."""
    try:
        if (folder / MANIFEST_NAME).read_text() != manifest_text:
            return False
        data = module_file(folder, manifest_text).read_bytes()
    except (OSError, UnicodeDecodeError):
        return False
    return hashlib.sha256(data).hexdigest() == module_sha256


def write_files(folder: Path, manifest_text: str, module: bytes) -> None:
    """Rewrite the folder's tenant.toml and module, each atomically (a crash leaves the old
    file or the new one)."""
    target = module_file(folder, manifest_text)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _atomic_write(target, module)
        _atomic_write(folder / MANIFEST_NAME, manifest_text.encode())
    except OSError as exc:
        raise ConfigError(
            f"cannot restore the files of added tenant {folder.name!r} in {folder}: "
            f"{exc.strerror}; the state directory must be writable by the box"
        ) from None


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.restore")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
