"""ETL scale-out on PostgreSQL: 1 vs 2 worker processes, verify vs backfill, a no-change incremental run.

    .venv/bin/python benchmarks/etl_scale_bench.py [--customers 20000] [--postgres-admin-url URL] [--data DIR]

Generates N customers (about 11 documents each) as a mongodump (reused when present) and, each in a
fresh scratch PostgreSQL database:

- backfill with `ProcessExecutor(1)` and with `ProcessExecutor(2)` (both pay the same process start-up;
  the ranges of each collection run in parallel, collections one after another);
- a full `etl verify` of the 2-worker database, in one process and on 2 worker processes
  (documents/s, compared with the backfill's with as many workers);
- the no-change incremental run of verify: `verify --recheck-changed` right after that verify, as a
  share of the 1-worker backfill (the sync's no-change run is measured by the sync's own benchmark);
- the preflight estimate for this dataset next to the measured 1-worker backfill (checks WRITE_FACTOR).

Prints a table with the issue's targets beside the figures, the client CPU seconds of each backfill
(parent and worker processes; not the PostgreSQL server's), and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def dataset(data: Path, customers: int) -> Path:
    from rps_port.legacy.generate import generate

    marker = data / f".customers-{customers}"
    if not marker.exists():
        log(f"generating {customers:,} customers into {data} ...")
        data.mkdir(parents=True, exist_ok=True)
        generate(data, customers, seed=7, fmt="bson")
        marker.touch()
    return data


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def backfill(data: Path, url: str, workers: int) -> tuple[float, int, Any, float]:
    from rps_port.db import make_engine
    from rps_port.etl import load_mapping, open_source
    from rps_port.etl.executors import ProcessExecutor, WorkerSpec, run_scaled_backfill

    engine = make_engine(url)
    source, mapping = open_source(data), load_mapping()
    for name in source.collections():
        source.stats(name)  # file sources index their ids once; not part of the timed run
    executor = ProcessExecutor(workers)
    started, cpu = time.monotonic(), _cpu()
    try:
        result = run_scaled_backfill(engine, source, mapping, WorkerSpec(str(data), url), executor)
    finally:
        executor.close()  # joins the workers, so their CPU time is in RUSAGE_CHILDREN
    seconds, cpu = time.monotonic() - started, _cpu() - cpu
    assert result.summary.status == "done" and not result.failures, result.as_dict()
    docs = sum(r.source_total for r in result.summary.reconciliations)
    return seconds, docs, engine, cpu


def main() -> None:
    from etl_bench import drop_database, fresh_database

    from rps_port.etl import load_mapping, open_source
    from rps_port.etl.preflight import WRITE_FACTOR, run_preflight
    from rps_port.etl.verify import run_verify

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--postgres-admin-url", default=os.environ.get("RPS_TEST_POSTGRES_URL",
                                                                   "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("RPS_FIELD_KEYS", "bench:YmVuY2gtZmllbGQta2V5LTMyLWJ5dGVzLWxvbmchISE=")
    data = dataset(args.data or Path(f"/tmp/rps-etl-scale-bench/{args.customers}"), args.customers)
    load_before = os.getloadavg()
    rows: list[tuple[str, str, str, str]] = []
    urls: list[str] = []
    try:
        url1 = fresh_database(args.postgres_admin_url, "w1")
        urls.append(url1)
        log("backfill, 1 worker ...")
        s1, docs, _e1, c1 = backfill(data, url1, 1)
        url2 = fresh_database(args.postgres_admin_url, "w2")
        urls.append(url2)
        log("backfill, 2 workers ...")
        s2, docs2, engine, c2 = backfill(data, url2, 2)
        assert docs == docs2
        speedup = s1 / s2
        rows.append(("backfill, 1 worker", f"{s1:.1f} s, {docs / s1:,.0f} docs/s, client CPU {c1:.0f} s", "", ""))
        rows.append(("backfill, 2 workers", f"{s2:.1f} s, {docs / s2:,.0f} docs/s, client CPU {c2:.0f} s", "", ""))
        rows.append(("speedup 1 -> 2 workers", f"{speedup:.2f}x", ">= 1.6x", "yes" if speedup >= 1.6 else "NO"))

        source, mapping = open_source(data), load_mapping()
        for name in source.collections():
            source.stats(name)  # as for the backfills: the file index is not part of the timed run
        log("verify (full) ...")
        started = time.monotonic()
        report = run_verify(engine, source, mapping)
        sv = time.monotonic() - started
        assert report.clean, [d.as_dict() for d in report.differences][:5]
        rows.append(("verify, full (1 process)", f"{sv:.1f} s, {docs / sv:,.0f} docs/s",
                     f">= backfill 1 worker ({docs / s1:,.0f})", "yes" if sv <= s1 else "NO"))

        log("verify (full), 2 worker processes ...")
        from rps_port.etl.executors import ProcessExecutor, WorkerSpec

        executor = ProcessExecutor(2)
        started = time.monotonic()
        try:
            report = run_verify(engine, source, mapping, executor=executor, spec=WorkerSpec(str(data), url2))
        finally:
            executor.close()
        sv2 = time.monotonic() - started
        assert report.clean, [d.as_dict() for d in report.differences][:5]
        rows.append(("verify, full (2 worker processes)", f"{sv2:.1f} s, {docs / sv2:,.0f} docs/s",
                     f">= backfill 2 workers ({docs / s2:,.0f})", "yes" if sv2 <= s2 else "NO"))

        log("verify --recheck-changed, nothing changed ...")
        started = time.monotonic()
        report = run_verify(engine, source, mapping, recheck_changed=True)
        sr = time.monotonic() - started
        assert report.clean
        rows.append(("no-change verify --recheck-changed", f"{sr:.2f} s = {sr / s1:.1%} of backfill",
                     "<= 5% of backfill", "yes" if sr <= 0.05 * s1 else "NO"))

        log("preflight estimate ...")
        pre = run_preflight(source, mapping, sample=5000)
        rows.append(("preflight estimate, 1 worker", (f"{pre.estimated_seconds:.1f} s (measured {s1:.1f} s)"
                     f", write factor that would match: {s1 / pre.estimated_seconds * WRITE_FACTOR:.1f}"),
                     "within 2x of measured", "yes" if 0.5 <= pre.estimated_seconds / s1 <= 2 else "NO"))
    finally:
        for url in urls:
            drop_database(args.postgres_admin_url, url)
    load_after = os.getloadavg()
    print(f"\nETL scale-out, {args.customers:,} customers = {docs:,} documents, PostgreSQL, "
          f"{os.cpu_count()} cores; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    widths = [max(len(r[i]) for r in [("figure", "value", "target", "met"), *rows]) for i in range(4)]
    for r in [("figure", "value", "target", "met"), tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
