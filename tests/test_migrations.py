"""Migrations round-trip on empty PostgreSQL and SQLite databases and match the models exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from rps_port import schema
from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.domain.registry import load_metadata

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def _relations(url: str) -> set[str]:
    """Every table, index, sequence and view left in the database (not only what SQLAlchemy reflects)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
            else:
                rows = conn.execute(
                    text(
                        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'public' "
                        "UNION ALL SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                        "WHERE n.nspname = 'public' AND t.typtype = 'e'"
                    )
                )
            return {r[0] for r in rows}
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_round_trip_to_heads_base_and_back_without_drift(empty_url: str) -> None:
    model_tables = set(load_metadata().tables)
    assert _tables(empty_url) == set()

    schema.upgrade(empty_url)
    st = schema.status(empty_url)
    assert st.state == "at head" and st.applied == st.heads and not st.pending
    assert _tables(empty_url) == model_tables | {"alembic_version"}
    assert schema.drift(empty_url) == []

    schema.downgrade(empty_url, "base")
    assert _tables(empty_url) == {"alembic_version"}
    leftovers = _relations(empty_url) - {"alembic_version", "alembic_version_pkc"}
    assert leftovers == set(), f"downgrade to base left {sorted(leftovers)}"
    assert schema.current(empty_url) == set()

    schema.upgrade(empty_url)
    assert schema.is_current(empty_url)
    assert schema.drift(empty_url) == []


