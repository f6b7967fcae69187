"""`rps-port legacy generate` through Typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rps_port.cli.main import app

runner = CliRunner()


def test_generate_writes_the_dataset_and_prints_a_summary(tmp_path):
    result = runner.invoke(
        app, ["legacy", "generate", "--out", str(tmp_path), "--customers", "60", "--seed", "5", "--format", "both"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["customers_requested"] == 60
    assert manifest["formats"] == ["bson", "json"]
    assert (tmp_path / "rps" / "orders.bson").stat().st_size > 0
    assert (tmp_path / "export" / "orders.json").stat().st_size > 0
    # Plain progress lines (not a terminal) and the summary table.
    assert "generate:" in result.output
    assert "customers" in result.output and "transactions" in result.output
    total = sum(c["total"] for c in manifest["collections"].values())
    assert f"{total:,} documents" in result.output


def test_generate_defaults_to_a_mongodump_only(tmp_path):
    result = runner.invoke(app, ["legacy", "generate", "--out", str(tmp_path), "--customers", "5", "--db", "legacy"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "legacy" / "customers.bson").is_file()
    assert not (tmp_path / "export").exists()


def test_bad_format_is_refused_with_the_option_named(tmp_path):
    result = runner.invoke(app, ["legacy", "generate", "--out", str(tmp_path), "--customers", "5", "--format", "xml"])
    assert result.exit_code == 2
    assert "--format" in result.output
    assert not (tmp_path / "manifest.json").exists()


def test_help_lists_generate():
    result = runner.invoke(app, ["legacy", "--help"])
    assert result.exit_code == 0
    assert "generate" in result.output
