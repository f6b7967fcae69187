"""Shadow benchmark: comparator throughput on ~2 KB documents, and where a shadow run spends its time.

    .venv/bin/python benchmarks/shadow_bench.py [--customers 300] [--sample 300] [--seconds 2]

1. Comparator on legacy orders of about 2 KB (Mongoose JSON): pairs per second for
   - equal pairs, canonical forms already built (rules + fast-path equality),
   - mismatching pairs (two planted differences: bounded DeepDiff, paths, fingerprints' input),
   - the whole pipeline per pair (legacy JSON through the ETL mapping + new JSON through the API
     schema + rules + compare), equal and mismatching.
2. A real shadow run over HTTP (the emulator and the API as separate processes, SQLite target
   loaded by the ETL): the share of time spent canonicalising and comparing vs waiting on HTTP.
   Target: comparing under 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "shadow-bench-jwt-secret-0123456789abcdef"


def rate(fn: Any, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        n += 50
        spent = time.perf_counter() - start
        if spent >= seconds:
            return n / spent


def _enlarge(order: dict[str, Any]) -> dict[str, Any] | None:
    """A generated order grown to about 2 KB: its items repeated, its amounts scaled to match (exact)."""
    from decimal import Decimal

    if order.get("shippingAddress") or not order.get("items"):
        return None
    one = len(json.dumps(order))
    k = max(1, round((2000 - one) / max(1, len(json.dumps(order["items"])))) + 1)
    order["items"] = order["items"] * k
    for name in ("subtotal", "tax", "total"):
        value = order.get(name)
        if isinstance(value, dict) and "$numberDecimal" in value:
            order[name] = {"$numberDecimal": str(Decimal(value["$numberDecimal"]) * k)}
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            order[name] = {"$numberDecimal": str(Decimal(repr(value) if isinstance(value, float) else str(value)) * k)}
    if isinstance(order.get("totalCents"), int):
        order["totalCents"] *= k
    return order


def comparator(data_dir: Path, seconds: float) -> list[tuple[str, str, str]]:
    from rps_port.domain.schemas import OrderOut
    from rps_port.legacy.emulator_json import to_mongoose
    from rps_port.legacy.emulator_store import iter_documents
    from rps_port.shadow.canonical import CanonicalError, canonical_from_new
    from rps_port.shadow.compare import diff
    from rps_port.shadow.rules import ShadowRules
    from rps_port.shadow.sides import LegacySide, Unmappable

    side, rules = LegacySide(), ShadowRules()
    side.CACHE_SIZE = 0  # measure canonicalisation itself, not cache hits on the 50 repeated documents
    pairs = []
    for doc in iter_documents(data_dir, "orders"):
        legacy_json = _enlarge(json.loads(json.dumps(to_mongoose(doc))))
        size = len(json.dumps(legacy_json))
        if legacy_json is None or not 1700 <= size <= 2400:
            continue
        try:
            canonical = side.canonical("orders", legacy_json)
        except (Unmappable, CanonicalError):
            continue
        new_json = OrderOut.model_validate(canonical).model_dump(mode="json")
        changed = json.loads(json.dumps(new_json))
        changed["status"] = "cancelled" if changed["status"] != "cancelled" else "draft"
        changed["items"][0]["unit_price"] = str(float(changed["items"][0]["unit_price"]) + 1)
        pairs.append((legacy_json, new_json, changed, size))
        if len(pairs) == 50:
            break
    if not pairs:
        raise SystemExit("no ~2 KB orders in the generated data")
    avg = sum(p[3] for p in pairs) / len(pairs)
    ready = [(rules.apply(side.canonical("orders", leg)), rules.apply(canonical_from_new("orders", n)),
              rules.apply(canonical_from_new("orders", c))) for leg, n, c, _ in pairs]
    i = [0]

    def equal() -> None:
        a, b, _ = ready[i[0] % len(ready)]
        i[0] += 1
        assert not diff(a, b, rules)

    def mismatch() -> None:
        a, _, c = ready[i[0] % len(ready)]
        i[0] += 1
        assert diff(a, c, rules)

    def full(kind: int) -> Any:
        def run() -> None:
            legacy_json, new_json, changed, _ = pairs[i[0] % len(pairs)]
            i[0] += 1
            a = rules.apply(side.canonical("orders", legacy_json))
            b = rules.apply(canonical_from_new("orders", changed if kind else new_json))
            diff(a, b, rules)
        return run

    rows = [
        ("compare, equal pairs (canonical forms built)", f"{rate(equal, seconds):,.0f} pairs/s", "—"),
        ("compare, mismatching pairs (bounded DeepDiff)", f"{rate(mismatch, seconds):,.0f} pairs/s", "—"),
        ("canonicalise both + compare, equal", f"{rate(full(0), seconds):,.0f} pairs/s", "—"),
        ("canonicalise both + compare, mismatching", f"{rate(full(1), seconds):,.0f} pairs/s", "—"),
    ]
    rows.insert(0, ("document size (legacy Mongoose JSON, mean of 50 orders)", f"{avg:,.0f} bytes", "~2 KB"))
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.args}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def http_run(data_dir: Path, work: Path, sample: int, concurrency: int) -> list[tuple[str, str, str]]:
    from rps_port import schema
    from rps_port.shadow.corpus import Principals, sample_corpus
    from rps_port.shadow.runner import ShadowConfig, run_shadow

    db = f"sqlite:///{work / 'target.db'}"
    schema.upgrade(db)
    # the API's per-principal rate limit would throttle a replay; a shadow deployment raises it likewise
    env = {**os.environ, "RPS_JWT_SECRET": SECRET, "RPS_DATABASE_URL": db, "RPS_LOG_LEVEL": "WARNING",
           "RPS_RATE_LIMIT": "1000000/minute", "RPS_RATE_LIMIT_ORG": "1000000/minute"}
    cli = str(ROOT / ".venv" / "bin" / "rps-port")
    subprocess.run([cli, "etl", "run", "--source", str(data_dir), "--target", db, "--json"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    lp, np_ = free_port(), free_port()
    procs = [
        subprocess.Popen([cli, "legacy", "serve", "--data", str(data_dir), "--port", str(lp)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([cli, "serve", "--port", str(np_)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    try:
        wait(f"http://127.0.0.1:{lp}/health", procs[0])
        wait(f"http://127.0.0.1:{np_}/docs", procs[1])
        corpus = sample_corpus(data_dir, sample, seed=1)
        cfg = ShadowConfig(legacy_url=f"http://127.0.0.1:{lp}", new_url=f"http://127.0.0.1:{np_}", corpus=corpus,
                           principals=Principals(secret=SECRET), concurrency=concurrency, legacy_timeout=30,
                           new_timeout=30)
        started = time.perf_counter()
        report = run_shadow(cfg)
        wall = time.perf_counter() - started
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    t = report.timing
    share = t.compare_share_of_wall
    for group in report.unmappable[:5]:
        print(f"unmappable: {group.endpoint}: {group.message} x{group.count}")
    return [
        ("shadow run: requests (legacy twice + new)", f"{len(corpus):,} in {wall:.1f} s ({len(corpus) / wall:,.0f}/s)", "—"),
        ("shadow run: time canonicalising + comparing", f"{t.compare_seconds:.2f} s", "—"),
        ("shadow run: time waiting on HTTP (summed over requests)", f"{t.http_seconds:.2f} s", "—"),
        ("shadow run: comparing vs waiting on HTTP (per request, summed)", f"{t.compare_share * 100:.1f}%",
         "< 10%" + (" ✓" if t.compare_share < 0.10 else " ✗")),
        ("shadow run: comparing, share of the client's wall time", f"{share * 100:.1f}%", "(for reference)"),
        ("shadow run: outcome", (f"{report.totals.compared} compared, {report.totals.mismatches} mismatches, "
                                 f"{report.totals.errors} errors, {report.totals.unmappable} unmappable"), "—"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--sample", type=int, default=300, help="ids sampled per collection for the HTTP run")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per comparator measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    from rps_port.legacy.generate import generate

    work = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    try:
        data_dir = work / "legacy"
        generate(data_dir, args.customers, seed=42, fmt="bson")
        rows = comparator(data_dir, args.seconds)
        if not args.skip_http:
            rows += http_run(data_dir, work, args.sample, args.concurrency)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from rich.console import Console
    from rich.table import Table

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table = Table("measure", "result", "target / baseline",
                  title=f"shadow benchmark — {platform.machine()}, {os.cpu_count()} cores, Python "
                        f"{platform.python_version()}, load average {load:.1f}")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
