"""Reports for people and CI: a rich terminal summary, JUnit XML and one self-contained HTML file."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rps_port.shadow.report import Example, ShadowReport

_VERDICT_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


# ------------------------------------------------------------------------------------ terminal


def render_terminal(report: ShadowReport, console: Any, *, max_fingerprints: int = 15) -> None:
    from rich.markup import escape
    from rich.table import Table

    style = _VERDICT_STYLE[report.verdict]
    t = report.totals
    console.print(
        f"[bold]shadow run {report.run_id}[/bold]: [{style}]{report.verdict}[/{style}] — "
        f"{t.requests} requests, {t.compared} compared, {t.mismatches} mismatches, {t.errors} errors, "
        f"{t.racy} racy, {t.unmappable} unmappable, {t.noise_suppressed} noise-only; "
        f"threshold {_pct(report.max_mismatch_rate)} at {int(report.confidence * 100)}% confidence"
    )
    table = Table("endpoint", "n", "mismatches", "rate", "upper bound", "verdict", "errors", "racy", "unmappable",
                  title="per endpoint")
    for e in report.endpoints:
        s = _VERDICT_STYLE[e.verdict]
        table.add_row(escape(e.endpoint), str(e.compared), str(e.mismatches), _pct(e.rate), _pct(e.upper_bound),
                      f"[{s}]{e.verdict}[/{s}]", str(e.errors), str(e.racy), str(e.unmappable))
    console.print(table, emoji=False)
    if report.fingerprints:
        fps = Table("count", "endpoint", "path", "kind", "cause", "example", title="fingerprints")
        for f in report.fingerprints[:max_fingerprints]:
            ex = f.examples[0] if f.examples else None
            causes = ", ".join(f"{k} {v}" for k, v in sorted(f.causes.items()))
            sample = f"{_short(ex.legacy)} → {_short(ex.new)}" if ex else ""
            fps.add_row(str(f.count), escape(f.endpoint), escape(f.path), f.kind, causes, escape(sample))
        console.print(fps, emoji=False)
        if len(report.fingerprints) > max_fingerprints:
            console.print(f"… and {len(report.fingerprints) - max_fingerprints} more fingerprints (see the HTML/JSON report)")
    for err in report.errors[:5]:
        console.print(f"[yellow]error[/yellow] {escape(err.endpoint)} ({err.side}): {escape(err.message)} ×{err.count}",
                      emoji=False)
    for group in report.unmappable[:5]:
        console.print(f"[yellow]unmappable[/yellow] {escape(group.endpoint)}: {escape(group.message)} ×{group.count}",
                      emoji=False)
    if report.skipped:
        console.print(f"[yellow]{len(report.skipped)} corpus lines skipped[/yellow], e.g. {escape(report.skipped[0])}",
                      emoji=False)
    tm = report.timing
    console.print(f"time: {tm.wall_seconds:.2f}s wall, of which comparing {_pct(tm.compare_share_of_wall)}; "
                  f"per request comparing {_pct(tm.compare_share)} vs waiting on HTTP {_pct(1 - tm.compare_share)}")


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------ JUnit


def write_junit(report: ShadowReport, path: str | Path) -> Path:
    """One test case per endpoint: failed when its mismatch upper bound exceeds the threshold."""
    suite = ET.Element(
        "testsuite",
        name="rps-port shadow",
        tests=str(len(report.endpoints)),
        failures=str(sum(1 for e in report.endpoints if e.upper_bound > report.max_mismatch_rate)),
        errors="0",
        time=f"{report.timing.wall_seconds:.3f}",
        timestamp=report.started_at.isoformat(),
    )
    for e in report.endpoints:
        case = ET.SubElement(suite, "testcase", classname="shadow", name=e.endpoint)
        summary = (f"{e.mismatches}/{e.compared} mismatches, rate {_pct(e.rate)}, upper bound "
                   f"{_pct(e.upper_bound)} (threshold {_pct(report.max_mismatch_rate)}); "
                   f"{e.errors} errors, {e.racy} racy, {e.unmappable} unmappable")
        if e.upper_bound > report.max_mismatch_rate:
            failure = ET.SubElement(case, "failure", type=e.verdict, message=f"{e.verdict}: {summary}")
            lines = [f"{f.count}× {f.path} {f.kind} (causes: {f.causes})" for f in report.fingerprints
                     if f.endpoint == e.endpoint]
            failure.text = "\n".join(lines) or summary
        ET.SubElement(case, "system-out").text = summary
    root = ET.Element("testsuites")
    root.append(suite)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(p, encoding="utf-8", xml_declaration=True)
    return p


# ------------------------------------------------------------------------------------ HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2330;background:#fafbfc}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #dde1e6}
table{border-collapse:collapse;width:100%;background:#fff;margin:.4rem 0}
th,td{border:1px solid #dde1e6;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#137333;font-weight:600}.fail{color:#c5221f;font-weight:600}.inconclusive{color:#a56300;font-weight:600}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff}
.badge.pass{background:#137333}.badge.fail{background:#c5221f}.badge.inconclusive{background:#a56300}
details{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:.5rem 0;padding:.4rem .8rem}
summary{cursor:pointer;font-weight:600}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:28rem;margin:.3rem 0;white-space:pre-wrap;word-break:break-all}
.sbs{display:grid;grid-template-columns:1fr 1fr;gap:.8rem}.muted{color:#5f6b7a}
mark{background:#ffe08a}
"""


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False))


