"""CLI commands log JSON lines to the log file (not the terminal), redacted like everywhere else."""

from __future__ import annotations

import json
import logging

from typer.testing import CliRunner

from rps_port.cli.main import app


def test_cli_command_sets_up_file_logging(tmp_path, monkeypatch):
    log_file = tmp_path / "cli.log"
    monkeypatch.setenv("RPS_LOG_FILE", str(log_file))
    monkeypatch.setenv("RPS_JWT_SECRET", "cli-secret-value-123")
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        result = CliRunner().invoke(app, ["config", "show", "--json"])
        assert result.exit_code == 0, result.output
        assert "cli-secret-value-123" not in result.output
        logging.getLogger("rps_port.etl").info("range done with secret cli-secret-value-123",
                                               extra={"collection": "orders"})
        line = json.loads(log_file.read_text().splitlines()[-1])
        assert line["msg"] == "range done with secret [REDACTED]" and line["collection"] == "orders"
        assert "range done" not in result.output
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
                h.close()
