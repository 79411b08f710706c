"""The store a box's settings name: [store] backend, dsn and the store-password credential."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from smcp_box.config import Settings, load_settings
from smcp_box.errors import StoreError
from smcp_box.store.store import open_configured
from tests.support.postgres import PASSWORD_ROLE

from .conftest import Backend

PASSWORD = "correct horse battery staple"


def _settings(backend: Backend, tmp_path: Path, dsn: str = "") -> Settings:
    env = {
        "SMCP_BOX_STATE_DIR": str(tmp_path / "state"),
        "SMCP_BOX_CREDENTIALS_DIR": str(tmp_path / "credentials"),
        "SMCP_BOX_STORE_KV_MAX_KEYS": "1",
    }
    if backend.name == "postgres":
        env |= {"SMCP_BOX_STORE_BACKEND": "postgres", "SMCP_BOX_STORE_DSN": dsn}
    return load_settings(None, environ=env)


async def _password_role_dsn(backend: Backend) -> str:
    """The test database, owned by a role that must log in with PASSWORD."""
    database = urllib.parse.urlsplit(backend.where).path.lstrip("/")
    await backend.raw(
        f"DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} LOGIN; EXCEPTION WHEN duplicate_object"
        " THEN NULL; END $$"
    )
    await backend.raw(f"ALTER ROLE {PASSWORD_ROLE} PASSWORD '{PASSWORD}'")
    await backend.raw(f"ALTER DATABASE {database} OWNER TO {PASSWORD_ROLE}")
    parts = urllib.parse.urlsplit(backend.where)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{PASSWORD_ROLE}@"))


async def test_the_configured_backend_opens_with_the_configured_limits(
    backend: Backend, tmp_path: Path
) -> None:
    dsn = await _password_role_dsn(backend) if backend.name == "postgres" else ""
    (tmp_path / "state").mkdir()
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "store-password").write_text(PASSWORD + "\n")
    store = await open_configured(_settings(backend, tmp_path, dsn), backend.data_key)
    try:
        await store.kv_set("t", "a", "1")
        with pytest.raises(StoreError, match="kv_max_keys"):
            await store.kv_set("t", "b", "2")
    finally:
        await store.close()
    if backend.name == "sqlite":
        assert (tmp_path / "state" / "smcp-box.db").exists()


async def test_without_the_store_password_postgres_refuses_clearly(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name == "sqlite":  # a file needs no password
        (tmp_path / "state").mkdir()
        store = await open_configured(_settings(backend, tmp_path), backend.data_key)
        await store.close()
        return
    dsn = await _password_role_dsn(backend)
    with pytest.raises(StoreError, match="store-password") as caught:
        await open_configured(_settings(backend, tmp_path, dsn), backend.data_key)
    assert PASSWORD_ROLE in str(caught.value)
