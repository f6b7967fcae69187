"""Settings from the environment, rps-port.toml and *_FILE secrets; masking; bad settings fail at start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.config import ConfigError, Settings, load_settings, mask_url

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RPS_* setting from the developer's shell, and a working directory without rps-port.toml."""
    for name in list(os.environ):
        if name.startswith("RPS_") and not name.startswith("RPS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def show_json(env: dict[str, str] | None = None) -> dict:
    result = runner.invoke(app, ["config", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_defaults_are_the_embedded_setup() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///rps-port.db"
    assert s.broker == "inprocess" and s.log_level == "INFO" and s.jwt_secret is None


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPS_DATABASE_URL", "postgresql://rps@db.internal:5432/rps")
    monkeypatch.setenv("RPS_LOG_LEVEL", "debug")
    monkeypatch.setenv("RPS_JWT_LEEWAY_SECONDS", "5")
    monkeypatch.setenv("RPS_BROKER", "redis")
    s = load_settings()
    assert s.database_url == "postgresql://rps@db.internal:5432/rps"
    assert s.log_level == "DEBUG" and s.jwt_leeway_seconds == 5 and s.broker == "redis"


def test_toml_file_named_by_rps_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere" / "settings.toml"
    cfg.parent.mkdir()
    cfg.write_text('database_url = "sqlite:///from-toml.db"\njwt_issuer = "toml-issuer"\nlog_level = "warning"\n')
    monkeypatch.setenv("RPS_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("RPS_LOG_LEVEL", "ERROR")  # the environment wins over the file
    s = load_settings()
    assert s.database_url == "sqlite:///from-toml.db" and s.jwt_issuer == "toml-issuer" and s.log_level == "ERROR"
    assert show_json()["jwt_issuer"] == "toml-issuer"


def test_rps_port_toml_in_the_working_directory(clean_env: Path) -> None:
    (clean_env / "rps-port.toml").write_text('jwt_audience = "cwd-audience"\nbroker = "sqs"\n')
    s = load_settings()
    assert s.jwt_audience == "cwd-audience" and s.broker == "sqs"
    assert show_json()["broker"] == "sqs"


def test_jwt_secret_from_a_mounted_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_text("file-secret-value\n")
    monkeypatch.setenv("RPS_JWT_SECRET_FILE", str(secret))
    (tmp_path / "rps-port.toml").write_text('jwt_secret = "toml-secret-value"\n')
    s = load_settings()
    assert s.jwt_secret is not None and s.jwt_secret.get_secret_value() == "file-secret-value"
    monkeypatch.setenv("RPS_JWT_SECRET", "env-secret-value")  # the environment still wins
    assert load_settings().jwt_secret.get_secret_value() == "env-secret-value"


SECRETS = {
    "RPS_JWT_SECRET": "jwt-SECRET-1",
    "RPS_LEGACY_SECRET": "legacy-SECRET-2",
    "RPS_FIELD_KEYS": "k1:c2VjcmV0LWtleS0z",
    "RPS_FIELD_HMAC_KEY": "hmac-SECRET-4",
    "RPS_SENDGRID_API_KEY": "SG.SECRET-5",
    "RPS_TWILIO_AUTH_TOKEN": "twilio-SECRET-6",
    "RPS_DATABASE_URL": "postgresql://rps:db-PASSWORD-7@db.internal:5432/rps",
    "RPS_MONGO_URI": "mongodb://reader:mongo-PASSWORD-8@m1:27017,m2:27017/rps?replicaSet=rs0",
    "RPS_REDIS_URL": "redis://:redis-PASSWORD-9@cache:6379/0",
    "RPS_OTLP_ENDPOINT": "https://collector.example/v1?access_token=otlp-TOKEN-10",
}
SECRET_VALUES = ["jwt-SECRET-1", "legacy-SECRET-2", "c2VjcmV0LWtleS0z", "hmac-SECRET-4", "SG.SECRET-5",
                 "twilio-SECRET-6", "db-PASSWORD-7", "mongo-PASSWORD-8", "redis-PASSWORD-9", "otlp-TOKEN-10"]


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_config_show_never_prints_a_secret(as_json: bool) -> None:
    result = runner.invoke(app, ["config", "show", *(["--json"] if as_json else [])], env=SECRETS)
    assert result.exit_code == 0, result.output
    for value in SECRET_VALUES:
        assert value not in result.output
    if as_json:
        shown = json.loads(result.stdout)
        assert shown["jwt_secret"] == shown["legacy_secret"] == shown["twilio_auth_token"] == "***"
        assert shown["database_url"] == "postgresql://rps:***@db.internal:5432/rps"
        assert shown["mongo_uri"] == "mongodb://reader:***@m1:27017,m2:27017/rps?replicaSet=rs0"
        assert shown["redis_url"] == "redis://:***@cache:6379/0"
        assert shown["otlp_endpoint"] == "https://collector.example/v1?access_token=***"
        assert shown["jwt_jwks_url"] is None and shown["log_level"] == "INFO"
        assert set(shown) == set(Settings.model_fields)


def test_secret_from_file_is_masked_too(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("mounted-SECRET-value")
    result = runner.invoke(app, ["config", "show", "--json"], env={"RPS_JWT_SECRET_FILE": str(secret)})
    assert result.exit_code == 0 and "mounted-SECRET-value" not in result.output
    assert json.loads(result.stdout)["jwt_secret"] == "***"


def test_mask_url_keeps_everything_but_the_password() -> None:
    assert mask_url("postgresql+psycopg://u:p%40ss@h:5432/db?sslmode=require") == (
        "postgresql+psycopg://u:***@h:5432/db?sslmode=require"
    )
    assert mask_url("sqlite:///rps-port.db") == "sqlite:///rps-port.db"
    assert mask_url("postgresql://h:5432/db") == "postgresql://h:5432/db"
    assert mask_url("https://h/x?authSource=admin&password=pw") == "https://h/x?authSource=admin&password=***"


BAD = [
    ({"RPS_DATABASE_URL": "mysql://x"}, "RPS_DATABASE_URL"),
    ({"RPS_LOG_LEVEL": "LOUD"}, "RPS_LOG_LEVEL"),
    ({"RPS_JWT_LEEWAY_SECONDS": "-1"}, "RPS_JWT_LEEWAY_SECONDS"),
    ({"RPS_JWT_LEEWAY_SECONDS": "soon"}, "RPS_JWT_LEEWAY_SECONDS"),
    ({"RPS_BROKER": "carrier-pigeon"}, "RPS_BROKER"),
    ({"RPS_JWT_SECRET_FILE": "/nonexistent/jwt-secret"}, "RPS_JWT_SECRET_FILE"),
    ({"RPS_CONFIG_FILE": "/nonexistent/rps-port.toml"}, "RPS_CONFIG_FILE"),
]


@pytest.mark.parametrize(("env", "name"), BAD, ids=[n for _, n in BAD])
@pytest.mark.parametrize("command", [["config", "show"], ["db", "current", "--url", "sqlite://"]], ids=["config", "db"])
def test_bad_setting_stops_the_cli_at_start_naming_it(env: dict[str, str], name: str, command: list[str]) -> None:
    result = runner.invoke(app, command, env=env)
    assert result.exit_code == 2
    assert name in result.output and "Traceback" not in result.output
    for value in env.values():
        if "nonexistent" not in value:
            assert f"invalid configuration: {name}" in " ".join(result.output.split())


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("log_level = \n")
    result = runner.invoke(app, ["config", "show"], env={"RPS_CONFIG_FILE": str(bad)})
    assert result.exit_code == 2 and "broken.toml" in result.output and "invalid TOML" in result.output


def test_load_settings_raises_config_error_naming_every_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPS_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("RPS_JWT_LEEWAY_SECONDS", "-1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "RPS_LOG_LEVEL" in str(info.value) and "RPS_JWT_LEEWAY_SECONDS" in str(info.value)


def test_version_and_help_work_even_with_a_bad_setting() -> None:
    env = {"RPS_LOG_LEVEL": "LOUD"}
    assert runner.invoke(app, ["--version"], env=env).exit_code == 0
    assert runner.invoke(app, ["--help"], env=env).exit_code == 0


# ---------------------------------------------------------------- the documented settings table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_has_a_meaning() -> None:
    from rps_port.cli.config import undocumented

    assert undocumented() == [], "add description= to these settings in rps_port/config.py"


def test_readme_settings_table_is_current() -> None:
    from rps_port.cli.config import with_table

    text = README.read_text(encoding="utf-8")
    assert with_table(text) == text, "README.md is stale: run `rps-port config docs --write README.md`"
    for name in Settings.model_fields:
        assert f"| `RPS_{name.upper()}` |" in text


def test_config_docs_check_and_write(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    from rps_port.cli.config import TABLE_END, TABLE_START

    doc.write_text(f"# x\n{TABLE_START}\n| stale |\n{TABLE_END}\nafter\n")
    assert runner.invoke(app, ["config", "docs", "--check", str(doc)]).exit_code == 1
    assert runner.invoke(app, ["config", "docs", "--write", str(doc)]).exit_code == 0
    assert runner.invoke(app, ["config", "docs", "--check", str(doc)]).exit_code == 0
    written = doc.read_text()
    assert "| `RPS_DATABASE_URL` | `sqlite:///rps-port.db` |" in written and written.endswith("after\n")
