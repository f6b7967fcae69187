"""The suite's own fallbacks: an embedded PostgreSQL and a self-started Redis when no URL is given.

Each check runs pytest in a subprocess on a tiny test that uses the real conftest, with the
RPS_TEST_* variable removed, so the fallback path itself is exercised (CI sets both variables).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from rps_port import schema

CONFTEST = Path(__file__).with_name("conftest.py")

TINY_TESTS = '''
import json, os
from sqlalchemy import text
from rps_port.db import make_engine


def record(**values):
    with open(os.environ["RECORD_FILE"], "a") as fh:
        fh.write(json.dumps(values) + "\\n")


def test_postgres(pg_db_url):
    engine = make_engine(pg_db_url)
    with engine.connect() as conn:
        revs = sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
        server = conn.execute(text("SHOW data_directory")).scalar()
    engine.dispose()
    record(kind="postgres", url=pg_db_url, revisions=revs, data_directory=server)


def test_redis(redis_url):
    import redis
    client = redis.Redis.from_url(redis_url)
    client.set("probe", "ok")
    assert client.get("probe") == b"ok"
    client.close()
    record(kind="redis", url=redis_url)
'''


def run_tiny_suite(tmp_path: Path, test: str, drop: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copyfile(CONFTEST, suite / "conftest.py")
    (suite / "test_tiny.py").write_text(TINY_TESTS)
    (suite / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    record = tmp_path / "record.jsonl"
    env = {k: v for k, v in os.environ.items() if k != drop}
    env["RECORD_FILE"] = str(record)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"test_tiny.py::{test}"],
        cwd=suite, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False,
    )
    rows = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return proc, rows


@pytest.mark.postgres
def test_embedded_postgres_when_no_url_is_given(tmp_path: Path) -> None:
    proc, rows = run_tiny_suite(tmp_path, "test_postgres", drop="RPS_TEST_POSTGRES_URL")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    (row,) = rows
    url = make_url(row["url"])
    data_dir = Path(row["data_directory"])
    # a throwaway server of its own: reached over its socket directory, not the machine's 127.0.0.1:5432
    assert url.host is None and "rps-port-pg-" in url.query["host"]
    assert data_dir.name.startswith("rps-port-pg-")
    assert set(row["revisions"]) == schema.heads()
    # stopped and removed when the session ended
    assert not data_dir.exists()


@pytest.mark.redis
def test_self_started_redis_when_no_url_is_given(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH")
    proc, rows = run_tiny_suite(tmp_path, "test_redis", drop="RPS_TEST_REDIS_URL")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    (row,) = rows
    url = make_url(row["url"])
    assert url.host == "127.0.0.1" and url.port != 6379
    with pytest.raises(OSError):  # the server the suite started is gone with the session
        socket.create_connection(("127.0.0.1", url.port), timeout=1).close()


def test_redis_tests_skip_with_the_reason_when_no_server_can_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))  # no redis-server to start
    proc, rows = run_tiny_suite(tmp_path, "test_redis", drop="RPS_TEST_REDIS_URL")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout and "no RPS_TEST_REDIS_URL and no redis-server on PATH" in proc.stdout
    assert rows == []


# ---------------------------------------------------------------- README and CI agree with the repository

ROOT = Path(__file__).resolve().parent.parent
README_TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
QUICKSTART = [
    "python3 -m venv .venv && .venv/bin/pip install -e '.[all]' && .venv/bin/rps-port demo",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest",
]


def _section(title: str) -> str:
    start = README_TEXT.index(f"\n## {title}\n")
    end = README_TEXT.find("\n## ", start + 1)
    return README_TEXT[start : end if end > 0 else None]


def test_readme_quickstart_is_exactly_two_commands() -> None:
    import re

    blocks = re.findall(r"```sh\n(.*?)```", _section("Quickstart"), re.DOTALL)
    assert [b.strip() for b in blocks] == QUICKSTART


def test_ci_installs_and_tests_as_the_readme_says() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -euo pipefail" in ci
    assert "python3 -m venv" in ci and "pip\" install --quiet --progress-bar off -e '.[dev]'" in ci
    assert '"$venv/bin/pytest"' in ci and "5)" in ci


def test_readme_layout_lists_every_package_folder_and_no_other() -> None:
    import re

    layout = _section("Layout")
    listed = set(re.findall(r"^  ([a-z_]+)/ ", layout, re.MULTILINE))
    folders = {p.parent.name for p in (ROOT / "rps_port").glob("*/*.py")}
    assert listed == folders, "README.md's Layout section: add the new folders, remove the gone ones"


def test_readme_links_resolve() -> None:
    import re

    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README_TEXT):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to a missing {target}"
