"""Tokens, secrets and PII fed through every logging path never reach the output."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI

from rps_port.config import load_settings
from rps_port.observability.logging import configure_logging
from rps_port.observability.redaction import REDACTED, Redactor

JWT_SECRET = "dev-jwt-shared-secret-42"
LEGACY_SECRET = "legacy-app-secret-77"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
SENDGRID_KEY = "SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
DB_PASSWORD = "db-pa55word-x"
TOKEN = jwt.encode({"sub": "u1", "org": "0" * 24}, "k" * 32, algorithm="HS256")
EMAIL = "Ada.Lovelace@Example.com"
PHONE = "+44 20 7946 0958"
TAX_ID = "GB123456789"
LAST4 = "4242"
NAME = "Ada Lovelace"

SENSITIVE = [JWT_SECRET, LEGACY_SECRET, TWILIO_TOKEN, SENDGRID_KEY, DB_PASSWORD, TOKEN, EMAIL, EMAIL.lower(),
             PHONE, TAX_ID, NAME, "hunter2"]


@pytest.fixture
def settings():
    return load_settings(
        jwt_secret=JWT_SECRET,
        legacy_secret=LEGACY_SECRET,
        twilio_auth_token=TWILIO_TOKEN,
        sendgrid_api_key=SENDGRID_KEY,
        database_url=f"postgresql://rps:{DB_PASSWORD}@db.internal:5432/rps",
        log_level="DEBUG",
    )


@pytest.fixture
def log_file(tmp_path, settings):
    path = tmp_path / "rps-port.log"
    handler = configure_logging(settings, log_file=path)
    yield path
    logging.getLogger().removeHandler(handler)
    handler.close()


def _assert_clean(text: str) -> None:
    for value in SENSITIVE:
        assert value not in text, f"{value!r} leaked into the log"


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stdlib_messages_args_extras_and_tracebacks_are_redacted(log_file):
    log = logging.getLogger("rps_port.test")
    log.info("login for %s with Authorization: Bearer %s", EMAIL, TOKEN)
    log.warning("connecting with password=hunter2 api_key=%s secret: %s", SENDGRID_KEY, LEGACY_SECRET)
    log.info(
        "customer updated",
        extra={
            "customer": {"id": "c1", "email": EMAIL, "phone": PHONE, "taxId": TAX_ID, "name": NAME,
                         "card": {"brand": "visa", "last4": LAST4}},
            "headers": {"authorization": f"Bearer {TOKEN}", "x-request-id": "r1"},
            "note": f"sent to {PHONE} and {EMAIL}",
            "dsn": f"postgresql://rps:{DB_PASSWORD}@db.internal:5432/rps",
        },
    )
    try:
        raise RuntimeError(f"provider rejected token {TOKEN} for {EMAIL} (twilio {TWILIO_TOKEN})")
    except RuntimeError:
        log.exception("send failed for %s", PHONE)
    log.error("stack", stack_info=True, extra={"jwt_secret": JWT_SECRET})

    text = log_file.read_text()
    _assert_clean(text)
    lines = _lines(log_file)
    assert len(lines) == 5
    customer = lines[2]["customer"]
    assert customer["id"] == "c1" and customer["card"]["brand"] == "visa"
    assert customer["email"] == customer["card"]["last4"] == customer["taxId"] == REDACTED
    assert lines[2]["headers"]["x-request-id"] == "r1"
    assert "RuntimeError" in lines[3]["exc"] and "Traceback" in lines[3]["exc"]
    assert lines[3]["msg"] == "send failed for [PHONE]"


def test_secret_values_from_settings_are_removed_wherever_they_appear(log_file):
    logging.getLogger("x").info("keyring=%s legacy=%s", TWILIO_TOKEN, f"prefix{LEGACY_SECRET}suffix")
    _assert_clean(log_file.read_text())


def test_uvicorn_access_and_error_logs_are_redacted(log_file):
    app = FastAPI()

    @app.get("/echo")
    async def echo() -> dict:
        raise ValueError(f"boom for {EMAIL} with {TOKEN}")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # log_level: other tests in the process may have left uvicorn's loggers at CRITICAL
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True,
                                           log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        r = httpx.get(
            f"http://127.0.0.1:{port}/echo",
            params={"access_token": TOKEN, "email": EMAIL, "phone": PHONE},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 500
    finally:
        server.should_exit = True
        thread.join(10)
    text = log_file.read_text()
    _assert_clean(text)
    loggers = {line["logger"] for line in _lines(log_file)}
    assert {"uvicorn.access", "uvicorn.error"} <= loggers


def test_cli_mode_writes_json_to_the_log_file_not_the_terminal(tmp_path, settings, capsys):
    settings = settings.model_copy(update={"log_file": tmp_path / "cli.log"})
    handler = configure_logging(settings, cli=True)
    try:
        logging.getLogger("rps_port.cli").info("etl run started", extra={"collection": "orders"})
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    out = capsys.readouterr()
    assert "etl run started" not in out.out + out.err
    (line,) = _lines(tmp_path / "cli.log")
    assert line["msg"] == "etl run started" and line["collection"] == "orders" and line["level"] == "INFO"


def test_redactor_leaves_ordinary_text_alone():
    r = Redactor()
    text = "loaded 1200 orders in range [64f0..64f9) in 3.2 s; rejected 3"
    assert r.text(text) == text
    assert r.text("GET /v1/orders?status=paid&page=2") == "GET /v1/orders?status=paid&page=2"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (f"Authorization: Bearer {TOKEN}", TOKEN),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        (f"token {TOKEN} seen", TOKEN),
        (f"key {SENDGRID_KEY}", SENDGRID_KEY),
        ('{"password": "hunter2"}', "hunter2"),
        ("api_key=abc123xyz&x=1", "abc123xyz"),
        ("redis://:s3cretpw@cache:6379/0", "s3cretpw"),
        ("taxId enc:v1:00ff:abcdef0123", "abcdef0123"),
        (f"mail {EMAIL}", EMAIL),
        ("mail ada%40example.com", "ada%40example.com"),
        (f"call {PHONE}", PHONE),
        ("call +15551234567 now", "+15551234567"),
    ],
)
def test_each_pattern_is_caught(text, leak):
    out = Redactor().text(text)
    assert leak not in out, out


def test_uvicorn_default_log_config_is_adopted_on_the_first_request(log_file, capfd):
    """`rps-port serve` style: uvicorn.run without log_config=None reconfigures its loggers after ours."""
    from rps_port.observability.middleware import install_observability

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    install_observability(app)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))  # its LOGGING_CONFIG
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert logging.getLogger("uvicorn.access").handlers, "uvicorn did not install its own handlers"
        r = httpx.get(f"http://127.0.0.1:{port}/ping", params={"token": TOKEN, "email": EMAIL})
        assert r.status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
    captured = capfd.readouterr()
    _assert_clean(captured.out + captured.err)
    text = log_file.read_text()
    _assert_clean(text)
    access = [line for line in _lines(log_file) if line["logger"] == "uvicorn.access"]
    assert access and "/ping?token=[REDACTED]" in access[0]["msg"]
