"""End-to-end pieces for shadow tests: a generated dataset, loaded into SQL through the ETL mapping,
served by the legacy emulator and by the new API, each under uvicorn on a free localhost port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import uvicorn

SECRET = "shadow-tests-jwt-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """An ASGI app under uvicorn in a daemon thread; `url` once it answers."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def load_sql(data_dir: Path, url: str) -> dict[str, Any]:
    """Backfill the dump into SQL with the ETL (the same mapping the shadow canonicalises with)."""
    from rps_port.db import make_engine
    from rps_port.etl.backfill import run_backfill
    from rps_port.etl.mapping import load_mapping
    from rps_port.etl.sources import open_source

    engine = make_engine(url)
    source = open_source(str(data_dir))
    try:
        summary = run_backfill(engine, source, load_mapping())
    finally:
        source.close()
        engine.dispose()
    assert summary.balanced
    return summary.as_dict()


@dataclass
class Env:
    data_dir: Path
    db_url: str
    legacy_url: str
    new_url: str


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rps_port.legacy.generate import generate

    out = tmp_path_factory.mktemp("legacy")
    generate(out, 12, seed=11, fmt="bson")
    return out


def make_api(db_url: str) -> Any:
    from rps_port.api.app import create_app
    from rps_port.config import load_settings

    settings = load_settings(database_url=db_url, jwt_secret=SECRET)
    return create_app(settings)


@pytest.fixture
def target_url(request: pytest.FixtureRequest) -> str:
    """The migrated target database: SQLite unless a test parametrises it (indirect) with "postgres"."""
    backend = getattr(request, "param", "sqlite")
    return request.getfixturevalue("pg_db_url" if backend == "postgres" else "sqlite_db_url")


@pytest.fixture
def running(dataset: Path, target_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory: `running(legacy_kwargs=..., api_wrapper=...)` starts both servers for this test."""
    from rps_port.legacy.emulator import create_legacy_app

    monkeypatch.setenv("RPS_JWT_SECRET", SECRET)
    sqlite_db_url = target_url
    load_sql(dataset, sqlite_db_url)
    stack: list[ServerThread] = []

    def start(legacy_kwargs: dict[str, Any] | None = None, api_wrapper: Any = None) -> Env:
        legacy = ServerThread(create_legacy_app(dataset, jwt_secret=SECRET, **(legacy_kwargs or {})))
        api = make_api(sqlite_db_url)
        new = ServerThread(api_wrapper(api) if api_wrapper else api)
        for server in (legacy, new):
            server.__enter__()
            stack.append(server)
        return Env(dataset, sqlite_db_url, legacy.url, new.url)

    yield start
    for server in reversed(stack):
        server.__exit__(None, None, None)


def principals() -> Any:
    from rps_port.shadow.corpus import Principals

    return Principals(secret=SECRET)


def wait_ok(url: str) -> None:
    httpx.get(url, timeout=5)