def _record_html(record: Any, field: str) -> str:
    """Pretty JSON of a canonical record with the differing top-level field highlighted."""
    if record is None:
        return "<pre class='muted'>(no record)</pre>"
    if isinstance(record, str):
        text = record  # cut to size by the recorder: shown as it is
    else:
        text = json.dumps(record, indent=2, default=str, ensure_ascii=False, sort_keys=True)
    out = []
    for line in text.splitlines():
        escaped = html.escape(line)
        if field and line.strip().startswith(f'"{field}"'):
            escaped = f"<mark>{escaped}</mark>"
        out.append(escaped)
    return "<pre>" + "\n".join(out) + "</pre>"


def _example_html(ex: Example) -> str:
    top = ex.path.split("]", 1)[-1].lstrip(".") if ex.path.startswith("data[") else ex.path
    top = top.split(".", 1)[0].split("[", 1)[0]
    return (
        f"<p><code>{_e(ex.request)}</code> record <code>{_e(ex.record_id or '-')}</code> at "
        f"<code>{_e(ex.path)}</code>: legacy <code>{_e(ex.legacy)}</code> → new <code>{_e(ex.new)}</code> — "
        f"cause <b>{_e(ex.cause)}</b>{(' (' + _e(ex.cause_detail) + ')') if ex.cause_detail else ''}</p>"
        f"<div class='sbs'><div><b>legacy (canonical)</b>{_record_html(ex.legacy_record, top)}</div>"
        f"<div><b>new (canonical)</b>{_record_html(ex.new_record, top)}</div></div>"
    )


