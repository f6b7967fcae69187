"""Incremental sync throughput (changes/s) and the no-change incremental run, against the backfill.

    .venv/bin/python benchmarks/etl_sync_bench.py [--customers 5000] [--changes 20000] [--target URL]

Generates N customers as a mongodump, backfills them into a fresh target (default: a SQLite file in
a temporary folder; pass a PostgreSQL URL to measure there), then:

- applies a recorded stream of `--changes` change events (updates of orders with a newer
  `updatedAt`, in batches of 500) with `run_sync`: changes/s;
- runs the watermark sync over the unchanged dump: once to store the watermarks and the files'
  fingerprints, then the no-change incremental run (the files are fingerprinted, found unchanged
  and not read), reported as a share of the backfill (issue 4's target: <= 5%); then the same run
  with `full=True` (every document read, compared with the target's version: what a no-change run
  cost before the fingerprints);
- rewrites orders.bson with `--dump-changes` orders updated (as the next mongodump would) and runs
  the watermark sync again: the changed file is read in full, the two unchanged ones are not.
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

from bson import decode_file_iter, encode, json_util
from bson.codec_options import CodecOptions

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


def update_orders_in_dump(dump: Path, changes: int, loaded: set[str], seed: int = 9) -> int:
    """Rewrite orders.bson with `changes` of the `loaded` orders updated (newer `updatedAt`), the rest as they were."""
    path = dump / "rps" / "orders.bson"
    with path.open("rb") as fh:
        orders = list(decode_file_iter(fh, CodecOptions(tz_aware=False)))
    live = [d for d in orders if str(d["_id"]) in loaded]
    clock = datetime(2036, 1, 1)
    for i, doc in enumerate(random.Random(seed).sample(live, changes)):
        doc["notes"] = f"dump change {i}"
        doc["updatedAt"] = clock + timedelta(milliseconds=i)
    path.write_bytes(b"".join(encode(d) for d in orders))
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=20000)
    parser.add_argument("--dump-changes", type=int, default=500, help="orders updated in the next dump")
    parser.add_argument("--target", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    # field encryption (issue 6) needs a key on PostgreSQL: a fixed benchmark key unless one is set
    os.environ.setdefault("RPS_FIELD_KEYS", "bench1:YmVuY2gtZmllbGQta2V5LTMyLWJ5dGVzLWxvbmchISE=")

    from sqlalchemy import select

    from rps_port import schema
    from rps_port.db import make_engine
    from rps_port.domain import Order
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

    run_watermark_sync(engine, source, mapping)  # sets the watermarks and stores the files' fingerprints
    t = time.perf_counter()
    quiet = run_watermark_sync(engine, source, mapping)
    quiet_s = time.perf_counter() - t
    t = time.perf_counter()
    read_all = run_watermark_sync(engine, source, mapping, full=True)
    read_all_s = time.perf_counter() - t

    with engine.connect() as conn:
        loaded = set(conn.execute(select(Order.id)).scalars())
    update_orders_in_dump(dump, args.dump_changes, loaded)
    t = time.perf_counter()
    next_dump = run_watermark_sync(engine, open_source(dump), mapping)
    next_dump_s = time.perf_counter() - t

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
    print(f"| no-change watermark run | {quiet_s:.2f} s = {100 * quiet_s / backfill_s:.1f}% of the backfill"
          f" (unchanged: {', '.join(quiet.unchanged)}) | <= 5% |")
    print(f"| no-change watermark run, --full | {read_all_s:.1f} s = {100 * read_all_s / backfill_s:.1f}% of the"
          f" backfill (upserted {read_all.counts.upserted}) | |")
    print(f"| next dump, {args.dump_changes:,} orders changed | {next_dump_s:.1f} s = "
          f"{100 * next_dump_s / backfill_s:.1f}% of the backfill (upserted {next_dump.counts.upserted:,}; "
          f"unchanged: {', '.join(next_dump.unchanged)}) | |")


if __name__ == "__main__":
    main()
