"""The settings tree: layering, env names, unknown keys, and the example file's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from smcp_box.config import Settings, load_settings
from smcp_box.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_example_file_documents_exactly_the_defaults() -> None:
    assert load_settings(ROOT / "config.example.toml", environ={}) == Settings()


def test_example_file_names_every_setting() -> None:
    text = (ROOT / "config.example.toml").read_text()
    import dataclasses

    def walk(obj: object) -> list[str]:
        names = []
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                names.extend(walk(value))
            else:
                names.append(f.name)
        return names

    for name in walk(Settings()):
        assert f"\n{name} = " in text, f"config.example.toml does not show {name}"


def test_layers_toml_then_env_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('log_level = "debug"\n[server]\nport = 9000\nhost = "0.0.0.0"\n')
    env = {"SMCP_BOX_SERVER_PORT": "9100", "SMCP_BOX_STATE_DIR": "/tmp/x", "OTHER": "1"}
    settings = load_settings(path, environ=env, overrides={"server.host": "127.0.0.2"})
    assert settings.log_level == "debug"
    assert settings.server.port == 9100
    assert settings.server.host == "127.0.0.2"
    assert settings.state_path() == Path("/tmp/x")


def test_env_lists_and_bools() -> None:
    env = {
        "SMCP_BOX_SERVER_ALLOWED_ORIGINS": "https://a.lan, https://b.lan",
        "SMCP_BOX_STORE_ENCRYPT": "false",
    }
    settings = load_settings(None, environ=env)
    assert settings.server.allowed_origins == ("https://a.lan", "https://b.lan")
    assert settings.store.encrypt is False


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("prot = 1\n", "unknown setting 'prot'"),
        ("[server]\nprot = 1\n", "unknown setting 'server.prot'"),
        ("[nope]\nx = 1\n", "unknown setting 'nope'"),
        ("[server]\nport = 'eighty'\n", "'server.port'"),
        ("[server]\nport = 70000\n", "server.port = 70000 is out of range: allowed 1..65535"),
        ('[server]\nport = "18766"\n', "setting 'server.port' in "),
        ('[server]\nport = "18766"\n', "expected an integer"),
        ("[server]\nallowed_origins = 'https://a.lan'\n", "expected a list of strings"),
        ("[server]\nauth_realm = 5\n", "expected a string"),
        ("[store]\nencrypt = 'no'\n", "expected true or false"),
        (
            "[server]\nserver_request_timeout_s = 0.5\n",
            "[server]: server.server_request_timeout_s = 0.5 is out of range: allowed 1..86400",
        ),
        ("server = 3\n", "must be a table"),
        ('[server]\ntls_cert = "a.pem"\n', "tls_cert and server.tls_key"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, toml: str, fragment: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert fragment in info.value.message


def test_unknown_env_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="SMCP_BOX_SERVER_PROT"):
        load_settings(None, environ={"SMCP_BOX_SERVER_PROT": "1"})


def test_systemd_directories_are_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/smcp-box:/var/lib/other")
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/smcp-box")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/smcp-box.service")
    settings = load_settings(None, environ={})
    assert settings.state_path() == Path("/var/lib/smcp-box")
    assert settings.cache_path() == Path("/var/cache/smcp-box")
    assert settings.credentials_path() == Path("/run/credentials/smcp-box.service")
    assert settings.database_path() == Path("/var/lib/smcp-box/smcp-box.db")


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_every_bound_names_a_setting_whose_default_fits() -> None:
    from smcp_box.config import LIMITS, SETTING_BOUNDS

    defaults = Settings()
    for dotted, bound in SETTING_BOUNDS.items():
        section, _, key = dotted.partition(".")
        value = getattr(getattr(defaults, section), key)
        assert bound.problem(dotted, value) is None, dotted
    for name, bound in LIMITS.items():
        assert bound.problem(name, getattr(defaults.sandbox, name)) is None, name


def test_the_transport_settings_are_server_settings() -> None:
    env = {
        "SMCP_BOX_SERVER_SSE_RETRY_MS": "2500",
        "SMCP_BOX_SERVER_BODY_TIMEOUT_S": "7.5",
        "SMCP_BOX_SERVER_SESSION_TOUCH_S": "12",
        "SMCP_BOX_SERVER_AUTH_REALM": "lab",
        "SMCP_BOX_SERVER_RESOURCE_METADATA_URL": "https://box.lan/meta/{tenant}",
        "SMCP_BOX_SERVER_MAX_INPUT_ROUNDS": "3",
    }
    server = load_settings(None, environ=env).server
    assert (server.sse_retry_ms, server.body_timeout_s, server.session_touch_s) == (2500, 7.5, 12)
    assert server.auth_realm == "lab"
    assert server.resource_metadata_url == "https://box.lan/meta/{tenant}"
    assert server.max_input_rounds == 3
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"SMCP_BOX_SERVER_MAX_INPUT_ROUNDS": "0"})
    assert info.value.message == (
        "environment (SMCP_BOX_SERVER_MAX_INPUT_ROUNDS): "
        "server.max_input_rounds = 0 is out of range: allowed 1..1000 (rounds)"
    )


def test_task_settings_are_bounded_and_consistent() -> None:
    tasks = load_settings(None, environ={"SMCP_BOX_TASKS_TTL_S": "120"}).tasks
    assert tasks.ttl_s == 120
    assert load_settings(None, environ={}).quotas.max_open_tasks == 100
    with pytest.raises(ConfigError, match="out of range"):
        load_settings(None, environ={"SMCP_BOX_TASKS_MAX_TIMEOUT_S": "601"})
    with pytest.raises(ConfigError, match=r"must not exceed tasks\.max_timeout_s"):
        load_settings(
            None,
            environ={
                "SMCP_BOX_TASKS_DEFAULT_TIMEOUT_S": "120",
                "SMCP_BOX_TASKS_MAX_TIMEOUT_S": "60",
            },
        )


def test_session_touch_must_be_shorter_than_the_idle_lifetime() -> None:
    with pytest.raises(ConfigError, match=r"session_touch_s \(60\) must be shorter than"):
        load_settings(None, environ={}, overrides={"sessions.idle_timeout_s": 60.0})
    with pytest.raises(ConfigError, match=r"sessions.max_age_s = 1 is out of range"):
        load_settings(None, environ={}, overrides={"sessions.max_age_s": 1.0})
    assert load_settings(None, environ={}, overrides={"sessions.idle_timeout_s": 61.0})


def test_box_id_defaults_to_the_sanitized_host_name() -> None:
    from smcp_box.config import box_id

    assert box_id(Settings(), hostname="rack-3.lan") == "rack_3"
    assert box_id(Settings(), hostname="") == "box"
    assert box_id(Settings(), hostname="x" * 40) == "x" * 32
    chosen = load_settings(environ={"SMCP_BOX_CLUSTER_BOX_ID": "east_1"})
    assert box_id(chosen, hostname="ignored") == "east_1"


@pytest.mark.parametrize("bad", ["east-1", "a" * 33, "b c"])
def test_box_id_with_a_dash_or_out_of_pattern_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"cluster\.box_id"):
        load_settings(environ={"SMCP_BOX_CLUSTER_BOX_ID": bad})


def test_dead_after_must_cover_two_heartbeats() -> None:
    with pytest.raises(ConfigError, match="dead_after_s"):
        load_settings(
            environ={"SMCP_BOX_CLUSTER_HEARTBEAT_S": "5", "SMCP_BOX_CLUSTER_DEAD_AFTER_S": "6"}
        )
