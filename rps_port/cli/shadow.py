"""`rps-port shadow`: compare the legacy RPS and the new API on the same requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rps_port.cli.common import console, err_console, fail, is_ci, settings_or_exit

app = typer.Typer(
    help="Shadow comparisons: legacy RPS vs the new API, in canonical form.", no_args_is_help=True
)


@app.command("run")
def run(
    new: Annotated[str, typer.Option("--new", help="Base URL of the new API (e.g. http://127.0.0.1:8000).")],
    legacy: Annotated[
        str | None, typer.Option("--legacy", help="Base URL of the legacy RPS (default RPS_LEGACY_URL).")
    ] = None,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="JSONL corpus of legacy requests.")] = None,
    sample_ids: Annotated[
        int | None, typer.Option("--sample-ids", help="Build a corpus from N ids per collection.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Legacy data (dump dir or mongodb:// URI): for --sample-ids and cause labelling."
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="RPS_SHADOW_TOKEN", help="Bearer token for every request.")
    ] = None,
    principals: Annotated[
        Path | None, typer.Option("--principals", help="YAML/JSON: principal name -> JWT claims.")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="Comparison rules (YAML): ignore, tolerance, set_arrays...")
    ] = None,
    new_prefix: Annotated[
        str, typer.Option("--new-prefix", help="Path prefix the new routers are mounted under.")
    ] = "",
    sql_url: Annotated[
        str | None,
        typer.Option(
            "--sql-url",
            help="Target database for cause labelling (default RPS_DATABASE_URL; needs --source).",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256)] = 8,
    legacy_timeout: Annotated[
        float, typer.Option("--legacy-timeout", help="Seconds per legacy request.")
    ] = 10.0,
    new_timeout: Annotated[float, typer.Option("--new-timeout", help="Seconds per new-API request.")] = 10.0,
    read_twice: Annotated[
        bool, typer.Option("--noise-read/--no-noise-read", help="Read the legacy twice to learn noise.")
    ] = True,
    legacy_secondary: Annotated[
        str | None,
        typer.Option(
            "--legacy-secondary", help="A second legacy instance for the noise read (default: --legacy)."
        ),
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Let non-GET corpus lines through.")
    ] = False,
    max_rate: Annotated[float, typer.Option("--max-mismatch-rate", min=0.0, max=1.0)] = 0.01,
    min_samples: Annotated[
        int, typer.Option("--min-samples", min=1, help="Fewer compared requests is inconclusive.")
    ] = 30,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.9999)] = 0.95,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --sample-ids.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    junit_out: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML (one case per endpoint).")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    evidence_out: Annotated[
        Path | None, typer.Option("--evidence", help="Update the cutover gate evidence JSON file.")
    ] = None,
    save_db: Annotated[
        bool, typer.Option("--save-db", help="Store per-endpoint results in shadow_results.")
    ] = False,
) -> None:
    """Replay a corpus against both sides; exit 1 (fail) or 3 (inconclusive) when an endpoint's
    mismatch upper bound exceeds --max-mismatch-rate."""
    from rps_port.observability import metrics
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
        kw = {
            "token": token,
            "secret": secret,
            "issuer": settings.jwt_issuer,
            "audience": settings.jwt_audience,
        }
        who = Principals.from_file(principals, **kw) if principals else Principals(**kw)
        shadow_rules = load_rules(rules)
    except (CorpusError, ValueError, OSError) as exc:
        raise fail(str(exc), 2) from None
    if not entries:
        raise fail("the corpus is empty", 2)

    cfg = ShadowConfig(
        legacy_url=legacy or settings.legacy_url,
        new_url=new,
        corpus=entries,
        principals=who,
        rules=shadow_rules,
        new_prefix=new_prefix,
        concurrency=concurrency,
        legacy_timeout=legacy_timeout,
        new_timeout=new_timeout,
        read_legacy_twice=read_twice,
        legacy_secondary_url=legacy_secondary,
        allow_writes=allow_writes,
        max_mismatch_rate=max_rate,
        confidence=confidence,
        min_samples=min_samples,
        source=source,
        sql_url=(sql_url or settings.database_url) if source else None,
        legacy_secret=settings.legacy_secret.get_secret_value(),
    )
    report = _run_with_progress(cfg, run_shadow)
    metrics.record_shadow_report(report)
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
        console.print(
            json.dumps(
                {"event": "shadow.summary", **report.gate_summary(), "totals": report.totals.model_dump()}
            ),
            highlight=False,
            soft_wrap=True,
        )
    render_terminal(report, console if not is_ci() else err_console)
    for label, path in (
        ("json", json_out),
        ("junit", junit_out),
        ("html", html_out),
        ("evidence", evidence_out),
    ):
        if path:
            err_console.print(f"{label} report: {path}")
    raise typer.Exit(report.exit_code())


def _run_with_progress(cfg, run_shadow):
    total = len(cfg.corpus)
    if is_ci():
        step = max(1, total // 10)

        def plain(done: int, n: int) -> None:
            if done % step == 0 or done == n:
                err_console.print(
                    json.dumps({"event": "shadow.progress", "done": done, "total": n}), highlight=False
                )

        cfg.progress = plain
        return run_shadow(cfg)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("shadow"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("requests", total=total)
        cfg.progress = lambda done, n: bar.update(task, completed=done)
        return run_shadow(cfg)


@app.command("corpus")
def corpus_cmd(
    source: Annotated[str, typer.Option("--source", help="Legacy data: dump directory or mongodb:// URI.")],
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write.")],
    sample_ids: Annotated[int, typer.Option("--sample-ids", min=1, help="Ids sampled per collection.")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 0,
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
    report_json: Annotated[Path, typer.Argument(help="A report written by `shadow run --json`.")],
    html_out: Annotated[Path | None, typer.Option("--html")] = None,
    junit_out: Annotated[Path | None, typer.Option("--junit")] = None,
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