def write_html(report: ShadowReport, path: str | Path) -> Path:
    """A single HTML file (inline CSS, no scripts, no external assets) a person can open anywhere."""
    t = report.totals
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>rps-port shadow report {html.escape(report.run_id)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Shadow report <span class='badge {report.verdict}'>{report.verdict}</span></h1>",
        (
            f"<p class='muted'>run {_e(report.run_id)} · {_e(report.started_at.isoformat())} → "
            f"{_e(report.finished_at.isoformat())} · legacy {_e(report.legacy_url or '-')} · new "
            f"{_e(report.new_url or '-')} · threshold {_pct(report.max_mismatch_rate)} (Wilson upper bound, "
            f"{int(report.confidence * 100)}% confidence, at least {report.min_samples} samples)</p>"
        ),
        (
            f"<p>{t.requests} requests: {t.compared} compared, <b>{t.mismatches} mismatches</b>, {t.errors} errors, "
            f"{t.racy} racy, {t.unmappable} unmappable, {t.noise_suppressed} with noise only. Comparing took "
            f"{_pct(report.timing.compare_share_of_wall)} of the run's wall time.</p>"
        ),
        (
            "<h2>Endpoints</h2><table><tr><th>endpoint</th><th>compared</th><th>mismatches</th><th>rate</th>"
            "<th>upper bound</th><th>verdict</th><th>errors</th><th>racy</th><th>unmappable</th></tr>"
        ),
    ]
    for e in report.endpoints:
        parts.append(
            f"<tr><td><code>{_e(e.endpoint)}</code></td><td class='n'>{e.compared}</td><td class='n'>{e.mismatches}</td>"
            f"<td class='n'>{_pct(e.rate)}</td><td class='n'>{_pct(e.upper_bound)}</td>"
            f"<td class='{e.verdict}'>{e.verdict}</td><td class='n'>{e.errors}</td><td class='n'>{e.racy}</td>"
            f"<td class='n'>{e.unmappable}</td></tr>"
        )
    parts.append("</table>")
    parts.append(f"<h2>Fingerprints ({len(report.fingerprints)})</h2>")
    if not report.fingerprints:
        parts.append("<p>No mismatches.</p>")
    for f in report.fingerprints:
        causes = ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(f.causes.items()))
        parts.append(
            f"<details id='fp-{_e(f.id)}'><summary>{f.count}× <code>{_e(f.endpoint)}</code> "
            f"<code>{_e(f.path)}</code> — {_e(f.kind)} <span class='muted'>({causes})</span></summary>"
            f"<p class='muted'>fingerprint {_e(f.id)} · first seen {_e(f.first_seen.isoformat())} · "
            f"last seen {_e(f.last_seen.isoformat())}</p>"
        )
        parts.extend(_example_html(ex) for ex in f.examples)
        if f.curl:
            curl = "\n".join(f"# {k}\n{v}" for k, v in f.curl.items())
            parts.append(f"<p><b>reproduce</b> (export RPS_SHADOW_TOKEN for the principal first)</p><pre>{_e(curl)}</pre>")
        parts.append("</details>")
    if report.noise:
        parts.append("<h2>Noise (legacy vs itself)</h2><table><tr><th>endpoint</th><th>path</th>"
                     "<th>noise rate</th><th>new-vs-legacy rate</th><th>treated as noise</th></tr>")
        for n in report.noise:
            parts.append(f"<tr><td><code>{_e(n.endpoint)}</code></td><td><code>{_e(n.path)}</code></td>"
                         f"<td class='n'>{_pct(n.noise_rate)}</td><td class='n'>{_pct(n.new_rate)}</td>"
                         f"<td>{'yes' if n.suppressed else 'no'}</td></tr>")
        parts.append("</table>")
    if report.errors:
        parts.append("<h2>Errors (not counted as mismatches)</h2><table><tr><th>endpoint</th><th>side</th>"
                     "<th>error</th><th>count</th></tr>")
        for err in report.errors:
            parts.append(f"<tr><td><code>{_e(err.endpoint)}</code></td><td>{_e(err.side)}</td>"
                         f"<td>{_e(err.message)}</td><td class='n'>{err.count}</td></tr>")
        parts.append("</table>")
    if report.unmappable:
        parts.append("<h2>Unmappable legacy records (not compared)</h2><table><tr><th>endpoint</th>"
                     "<th>reason</th><th>count</th></tr>")
        for group in report.unmappable:
            parts.append(f"<tr><td><code>{_e(group.endpoint)}</code></td><td>{_e(group.message)}</td>"
                         f"<td class='n'>{group.count}</td></tr>")
        parts.append("</table>")
    if report.skipped:
        parts.append(f"<h2>Skipped corpus lines ({len(report.skipped)})</h2><pre>"
                     + html.escape("\n".join(report.skipped[:200])) + "</pre>")
    parts.append("</body></html>")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(parts), encoding="utf-8")
    return p
