"""Load run: seed a database, start the API locally, drive it with the locust portal mix headless for
a fixed time, print throughput and latency percentiles; `--compare` also runs the bare API (no
hardening: no middleware, metrics, tracing or limiter) and prints the full stack's overhead ratio.

    .venv/bin/python benchmarks/load_run.py --duration 30 --users 20 --compare
    .venv/bin/python benchmarks/load_run.py --postgres-admin-url postgresql://postgres@127.0.0.1:5432/test

Figures of a run go to docs/benchmarks/load.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "load-run-secret-0123456789abcdef0123"
# Baselines: docs/benchmarks/load.md, 2 cores / 24 GiB shared (load average ~7), SQLite, 20 users, 30 s, full stack.
BASELINE = {"rps": 68.0, "p50_ms": 50.0, "p95_ms": 1200.0}


def log(msg: str) -> None:
    print(f"[load] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------- data


def make_token(org: str, sub: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": sub, "org": org, "roles": ["admin"], "clients": ["*"], "projects": ["*"],
              "iss": "portal", "aud": "rps", "iat": now, "exp": now + 6 * 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def seed(url: str, orgs: int, customers: int, orders: int) -> dict:
    """Direct inserts through the domain models: per org, customers with paid orders and their charges."""
    from rps_port.db import make_engine, session_scope
    from rps_port.domain import Customer, Order, OrderItem, Transaction
    from rps_port.ids import new_object_id
    from rps_port.timeutil import utcnow

    engine = make_engine(url)
    base = utcnow() - timedelta(days=30)
    fixture: dict = {"orgs": []}
    n = 0
    for o_i in range(orgs):
        org = {"org": new_object_id(), "client": new_object_id(), "project": new_object_id(),
               "customers": [], "orders": [], "charges": []}
        attr = {"org_id": org["org"], "client_id": org["client"], "project_id": org["project"]}
        with session_scope(engine) as s:
            for c_i in range(customers):
                c = Customer(id=new_object_id(), name=f"Customer {o_i}-{c_i}", status="active",
                             marketing_opt_in=False, tags=[], created_at=base + timedelta(minutes=c_i),
                             updated_at=base, **attr)
                s.add(c)
                org["customers"].append(c.id)
                for _ in range(orders):
                    n += 1
                    when = base + timedelta(seconds=n)
                    od = Order(id=new_object_id(), number=f"RPS-2024-{n:06d}", customer_id=c.id, status="paid",
                               currency="EUR", subtotal=Decimal("200.00"), tax=Decimal("38.00"),
                               total=Decimal("238.00"), placed_at=when, created_at=when, updated_at=when, **attr)
                    od.items = [OrderItem(position=0, sku="SKU-1", name="Thing", quantity=20,
                                          unit_price=Decimal("10.00"), tax_rate=Decimal("0.19"), **attr)]
                    s.add(od)
                    org["orders"].append(od.id)
                    tx = Transaction(id=new_object_id(), order_id=od.id, customer_id=c.id, kind="charge",
                                     status="succeeded", amount=Decimal("238.00"), currency="EUR",
                                     provider="stripe", provider_ref=f"ch_{od.id}", processed_at=when,
                                     created_at=when, updated_at=when, **attr)
                    s.add(tx)
                    org["charges"].append(tx.id)
        org["token"] = make_token(org["org"], f"load-user-{o_i}")
        fixture["orgs"].append(org)
    engine.dispose()
    return fixture


# ---------------------------------------------------------------------------------------- server


def serve(port: int, mode: str, log_file: str) -> None:
    """Run inside the server subprocess: the app as `rps-port serve` builds it, full or bare."""
    import uvicorn

    from rps_port.api import app as api_app
    from rps_port.config import load_settings
    from rps_port.observability import install as hardening
    from rps_port.observability.logging import configure_logging

    settings = load_settings()
    if mode == "bare":
        api_app.INSTALLERS[:] = [i for i in api_app.INSTALLERS if i is not hardening.install]
        api_app.ROUTE_DEPENDENCIES[:] = [
            d for d in api_app.ROUTE_DEPENDENCIES if d is not hardening.rate_limit_route_dependency
        ]
    else:
        configure_logging(settings, stream=open(log_file, "a", encoding="utf-8"))  # noqa: SIM115
    app = api_app.create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, log_level="warning")


def start_server(mode: str, db_url: str, port: int, workdir: Path, storage: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "RPS_DATABASE_URL": db_url,
        "RPS_JWT_SECRET": SECRET,
        # the limiter runs and counts, but the benchmark measures cost, not throttling
        "RPS_RATE_LIMIT": "1000000/minute",
        "RPS_RATE_LIMIT_ORG": "10000000/minute",
        "RPS_RATE_LIMIT_STORAGE_URL": storage,
        "RPS_LOG_LEVEL": "INFO",
    }
    log_file = workdir / f"server-{mode}.log"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(port), "--mode", mode, "--log-file", str(log_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / f"server-{mode}.err", "w"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: see {workdir / f'server-{mode}.err'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code in (200, 404):
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start in 30 s")


# ---------------------------------------------------------------------------------------- locust


def run_locust(host: str, fixture_path: Path, prefix: Path, users: int, duration: int) -> list[dict]:
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", str(max(1, users // 2)), "-t", f"{duration}s", "--host", host,
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5",
    ]
    env = {**os.environ, "RPS_LOAD_FIXTURE": str(fixture_path)}
    subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def summarize(rows: list[dict]) -> dict:
    out = {}
    for row in rows:
        name = row["Name"] if row["Type"] else "all"
        out[name] = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]),
            "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]),
        }
    return out


def print_table(title: str, summary: dict) -> None:
    print(f"\n{title}")
    print(f"| {'endpoint':<46} | {'requests':>8} | {'failures':>8} | {'req/s':>7} | {'p50 ms':>6} | "
          f"{'p95 ms':>6} | {'p99 ms':>6} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 10}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
    for name, s in sorted(summary.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        label = "**all**" if name == "all" else name
        print(f"| {label:<46} | {s['requests']:>8} | {s['failures']:>8} | {s['rps']:>7.1f} | {s['p50_ms']:>6.0f} | "
              f"{s['p95_ms']:>6.0f} | {s['p99_ms']:>6.0f} |")


# ---------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=30, help="seconds of load per run")
    ap.add_argument("--users", type=int, default=20, help="concurrent locust users")
    ap.add_argument("--orgs", type=int, default=5)
    ap.add_argument("--customers", type=int, default=100, help="customers per org")
    ap.add_argument("--orders", type=int, default=5, help="orders per customer")
    ap.add_argument("--postgres-admin-url", help="create a throwaway database on this server (default: SQLite)")
    ap.add_argument("--limiter-storage", default="memory://", help="RPS_RATE_LIMIT_STORAGE_URL for the run")
    ap.add_argument("--compare", action="store_true", help="also run the bare API and print the overhead ratio")
    ap.add_argument("--repeat", type=int, default=1,
                    help="alternate the modes this many times; the tables show each mode's median run")
    ap.add_argument("--out", default=str(ROOT / "out" / "load"), help="working directory for CSVs and logs")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    ap.add_argument("--log-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.port, args.mode, args.log_file)
        return

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from rps_port import schema
    from rps_port.db import sync_url

    load_before = f"{os.getloadavg()[0]:.1f}"
    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    dropper = None
    if args.postgres_admin_url:
        name = f"rps_load_{uuid.uuid4().hex[:10]}"
        admin = create_engine(sync_url(args.postgres_admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        db_url = make_url(sync_url(args.postgres_admin_url)).set(database=name).render_as_string(hide_password=False)

        def dropper() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        db_url = f"sqlite:///{tempfile.mkdtemp(prefix='rps-load-')}/load.db"
    backend = "PostgreSQL" if args.postgres_admin_url else "SQLite"
    try:
        log(f"migrating a fresh {backend} database")
        schema.upgrade(db_url)
        t0 = time.perf_counter()
        fixture = seed(db_url, args.orgs, args.customers, args.orders)
        n_orders = sum(len(o["orders"]) for o in fixture["orgs"])
        log(f"seeded {args.orgs} orgs, {n_orders} orders and charges in {time.perf_counter() - t0:.1f}s")
        fixture_path = workdir / "load-fixture.json"
        fixture_path.write_text(json.dumps(fixture))

        runs: dict[str, list[dict]] = {}
        modes = ["bare", "full"] if args.compare else ["full"]
        for i in range(args.repeat):
            for mode in modes:
                port = free_port()
                proc = start_server(mode, db_url, port, workdir, args.limiter_storage)
                try:
                    log(f"{mode} run {i + 1}/{args.repeat}: {args.users} users for {args.duration}s")
                    rows = run_locust(f"http://127.0.0.1:{port}", fixture_path, workdir / f"locust-{mode}-{i}",
                                      args.users, args.duration)
                    runs.setdefault(mode, []).append(summarize(rows))
                    log(f"{mode} run {i + 1}: {runs[mode][-1]['all']['rps']:.1f} req/s")
                finally:
                    proc.terminate()
                    proc.wait(10)
        # machines that share their cores make single runs noisy: keep each mode's median run
        results = {m: sorted(rs, key=lambda r: r["all"]["rps"])[len(rs) // 2] for m, rs in runs.items()}
    finally:
        if dropper:
            dropper()

    print(f"\nrps-port load run: {backend}, {args.users} users, {args.duration}s per run, "
          f"{args.orgs} orgs, limiter storage {args.limiter_storage}, {args.repeat} run(s) per mode, "
          f"load average before/after {load_before} / {os.getloadavg()[0]:.1f}")
    for mode, rs in runs.items():
        print(f"{mode} runs, req/s: " + ", ".join(f"{r['all']['rps']:.1f}" for r in rs))
    for mode, summary in results.items():
        print_table(f"{mode} ({'hardening installed' if mode == 'full' else 'no middleware/metrics/tracing/limiter'})",
                    summary)
    full = results["full"]["all"]
    print(f"\nbaseline (docs/benchmarks/load.md): {BASELINE['rps']:.0f} req/s, p50 {BASELINE['p50_ms']:.0f} ms, "
          f"p95 {BASELINE['p95_ms']:.0f} ms; this run: {full['rps']:.0f} req/s, p50 {full['p50_ms']:.0f} ms, "
          f"p95 {full['p95_ms']:.0f} ms")
    if "bare" in results:
        bare = results["bare"]["all"]
        print(f"overhead of the full stack vs bare: throughput x{bare['rps'] / full['rps']:.2f} lower, "
              f"p50 x{full['p50_ms'] / max(bare['p50_ms'], 1):.2f}, p95 x{full['p95_ms'] / max(bare['p95_ms'], 1):.2f}")
    (workdir / "load-results.json").write_text(json.dumps({"median": results, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
