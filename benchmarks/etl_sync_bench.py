"""Incremental sync throughput (changes/s) and the no-change incremental run, against the backfill.

    .venv/bin/python benchmarks/etl_sync_bench.py [--customers 5000] [--changes 20000] [--target URL]

Generates N customers as a mongodump, backfills them into a fresh target (default: a SQLite file in
a temporary folder; pass a PostgreSQL URL to measure there), then:

- applies a recorded stream of `--changes` change events (updates of orders with a newer
  `updatedAt`, in batches of 500) with `run_sync`: changes/s;
- runs the watermark sync twice over the unchanged dump (the source's own versions are older than the
  synced rows; the second run is the no-change incremental run), reported as a share of the backfill
  (issue 4's target: <= 5%).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bson import decode_file_iter, json_util

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_events(dump: Path, out: Path, changes: int, seed: int = 5) -> int:
    """Update events for randomly chosen live orders, each newer than anything in the dump."""
    with (dump / "rps" / "orders.bson").open("rb") as fh:
        orders = [d for d in decode_file_iter(fh) if d.get("org") and d.get("deletedAt") is None]
    rng = random.Random(seed)
    clock = datetime(2035, 1, 1, tzinfo=UTC)
    with out.open("w", encoding="utf-8") as fh:
        for i in range(changes):
            doc = dict(rng.choice(orders))
            clock += timedelta(milliseconds=1)
            doc["notes"] = f"changed {i}"
            doc["updatedAt"] = clock.replace(tzinfo=None)
            fh.write(json_util.dumps({"_id": {"n": i}, "operationType": "update", "ns": {"db": "rps", "coll": "orders"},
                                      "documentKey": {"_id": doc["_id"]}, "fullDocument": doc, "wallTime": clock}) + "\n")
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=20000)
    parser.add_argument("--target", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    from rps_port import schema
    from rps_port.db import make_engine
    from rps_port.etl import load_mapping, open_source, run_backfill
    from rps_port.etl.changes import RecordedChanges
    from rps_port.etl.sync import run_sync, run_watermark_sync
    from rps_port.legacy.generate import generate

    work = Path(tempfile.mkdtemp(prefix="rps-sync-bench-"))
    dump = work / "legacy"
    generate(dump, args.customers, seed=7, fmt="bson")
    url = args.target or f"sqlite:///{work / 'target.db'}"
    schema.upgrade(url)
    engine = make_engine(url)
    mapping = load_mapping()
    source = open_source(dump)

    t = time.perf_counter()
    summary = run_backfill(engine, source, mapping)
    backfill_s = time.perf_counter() - t
    documents = sum(r.source_total for r in summary.reconciliations)

    events = work / "events.jsonl"
    write_events(dump, events, args.changes)
    t = time.perf_counter()
    result = run_sync(engine, mapping, RecordedChanges(events))
    sync_s = time.perf_counter() - t

    t = time.perf_counter()
    idle = run_sync(engine, mapping, RecordedChanges(events))  # nothing after the stored token
    idle_s = time.perf_counter() - t

    run_watermark_sync(engine, source, mapping)  # sets the watermarks
    t = time.perf_counter()
    quiet = run_watermark_sync(engine, source, mapping)
    quiet_s = time.perf_counter() - t

    load = os.getloadavg()
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"\nrps-port sync benchmark: {args.customers:,} customers ({documents:,} documents), {backend}; "
          f"load average {load[0]:.1f} / {load[1]:.1f}\n")
    print("| figure | result | target |\n| --- | ---: | --- |")
    print(f"| backfill | {backfill_s:.1f} s ({documents / backfill_s:,.0f} docs/s) | |")
    print(f"| change-event sync | {result.events:,} changes in {sync_s:.1f} s = {result.events / sync_s:,.0f} changes/s"
          f" (upserted {result.counts.upserted:,}) | |")
    print(f"| no-change change-event run | {idle_s:.2f} s = {100 * idle_s / backfill_s:.1f}% of the backfill"
          f" ({idle.events} events) | <= 5% |")
    print(f"| no-change watermark run | {quiet_s:.1f} s = {100 * quiet_s / backfill_s:.1f}% of the backfill"
          f" (upserted {quiet.counts.upserted}) | <= 5% |")


if __name__ == "__main__":
    main()
