"""`rps-port etl ...` as a user runs it: plan, dry-run, run (auto-migrating the target), rejects."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from rps_port import schema
from rps_port.cli.main import app
from rps_port.legacy.generate import DEFAULT_SECRET
from rps_port.legacy.manifest import Manifest

runner = CliRunner()


@pytest.fixture(autouse=True)
def _legacy_secret(monkeypatch):
    monkeypatch.setenv("RPS_LEGACY_SECRET", DEFAULT_SECRET)


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_plan_lists_tables_columns_and_sources():
    result = runner.invoke(app, ["etl", "plan", "--json"])
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.output)["tables"]}
    assert set(tables) == {"customers", "customer_addresses", "orders", "order_items", "transactions"}
    total = next(c for c in tables["orders"]["columns"] if c["name"] == "total")
    assert total["type"] == "NUMERIC(20, 4)" and "totalCents" in total["source"]
    assert tables["orders"]["references"]["customer_id"]["on_missing"] == "keep"
    assert tables["orders"]["dropped_fields"] == ["__v"]
    human = runner.invoke(app, ["etl", "plan"])
    assert human.exit_code == 0 and "order_items" in human.output


def test_plan_sql_prints_ddl_for_each_dialect():
    pg = runner.invoke(app, ["etl", "plan", "--sql"])
    assert pg.exit_code == 0 and "CREATE TABLE orders" in pg.output and "NUMERIC(20, 4)" in pg.output
    lite = runner.invoke(app, ["etl", "plan", "--sql", "--dialect", "sqlite"])
    assert lite.exit_code == 0 and "CREATE TABLE order_items" in lite.output


def test_a_broken_mapping_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("name: x\ncollections:\n  c:\n    table: t\n    columns:\n      id: {path: _id, convert: nope}\n")
    result = runner.invoke(app, ["etl", "plan", "--mapping", str(bad)])
    assert result.exit_code == 2
    assert "m.yaml:6" in result.output and "nope" in result.output


def test_dry_run_json(small_dataset):
    result = runner.invoke(app, ["etl", "dry-run", "--source", str(small_dataset / "export"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    manifest = Manifest.load(small_dataset)
    assert report["balanced"]
    assert report["collections"]["orders"]["rejected"] == manifest.collections["orders"].broken


def test_run_json_then_rejects_commands(small_dataset, sqlite_url, tmp_path):
    assert schema.current(sqlite_url) == set()
    result = runner.invoke(app, ["etl", "run", "--source", str(small_dataset), "--target", sqlite_url,
                                 "--batch-size", "400", "--json"])
    assert result.exit_code == 0, result.output
    assert schema.is_current(sqlite_url)  # the empty target was migrated first
    events = _json_lines(result.output)
    kinds = {e["event"] for e in events}
    assert {"start", "collection", "batch", "reconciled", "summary"} <= kinds
    assert all("docs_per_s" in e for e in events if e["event"] == "batch")
    summary = events[-1]
    manifest = Manifest.load(small_dataset)
    assert summary["balanced"] and summary["status"] == "done"
    assert {r["collection"]: r["rejected"] for r in summary["reconciliation"]} == {
        name: stats.broken for name, stats in manifest.collections.items()
    }

    listed = runner.invoke(app, ["etl", "rejects", "list", "--target", sqlite_url, "--json"])
    rows = json.loads(listed.output)
    assert len(rows) == sum(s.broken for s in manifest.collections.values())
    one = rows[0]
    shown = runner.invoke(app, ["etl", "rejects", "show", one["record_id"], "--target", sqlite_url])
    assert shown.exit_code == 0
    detail = json.loads(shown.output)
    assert detail["document"]["_id"] == {"$oid": one["record_id"]} and detail["reason"] == one["reason"]

    out = tmp_path / "rejects.jsonl"
    exported = runner.invoke(app, ["etl", "rejects", "export", "--out", str(out), "--target", sqlite_url,
                                   "--reason", "totals_mismatch"])
    assert exported.exit_code == 0
    assert len(out.read_text().splitlines()) == manifest.collections["orders"].expected.reject["totals_mismatch"]

    replay = runner.invoke(app, ["etl", "rejects", "replay", "--target", sqlite_url, "--collection", "orders", "--json"])
    assert replay.exit_code == 0, replay.output
    replayed = json.loads(replay.output)
    assert replayed["loaded"] == 0 and sum(replayed["still_rejected"].values()) == manifest.collections["orders"].broken

    # an edited file with mistakes: every bad line is named, and nothing is replayed
    lines = out.read_text().splitlines()
    assert len(lines) >= 4
    broken = [json.loads(line) for line in lines]
    broken[2]["collection"] = "order"
    del broken[3]["document"]
    bad = tmp_path / "edited.jsonl"
    bad.write_text("\n".join([json.dumps(broken[0]), json.dumps(broken[1])[:-1], *map(json.dumps, broken[2:])]) + "\n")
    before = runner.invoke(app, ["etl", "rejects", "list", "--target", sqlite_url, "--json"]).output
    refused = runner.invoke(app, ["etl", "rejects", "replay", "--target", sqlite_url, "--file", str(bad)])
    assert refused.exit_code == 2, refused.output
    assert "nothing replayed" in refused.output
    assert "line 2: not JSON" in refused.output
    assert "line 3: collection: not in the mapping" in refused.output
    assert "line 4: document: missing" in refused.output
    after = runner.invoke(app, ["etl", "rejects", "list", "--target", sqlite_url, "--json"]).output
    assert json.loads(after) == json.loads(before)  # untouched
    with create_engine(sqlite_url).connect() as conn:  # no replay run was even started
        assert conn.execute(text("SELECT count(*) FROM etl_runs WHERE job_key = 'replay'")).scalar_one() == 1


@pytest.mark.parametrize("executor", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_the_terminal_report_lists_rejects_by_reason_whatever_the_executor(small_dataset, tmp_path, executor):
    url = f"sqlite:///{tmp_path / 'target.db'}"
    result = runner.invoke(app, ["etl", "run", "--source", str(small_dataset), "--target", url, *executor])
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(small_dataset)
    assert "reconciliation, run " in result.output
    for name, stats in manifest.collections.items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.expected.reject.items()) if v)
        assert f"rejects in {name}: {reasons}" in result.output
    assert "see `rps-port etl rejects list`" in result.output
    # not a terminal (CI): progress is whole JSON objects, one a line, never wrapped at 80 columns
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert {e["collection"] for e in events if e["event"] == "reconciled"} == set(manifest.collections)


def test_an_imbalanced_reconciliation_exits_1(small_dataset, sqlite_url, monkeypatch):
    """A source that reports more documents than it yields (e.g. a document appeared below the bound)."""
    from rps_port.etl.sources import DumpSource

    real = DumpSource.count
    monkeypatch.setattr(DumpSource, "count", lambda self, c: real(self, c) + (c == "orders"))
    result = runner.invoke(app, ["etl", "run", "--source", str(small_dataset), "--target", sqlite_url, "--json",
                                 "--collections", "customers,orders"])
    assert result.exit_code == 1
    summary = _json_lines(result.output)[-1]
    assert summary["status"] == "imbalanced"
    assert [r["balanced"] for r in summary["reconciliation"]] == [True, False]


@pytest.mark.parametrize("executor", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_a_dump_cut_short_stops_the_run_clearly_and_the_fixed_dump_resumes_it(small_dataset, sqlite_url, tmp_path,
                                                                              executor):
    import shutil

    dump = tmp_path / "dump"
    shutil.copytree(small_dataset / "rps", dump / "rps")
    orders = dump / "rps" / "orders.bson"
    whole = orders.read_bytes()
    orders.write_bytes(whole[: len(whole) // 2 + 7])  # a mongodump interrupted mid-document
    cut = runner.invoke(app, ["etl", "run", "--source", str(dump), "--target", sqlite_url, *executor])
    assert cut.exit_code == 1
    printed = "".join(cut.output.split())  # the console wraps long lines, even inside a path
    assert "orders.bson:truncatedBSONdocumentatbyte" in printed and "resumesfromitslastcheckpoint" in printed
    assert "Traceback" not in cut.output

    orders.write_bytes(whole)
    again = runner.invoke(app, ["etl", "run", "--source", str(dump), "--target", sqlite_url, "--json", *executor])
    assert again.exit_code == 0, again.output
    summary = _json_lines(again.output)[-1]
    assert summary["resumed"] and summary["balanced"]


def test_a_target_that_cannot_be_reached_is_named_without_its_password(small_dataset, monkeypatch):
    import socket

    monkeypatch.setenv("RPS_FIELD_KEYS", "t1:" + "A" * 43 + "=")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://etl:s3cret@127.0.0.1:{port}/rps"
    for args in (["etl", "run", "--source", str(small_dataset), "--target", url], ["db", "current", "--url", url]):
        result = runner.invoke(app, args)
        printed = " ".join(result.output.split())
        assert result.exit_code == 2, printed
        assert f"cannot reach postgresql://etl:***@127.0.0.1:{port}/rps" in printed and "Connection refused" in printed
        assert "s3cret" not in result.output and "Traceback" not in result.output