def test_concurrent_upgrades_on_postgres_are_serialised(pg_url: str) -> None:
    """Portal replicas may all run `rps-port db upgrade` at the same start-up (without the advisory
    lock the second fails with a duplicate-object error)."""
    rps_port = Path(sys.executable).with_name("rps-port")
    procs = [
        subprocess.Popen([str(rps_port), "db", "upgrade", "--url", pg_url], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert schema.is_current(pg_url) and schema.drift(pg_url) == []


# The drift check must see real differences in the custom types, or "no drift" above proves nothing.
PG_CHANGES = {
    "Money": ("ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)", "total"),
    "UTCDateTime": ("ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp without time zone", "placed_at"),
    "JSONB": ("ALTER TABLE orders ALTER COLUMN extra TYPE json USING extra::json", "extra"),
}


@pytest.mark.parametrize("kind", sorted(PG_CHANGES))
def test_drift_sees_a_changed_custom_type_on_postgres(pg_db_url: str, kind: str) -> None:
    ddl, column = PG_CHANGES[kind]
    engine = make_engine(pg_db_url)
    with engine.begin() as conn:
        conn.execute(text(ddl))
    engine.dispose()
    diffs = schema.drift(pg_db_url)
    assert [(d[0][0], d[0][2], d[0][3]) for d in diffs] == [("modify_type", "orders", column)]


def test_drift_sees_money_stored_as_a_number_on_sqlite(sqlite_db_url: str) -> None:
    # On SQLite Money is text so no amount passes through a float; a numeric column would.
    engine = make_engine(sqlite_db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE orders DROP COLUMN tax"))
        conn.execute(text("ALTER TABLE orders ADD COLUMN tax NUMERIC(20, 4) NOT NULL DEFAULT 0"))
    engine.dispose()
    changed = {(d[0][0], d[0][3]) for d in schema.drift(sqlite_db_url) if isinstance(d, list)}
    assert ("modify_type", "tax") in changed


def test_drift_sees_a_missing_index(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX uq_orders_org_id_number_live"))
    engine.dispose()
    diffs = schema.drift(db_url)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "uq_orders_org_id_number_live")]


# ---------------------------------------------------------------- several branches (one per component)

PROBE_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "0001"
branch_labels = ("{label}",)
depends_on = None


def upgrade() -> None:
    op.create_table("{label}_things", sa.Column("id", sa.String(24), primary_key=True))


def downgrade() -> None:
    op.drop_table("{label}_things")
"""


@pytest.fixture
def extra_branches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped migrations plus two more component branches, each starting at 0001."""
    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for rev, label in (("zz01", "probe_a"), ("zz02", "probe_b")):
        (copy / "versions" / f"{rev}_{label}.py").write_text(PROBE_REVISION.format(rev=rev, label=label))
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", copy)
    assert {"zz01", "zz02"} <= schema.heads()


def _db(*args: str, env: dict[str, str] | None = None):
    result = runner.invoke(app, ["db", *args], env=env)
    assert result.exit_code == 0, result.output
    return result


def _current(url: str) -> dict:
    return json.loads(_db("current", "--json", "--url", url).stdout)


def test_cli_handles_several_branch_heads(extra_branches: None, empty_url: str) -> None:
    every_head = sorted(schema.heads())
    assert _current(empty_url)["state"] == "empty"

    _db("upgrade", "0001", "--url", empty_url)
    now = _current(empty_url)
    assert now["state"] == "behind head" and {"zz01", "zz02"} <= set(now["pending"])
    assert runner.invoke(app, ["db", "current", "--check", "--url", empty_url]).exit_code == 1

    _db("upgrade", "--url", empty_url)
    now = _current(empty_url)
    assert now["state"] == "at head" and now["applied"] == every_head and now["pending"] == []
    assert {"probe_a_things", "probe_b_things"} <= _tables(empty_url)
    assert runner.invoke(app, ["db", "current", "--check", "--url", empty_url]).exit_code == 0

    _db("downgrade", "probe_a@-1", "--url", empty_url)
    tables = _tables(empty_url)
    assert "probe_a_things" not in tables and "probe_b_things" in tables
    now = _current(empty_url)
    assert now["state"] == "behind head" and now["pending"] == ["zz01"]

    _db("upgrade", "--url", empty_url)
    for ambiguous in ("-1", "probe_b@base"):  # would not do what it says with several branches
        result = runner.invoke(app, ["db", "downgrade", "--url", empty_url, "--", ambiguous])
        assert result.exit_code == 1 and "ValueError" in result.output
        assert _current(empty_url)["state"] == "at head"
    _db("downgrade", "probe_b@0001", "--url", empty_url)
    tables = _tables(empty_url)
    assert "probe_b_things" not in tables and "probe_a_things" in tables and "orders" in tables

    heads_listing = _db("heads").stdout
    assert "zz01 (probe_a)" in heads_listing and "zz02 (probe_b)" in heads_listing

    _db("downgrade", "base", "--url", empty_url)
    assert _tables(empty_url) == {"alembic_version"}
    now = _current(empty_url)
    assert now["state"] == "empty" and now["applied"] == [] and set(now["pending"]) >= {"0001", "zz01", "zz02"}


def test_current_flags_a_revision_this_package_does_not_ship(sqlite_db_url: str) -> None:
    engine = make_engine(sqlite_db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('ffff')"))
    engine.dispose()
    result = runner.invoke(app, ["db", "current", "--check", "--url", sqlite_db_url])
    assert result.exit_code == 1
    assert json.loads(_db("current", "--json", "--url", sqlite_db_url).stdout)["unknown"] == ["ffff"]


# ---------------------------------------------------------------- rps-port db via the CLI


def test_db_upgrade_with_url_option(empty_url: str) -> None:
    result = _db("upgrade", "--url", empty_url)
    assert "upgraded" in result.stdout
    assert _current(empty_url)["state"] == "at head"
    check = _db("check", "--url", empty_url)
    assert "no drift" in check.stdout


def test_db_upgrade_with_environment_url(empty_url: str) -> None:
    env = {"RPS_DATABASE_URL": empty_url}
    _db("upgrade", env=env)
    assert schema.is_current(empty_url)
    now = json.loads(_db("current", "--json", env=env).stdout)
    assert now["state"] == "at head"
    _db("downgrade", "base", env=env)
    assert _tables(empty_url) == {"alembic_version"}


def test_db_commands_hide_the_password(pg_url: str) -> None:
    from sqlalchemy.engine import make_url

    with_password = make_url(pg_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    result = runner.invoke(app, ["db", "current", "--url", with_password])
    assert "s3cret-pw" not in result.output
