"""Settings: environment variables `RPS_*`, an optional `rps-port.toml`, and `*_FILE` secrets.

Precedence, highest first: init arguments, environment, `<NAME>_FILE` secret files,
`rps-port.toml` (path from `RPS_CONFIG_FILE`, default `./rps-port.toml`), defaults.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SQLITE_FILE = "rps-port.db"


class ConfigError(RuntimeError):
    """A setting is invalid; the message names it."""


class SecretFileSource(PydanticBaseSettingsSource):
    """Reads `RPS_<NAME>_FILE` (a mounted secret) for every field; the file's content is the value."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env = f"RPS_{field_name.upper()}_FILE"
        path = os.environ.get(env)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise ConfigError(f"{env}: cannot read secret file {path!r}: {exc.strerror}") from None

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                out[key] = value
        return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RPS_", extra="ignore", validate_default=True)

    # storage
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_FILE}",
        description="SQLAlchemy URL of the target database (sqlite:///file or postgresql://...).",
    )
    sql_echo: bool = False

    # identity
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 shared secret (development).")
    jwt_jwks_url: str | None = Field(default=None, description="JWKS URL for RS256/ES256 (production).")
    jwt_issuer: str = "portal"
    jwt_audience: str = "rps"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=600)
    rbac_policy: Path | None = Field(default=None, description="RBAC policy file; default is the shipped one.")
    idempotency_ttl_hours: int = Field(default=24, ge=1)

    # legacy
    legacy_url: str = "http://127.0.0.1:3000"
    legacy_secret: SecretStr = Field(
        default=SecretStr("rps-legacy-test-secret"),
        description="RPS_LEGACY_SECRET of the legacy app; decrypts its enc:v1 fields.",
    )
    mongo_uri: str | None = None

    # field encryption: "kid:base64key,kid2:base64key"; the first is the active key
    field_keys: SecretStr | None = None
    field_hmac_key: SecretStr | None = None

    # background work
    broker: Literal["inprocess", "redis", "sqs"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"
    sqs_queue_url: str | None = None
    sqs_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"
    sendgrid_from_email: str = "orders@example.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    twilio_from_number: str = "+15005550006"
    pricing_catalog: Path | None = None

    # hardening
    rate_limit: str = "100/minute"
    rate_limit_org: str = "1000/minute"
    rate_limit_storage_url: str = "memory://"
    rate_limit_fail_open: bool = True
    log_level: str = "INFO"
    log_file: Path | None = None
    log_json: bool = True
    otlp_endpoint: str | None = None

    # cutover (issue 8)
    cutover_audit_log: Path = Field(default=Path("rps-port-audit.jsonl"), description="Hash-chained JSONL audit log of cutover changes.")
    cutover_evidence_file: Path | None = Field(default=None, description="JSON gate evidence (sync lag, verify, shadow, metrics) to read.")
    cutover_ramp_steps: str = "1,5,25,50,100"
    cutover_cohort_by: Literal["org", "client"] = "org"
    cutover_max_sync_lag_seconds: float = Field(default=60.0, ge=0)
    cutover_verify_max_age_seconds: float = Field(default=3600.0, gt=0)
    cutover_max_mismatch_rate: float = Field(default=0.01, ge=0, le=1)
    cutover_min_shadow_sample: int = Field(default=100, ge=1)
    cutover_max_error_rate: float = Field(default=0.01, ge=0, le=1)
    cutover_max_p99_ms: float = Field(default=500.0, gt=0)
    cutover_min_requests: int = Field(default=100, ge=0)
    cutover_require_approval: bool = False
    cutover_dry_run_gates: str = Field(default="", description="Comma-separated gates evaluated and reported but not enforced.")
    cutover_proxy_timeout_seconds: float = Field(default=30.0, gt=0)
    cutover_shadow_sample_rate: float = Field(default=0.0, ge=0, le=1, description="Share of routed GETs compared with the other side, as the stage says.")
    cutover_metrics_url: str | None = Field(default=None, description="Prometheus /metrics of the new API, read by the error-rate and p99 gates.")
    cutover_state_cache_seconds: float = Field(default=1.0, ge=0, description="How long the routing reuses the cutover stage it read.")
    cutover_routing: bool = Field(default=False, description="Route each request by the cutover stage (proxy to legacy_url when legacy serves).")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return v.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("RPS_CONFIG_FILE", "rps-port.toml"))
        return (
            init_settings,
            env_settings,
            SecretFileSource(settings_cls),
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    def masked(self) -> dict[str, Any]:
        """Effective settings with every secret replaced by `***` (or None when unset)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***"
            elif isinstance(value, str) and "://" in value:
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/?#@]*):[^/?#]*@", re.IGNORECASE)
_URL_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:[^=&#;]*[_\-.])?(?:password|passwd|pwd|pass|secret|token|key|signature|sig|credentials?)=)[^&#;]*",
    re.IGNORECASE,
)


def mask_url(url: str) -> str:
    """Hide the password in a URL such as postgresql://user:pw@host/db (any scheme, several hosts too)
    and the values of query parameters that look secret (password=, token=, ...)."""
    url = _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", url)
    return _URL_SECRET_PARAM.sub(lambda m: f"{m['key']}***", url)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation error into one ConfigError that names each bad setting."""
    config_file = os.environ.get("RPS_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"RPS_CONFIG_FILE: no such file {config_file!r}")
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file or 'rps-port.toml'}: invalid TOML: {exc}") from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"RPS_{field.upper()}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
