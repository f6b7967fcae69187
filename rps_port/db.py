"""Database wiring from one URL: sync engines for the CLI and ETL, async engines for the API.

`sqlite:///rps-port.db` (the embedded default) or `postgresql://...` (psycopg 3). The URL is
normalised so `postgres://` and `postgresql://` both use psycopg, and SQLite gets the pragmas a
concurrent writer needs (WAL, foreign keys, a busy timeout).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker


def sync_url(url: str | URL) -> URL:
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+asyncpg", "postgresql+psycopg"):
        return u.set(drivername="postgresql+psycopg")
    if u.drivername.startswith("sqlite"):
        return u.set(drivername="sqlite")
    return u


def async_url(url: str | URL) -> URL:
    u = sync_url(url)
    if u.drivername == "sqlite":
        return u.set(drivername="sqlite+aiosqlite")
    return u  # psycopg 3 serves both sync and async


def is_sqlite(url_or_engine: str | URL | Engine | AsyncEngine) -> bool:
    if isinstance(url_or_engine, (Engine, AsyncEngine)):
        return url_or_engine.dialect.name == "sqlite"
    return sync_url(url_or_engine).drivername.startswith("sqlite")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_own_transactions(dbapi_conn, _record) -> None:
    _sqlite_pragmas(dbapi_conn, _record)
    # pysqlite's legacy mode opens transactions only before DML, so a SAVEPOINT could start (and its
    # RELEASE commit) a transaction of its own: rows of a batch committed before their checkpoint.
    # SQLAlchemy's recipe: switch that off and emit BEGIN ourselves when a transaction begins.
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    u = sync_url(url)
    if u.drivername == "sqlite":
        engine = create_engine(u, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_own_transactions)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(u, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_async_engine(url: str | URL, *, echo: bool = False) -> AsyncEngine:
    u = async_url(url)
    if u.drivername.startswith("sqlite"):
        engine = create_async_engine(u, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(u, echo=echo, pool_pre_ping=True, pool_size=20, max_overflow=20)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One cached sync engine per URL, for CLI commands."""
    return make_engine(url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
