"""Schema migrations as a library API (Alembic under the hood), used by `rps-port db` and tests.

Components keep their tables on separate Alembic branches that all start from the domain
revision, so `upgrade()` goes to `heads` (every branch) by default and `downgrade()` to `base`.
`drift()` compares a database with the models the same way `alembic revision --autogenerate`
does (the options are shared with `migrations/env.py`), so "no drift" means autogenerate
would write an empty migration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from rps_port.db import make_engine, sync_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's own bookkeeping table is not part of the models."""
    return not (type_ == "table" and name == "alembic_version")


def autogenerate_options() -> dict[str, Any]:
    """Comparison options shared by env.py (autogenerate) and `drift()`.

    Types are compared for real: Alembic renders the model type through the dialect, so the
    TypeDecorators resolve to what they create (Money -> NUMERIC(20,4) on PostgreSQL and
    VARCHAR(40) on SQLite, UTCDateTime -> timestamptz, JSONType -> JSONB on PostgreSQL).
    """
    return {
        "compare_type": True,
        "compare_server_default": True,
        "include_object": include_object,
    }


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


# Key of the PostgreSQL advisory lock that serialises migrations (several portal replicas may run
# `rps-port db upgrade` at the same start-up); any constant unique to rps-port will do.
MIGRATION_LOCK_KEY = 0x7270_7370_6F72_74  # "rpsport"


def _migrate(url: str, run: Callable[[Config], None]) -> None:
    """Run an Alembic command in one transaction, holding the migration lock on PostgreSQL."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            run(cfg)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "heads") -> None:
    _migrate(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str, revision: str = "base") -> None:
    _refuse_ambiguous_downgrade(url, revision)
    _migrate(url, lambda cfg: command.downgrade(cfg, revision))


def _refuse_ambiguous_downgrade(url: str, revision: str) -> None:
    """Alembic accepts two targets that do something else than they seem to with several branches."""
    if re.fullmatch(r"-\d+", revision) and len(current(url)) > 1:
        raise ValueError(
            f"downgrade {revision} is ambiguous with several branch heads applied; "
            "use BRANCH@-1 (e.g. cutover@-1), a revision id, or base"
        )
    branch, _, target = revision.partition("@")
    if target == "base" and branch:
        script = script_directory()
        root = script.get_revision(branch)
        while root.down_revision:
            down = root.down_revision
            root = script.get_revision(down[0] if isinstance(down, tuple) else down)
        if branch not in root.branch_labels:
            raise ValueError(
                f"{revision} would also remove the shared root {root.revision} and with it every other "
                f"branch; use {branch}@{root.revision} to remove only the {branch} branch, or base for everything"
            )


def current(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def heads(url: str = "sqlite://") -> set[str]:
    return set(script_directory().get_heads())


def is_current(url: str) -> bool:
    return current(url) == heads(url)


@dataclass(frozen=True)
class Status:
    """Where a database stands against the shipped migrations."""

    applied: frozenset[str]
    heads: frozenset[str]
    pending: tuple[str, ...] = field(default=())  # known revisions not yet applied, oldest first
    unknown: tuple[str, ...] = field(default=())  # applied revisions this package does not ship

    @property
    def state(self) -> str:
        if self.unknown:
            return "unknown revision"
        if not self.applied:
            return "empty" if self.pending else "at head"
        return "at head" if not self.pending else "behind head"


def status(url: str) -> Status:
    script = script_directory()
    applied = current(url)
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = tuple(sorted(applied - known))
    done: set[str] = set()
    for rev in applied & known:
        done.update(r.revision for r in script.iterate_revisions(rev, "base"))
    pending = [rev.revision for rev in script.walk_revisions() if rev.revision not in done]
    pending.reverse()  # walk_revisions goes from the heads down
    return Status(frozenset(applied), frozenset(script.get_heads()), tuple(pending), unknown)


def drift(url: str) -> list[Any]:
    """Differences between the database at `url` and the models; empty when they match."""
    from rps_port.domain.registry import load_metadata

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts=autogenerate_options())
            return list(compare_metadata(ctx, load_metadata()))
    finally:
        engine.dispose()
