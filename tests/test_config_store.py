"""[store] backend and dsn: env names, checks, and the password from the credentials folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from smcp_box.config import Settings, load_settings, read_store_password
from smcp_box.errors import ConfigError

DSN = "postgresql://smcp@127.0.0.1:5432/smcp"


def test_backend_defaults_to_sqlite() -> None:
    settings = load_settings(None, environ={})
    assert settings.store.backend == "sqlite"
    assert settings.store.dsn == ""


def test_backend_and_dsn_from_the_environment() -> None:
    env = {"SMCP_BOX_STORE_BACKEND": "postgres", "SMCP_BOX_STORE_DSN": DSN}
    settings = load_settings(None, environ=env)
    assert (settings.store.backend, settings.store.dsn) == ("postgres", DSN)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SMCP_BOX_STORE_BACKEND": "mysql"}, "must be 'sqlite' or 'postgres'"),
        ({"SMCP_BOX_STORE_BACKEND": "postgres"}, "set store.dsn"),
        ({"SMCP_BOX_STORE_DSN": DSN}, "store.backend is 'sqlite'"),
        (
            {"SMCP_BOX_STORE_BACKEND": "postgres", "SMCP_BOX_STORE_DSN": "host=db user=x"},
            "postgresql:// URL",
        ),
        (
            {
                "SMCP_BOX_STORE_BACKEND": "postgres",
                "SMCP_BOX_STORE_DSN": "postgresql://smcp:hunter2@db/smcp",
            },
            "store-password",
        ),
        (
            {
                "SMCP_BOX_STORE_BACKEND": "postgres",
                "SMCP_BOX_STORE_DSN": "postgresql://smcp@db/smcp?password=hunter2",
            },
            "must not hold a password",
        ),
    ],
)
def test_bad_store_settings_are_named(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        load_settings(None, environ=env)
    assert "hunter2" not in str(caught.value)


def test_password_comes_from_the_credentials_folder(tmp_path: Path) -> None:
    settings = Settings(credentials_dir=str(tmp_path))
    assert read_store_password(settings) is None
    (tmp_path / "store-password").write_text("s3cret pass\n")
    assert read_store_password(settings) == "s3cret pass"


def test_no_credentials_folder_means_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert read_store_password(Settings()) is None
