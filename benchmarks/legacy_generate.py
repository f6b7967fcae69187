"""Throughput and peak memory of `rps-port legacy generate`, per output format.

    .venv/bin/python benchmarks/legacy_generate.py [--customers 10000] [--seed 1]

Each format runs in a fresh subprocess so peak RSS is its own. "cpu s" is the generating process
(the critical path: the JSON export worker runs in parallel on the other core; its CPU is shown
separately). Target: >= 30,000 documents/s and 10,000 customers (~110k documents) well under 30 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from rich.console import Console
from rich.table import Table

_RUN = """
import json, resource, sys, time
from rps_port.legacy import generate
t0, c0 = time.perf_counter(), time.process_time()
m = generate(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]), fmt=sys.argv[4])
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"docs": m.total_documents, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "cpu_worker": kids.ru_utime + kids.ru_stime,
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
TARGET_DOCS_PER_S = 30_000
BASELINE_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--formats", default="bson,json,both")
    args = parser.parse_args()
    table = Table(title=f"legacy generate, {args.customers:,} customers")
    for col in ("format", "documents", "wall s", "cpu s", "JSON worker cpu s", "docs/s (wall)", "docs/s (cpu)",
                "peak RSS MiB",
                f"target {TARGET_DOCS_PER_S:,}/s", f"< {BASELINE_SECONDS:.0f} s"):
        table.add_column(col, justify="right")
    for fmt in args.formats.split(","):
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run(
                [sys.executable, "-c", _RUN, out, str(args.customers), str(args.seed), fmt],
                capture_output=True, text=True, check=True,
            )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        wall_rate, cpu_rate = r["docs"] / r["wall"], r["docs"] / r["cpu"]
        table.add_row(
            fmt, f"{r['docs']:,}", f"{r['wall']:.1f}", f"{r['cpu']:.1f}", f"{r['cpu_worker']:.1f}",
            f"{wall_rate:,.0f}", f"{cpu_rate:,.0f}",
            f"{r['rss_kib'] / 1024:.0f}", "yes" if cpu_rate >= TARGET_DOCS_PER_S else "no",
            "yes" if r["wall"] < BASELINE_SECONDS else "no",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
