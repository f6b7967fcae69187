"""`rps-port shadow`: compare the legacy RPS and the new API on the same requests."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rps_port.cli.common import console, err_console, fail, is_ci, settings_or_exit

app = typer.Typer(help="Shadow comparisons: legacy RPS vs the new API, in canonical form.", no_args_is_help=True)


@app.command("run")
def run(
    new: str = typer.Option(..., "--new", help="Base URL of the new API (e.g. http://127.0.0.1:8000)."),
    legacy: str | None = typer.Option(None, "--legacy", help="Base URL of the legacy RPS (default RPS_LEGACY_URL)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="JSONL corpus of legacy requests."),
    sample_ids: int | None = typer.Option(None, "--sample-ids", help="Build a corpus from N ids per collection."),
    source: str | None = typer.Option(
        None, "--source", help="Legacy data (dump dir or mongodb:// URI): for --sample-ids and cause labelling."
    ),
    token: str | None = typer.Option(None, "--token", envvar="RPS_SHADOW_TOKEN", help="Bearer token for every request."),
    principals: Path | None = typer.Option(None, "--principals", help="YAML/JSON: principal name -> JWT claims."),
    rules: Path | None = typer.Option(None, "--rules", help="Comparison rules (YAML): ignore, tolerance, set_arrays..."),
    new_prefix: str = typer.Option("", "--new-prefix", help="Path prefix the new routers are mounted under."),
    sql_url: str | None = typer.Option(
        None, "--sql-url", help="Target database for cause labelling (default RPS_DATABASE_URL; needs --source)."
    ),
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=256),
    legacy_timeout: float = typer.Option(10.0, "--legacy-timeout", help="Seconds per legacy request."),
    new_timeout: float = typer.Option(10.0, "--new-timeout", help="Seconds per new-API request."),
    read_twice: bool = typer.Option(True, "--noise-read/--no-noise-read", help="Read the legacy twice to learn noise."),
    allow_writes: bool = typer.Option(False, "--allow-writes", help="Let non-GET corpus lines through."),
    max_rate: float = typer.Option(0.01, "--max-mismatch-rate", min=0.0, max=1.0),
    min_samples: int = typer.Option(30, "--min-samples", min=1, help="Fewer compared requests is inconclusive."),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.9999),
    seed: int = typer.Option(0, "--seed", help="Seed for --sample-ids."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report as JSON."),
    junit_out: Path | None = typer.Option(None, "--junit", help="Write JUnit XML (one case per endpoint)."),
    html_out: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report."),
    evidence_out: Path | None = typer.Option(None, "--evidence", help="Update the cutover gate evidence JSON file."),
    save_db: bool = typer.Option(False, "--save-db", help="Store per-endpoint results in shadow_results."),
) -> None:
    """Replay a corpus against both sides; exit 1 (fail) or 3 (inconclusive) when an endpoint's
    mismatch upper bound exceeds --max-mismatch-rate."""
    from rps_port.shadow.corpus import CorpusError, Principals, read_corpus, sample_corpus
    from rps_port.shadow.render import render_terminal, write_html, write_junit
    from rps_port.shadow.rules import load_rules
    from rps_port.shadow.runner import ShadowConfig, run_shadow
    from rps_port.shadow.store import save_results, write_evidence

    settings = settings_or_exit()
    if (corpus is None) == (sample_ids is None):
        raise fail("give exactly one of --corpus FILE or --sample-ids N", 2)
    if sample_ids is not None and not source:
        raise fail("--sample-ids needs --source (a dump directory or a mongodb:// URI)", 2)
    try:
        entries = read_corpus(corpus) if corpus else sample_corpus(source, sample_ids, seed=seed)
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        kw = {"token": token, "secret": secret, "issuer": settings.jwt_issuer, "audience": settings.jwt_audience}
        who = Principals.from_file(principals, **kw) if principals else Principals(**kw)
        shadow_rules = load_rules(rules)
    except (CorpusError, ValueError, OSError) as exc:
        raise fail(str(exc), 2) from None
    if not entries:
        raise fail("the corpus is empty", 2)

    cfg = ShadowConfig(
        legacy_url=legacy or settings.legacy_url, new_url=new, corpus=entries, principals=who, rules=shadow_rules,
        new_prefix=new_prefix, concurrency=concurrency, legacy_timeout=legacy_timeout, new_timeout=new_timeout,
        read_legacy_twice=read_twice, allow_writes=allow_writes, max_mismatch_rate=max_rate, confidence=confidence,
        min_samples=min_samples, source=source, sql_url=(sql_url or settings.database_url) if source else None,
        legacy_secret=settings.legacy_secret.get_secret_value(),
    )
    report = _run_with_progress(cfg, run_shadow)
    if json_out:
        report.save(json_out)
    if junit_out:
        write_junit(report, junit_out)
    if html_out:
        write_html(report, html_out)
    if evidence_out:
        write_evidence(report, evidence_out, str(html_out or json_out) if (html_out or json_out) else None)
    if save_db:
        save_results(report, settings.database_url)
    if is_ci():
        console.print(json.dumps({"event": "shadow.summary", **report.gate_summary(),
                                  "totals": report.totals.model_dump()}), highlight=False, soft_wrap=True)
    render_terminal(report, console if not is_ci() else err_console)
    for label, path in (("json", json_out), ("junit", junit_out), ("html", html_out), ("evidence", evidence_out)):
        if path:
            err_console.print(f"{label} report: {path}")
    raise typer.Exit(report.exit_code())


def _run_with_progress(cfg, run_shadow):  # noqa: ANN001, ANN202
    total = len(cfg.corpus)
    if is_ci():
        step = max(1, total // 10)

        def plain(done: int, n: int) -> None:
            if done % step == 0 or done == n:
                err_console.print(json.dumps({"event": "shadow.progress", "done": done, "total": n}), highlight=False)

        cfg.progress = plain
        return run_shadow(cfg)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("shadow"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("requests", total=total)
        cfg.progress = lambda done, n: bar.update(task, completed=done)
        return run_shadow(cfg)


@app.command("corpus")
def corpus_cmd(
    source: str = typer.Option(..., "--source", help="Legacy data: dump directory or mongodb:// URI."),
    sample_ids: int = typer.Option(100, "--sample-ids", min=1, help="Ids sampled per collection."),
    out: Path = typer.Option(..., "--out", help="JSONL file to write."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write a corpus of legacy requests built from ids sampled from the source."""
    from rps_port.shadow.corpus import sample_corpus, write_corpus

    settings_or_exit()
    try:
        entries = sample_corpus(source, sample_ids, seed=seed)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc), 2) from None
    write_corpus(entries, out)
    console.print(f"{len(entries)} requests written to {out}")


@app.command("report")
def report_cmd(
    report_json: Path = typer.Argument(..., help="A report written by `shadow run --json`."),
    html_out: Path | None = typer.Option(None, "--html"),
    junit_out: Path | None = typer.Option(None, "--junit"),
) -> None:
    """Print a saved report again, and/or render it as HTML or JUnit."""
    from rps_port.shadow.render import render_terminal, write_html, write_junit
    from rps_port.shadow.report import ShadowReport

    try:
        report = ShadowReport.load(report_json)
    except (OSError, ValueError) as exc:
        raise fail(f"{report_json}: {exc}", 2) from None
    if html_out:
        write_html(report, html_out)
    if junit_out:
        write_junit(report, junit_out)
    render_terminal(report, console)
    raise typer.Exit(report.exit_code())
