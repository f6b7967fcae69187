"""`rps-port shadow run` end to end: reports a person and a gate read, and the exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.shadow.corpus import sample_corpus, write_corpus
from rps_port.shadow.report import ShadowReport

from .conftest import SECRET

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}


class Balanced(HTMLParser):
    """Fails on a closing tag that does not match the open one: the report is well-formed."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def test_shadow_run_cli_writes_every_report(running: Any, tmp_path: Path, monkeypatch: Any) -> None:
    env = running(legacy_kwargs={"noise": True, "seed": 1})
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(sample_corpus(env.data_dir, 15, seed=4), corpus)
    monkeypatch.setenv("RPS_DATABASE_URL", env.db_url)
    monkeypatch.setenv("RPS_JWT_SECRET", SECRET)
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps({"sync_lag": {"seconds": 1.5}}))
    out = {name: tmp_path / f"report.{name}" for name in ("json", "xml", "html")}
    result = CliRunner().invoke(app, [
        "shadow", "run", "--legacy", env.legacy_url, "--new", env.new_url, "--corpus", str(corpus),
        "--source", str(env.data_dir), "--max-mismatch-rate", "0.8", "--min-samples", "1",
        "--json", str(out["json"]), "--junit", str(out["xml"]), "--html", str(out["html"]),
        "--evidence", str(evidence), "--save-db",
    ])
    assert result.exit_code == 0, result.output

    report = ShadowReport.load(out["json"])
    assert report.verdict == "pass" and report.totals.mismatches == 0 and report.totals.compared >= 10

    suite = ET.parse(out["xml"]).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests")) == len(report.endpoints) and suite.get("failures") == "0"

    page = out["html"].read_text(encoding="utf-8")
    parser = Balanced()
    parser.feed(page)
    assert parser.stack == ["html"] or parser.stack == []
    assert "<script" not in page and "http-equiv" not in page and "<link" not in page  # self-contained
    assert "GET /api/orders/:id" in page and "pass" in page

    from rps_port.cutover.evidence import load_evidence_file
    from rps_port.shadow.store import latest_results

    ev = load_evidence_file(evidence)
    assert ev.lag is not None and ev.lag.seconds == 1.5  # other evidence kept
    assert ev.shadow_stats is not None and ev.shadow_stats.samples > 0 and ev.shadow_stats.upper_bound < 0.8
    stored = latest_results(env.db_url)
    assert stored is not None and set(stored["endpoints"]) == {e.endpoint for e in report.endpoints}


def test_report_with_mismatches_renders_and_fails(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from rps_port.shadow.compare import Difference
    from rps_port.shadow.recorder import Observation, Recorder, RequestInfo
    from rps_port.shadow.render import write_html, write_junit
    from rps_port.shadow.rules import ShadowRules

    rec = Recorder(ShadowRules(), max_mismatch_rate=0.01, min_samples=5, legacy_url="http://legacy", new_url="http://new")
    for i in range(40):
        req = RequestInfo("GET", f"/api/orders/{i:024x}", f"/orders/{i:024x}", "org x")
        diffs = [] if i % 4 else [(f"{i:024x}", Difference("total", "total", "value_changed", "1.00", "<b>2.00</b>"))]
        obs = Observation("GET /api/orders/:id", req, "compared", diffs=diffs,
                          records={f"{i:024x}": ({"total": "1.00", "id": "x"}, {"total": "<b>2.00</b>"})})
        obs.at = datetime(2026, 1, 1, tzinfo=UTC)
        rec.add(obs)
    report = rec.report()
    assert report.verdict == "fail" and report.exit_code() == 1
    [fp] = report.fingerprints
    assert fp.count == 10 and fp.path == "total" and len(fp.examples) == 3
    page = write_html(report, tmp_path / "r.html").read_text()
    Balanced().feed(page)
    assert "&lt;b&gt;2.00&lt;/b&gt;" in page and "<b>2.00</b>" not in page  # values are escaped
    suite = ET.parse(write_junit(report, tmp_path / "r.xml")).getroot().find("testsuite")
    failure = suite.find("testcase/failure")
    assert failure is not None and "10× total value_changed" in failure.text


def test_html_report_renders_in_a_headless_browser(tmp_path: Path) -> None:
    """Where a headless Chromium is installed, the report renders to a non-trivial screenshot."""
    import shutil
    import subprocess

    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if browser is None:
        import pytest

        pytest.skip("no headless Chromium on this machine (the HTML is still checked by the parser tests)")
    from rps_port.shadow.recorder import Recorder
    from rps_port.shadow.render import write_html
    from rps_port.shadow.rules import ShadowRules

    page = write_html(Recorder(ShadowRules()).report(), tmp_path / "r.html")
    shot = tmp_path / "r.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,900", page.as_uri()], check=True, capture_output=True, timeout=60)
    assert shot.stat().st_size > 10_000
