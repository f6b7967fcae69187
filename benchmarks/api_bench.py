"""API throughput and latency: the full stack against a bare FastAPI endpoint running the same SQL.

    .venv/bin/python benchmarks/api_bench.py [--postgres-admin-url postgresql://postgres@127.0.0.1:5432/test]
        [--orders 100000] [--duration 15] [--concurrency 16]

Seeds a PostgreSQL database with `--orders` orders (one item each) for one org (kept between runs:
database `rps_api_bench`, reseeded only when its count differs), then serves it twice with uvicorn
in subprocesses (one worker each):

- full: `rps_port.api.create_app` as `rps-port serve` builds it: JWT (HS256), RBAC, tenancy scope,
  idempotency dependency, problem handlers, and whatever the seams install (logging, metrics,
  tracing, rate limiting; the limit is raised so that no request is refused, but it is counted),
  with the JSON access log written to a file at INFO as `rps-port serve` does, and tracing as
  configured by default (no OTLP exporter: trace ids in the logs, no spans recorded).
- core: the same app with the seams emptied (JWT, RBAC, tenancy, idempotency dependency, problem
  handling only), to show which layer costs what.
- bare: one FastAPI app with the same two endpoints, the same engine and SQL statements (keyset
  page of 50 + the selectin load of items; detail by id) and the same serialisation (OrderOut),
  and nothing else: no auth, no RBAC, no dependencies, no middleware.

A bounded httpx async loop (`--concurrency` requests in flight) drives `GET /orders?limit=50` and
`GET /orders/{id}` (random ids from the seeded set) for `--duration` seconds per stack and endpoint, the stacks alternating in `--rounds`
short rounds (so background load hits both alike), after a warm-up;
and prints requests/s, p50/p95/p99, the server process's CPU time per request (from /proc), and
the full/bare ratios of throughput and of CPU per request (target: both >= 0.85). Client and
servers share the machine, so absolute figures are lower bounds; on a busy machine the CPU ratio
is the steadier of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from procstat import cpu_seconds  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "api-bench-secret-0123456789abcdef0123"
ORG = "65a1f0c2e4b0a1b2c3d4e5f6"
DB_NAME = "rps_api_bench"
TARGET_RATIO = 0.85


def log(msg: str) -> None:
    print(f"[api-bench] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------- data


def bench_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from rps_port.db import sync_url

    engine = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME}):
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    engine.dispose()
    return make_url(sync_url(admin_url)).set(database=DB_NAME).render_as_string(hide_password=False)


def seed(url: str, orders: int) -> list[str]:
    """`orders` orders of one org (1,000 customers), one item each; returns the order ids."""
    from sqlalchemy import delete, func, insert, select

    from rps_port import schema
    from rps_port.db import make_engine
    from rps_port.domain import Customer, Order, OrderItem
    from rps_port.ids import new_object_id

    schema.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        have = conn.scalar(select(func.count()).select_from(Order).where(Order.org_id == ORG))
    if have != orders:
        log(f"seeding {orders:,} orders (had {have:,})")
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(delete(OrderItem).where(OrderItem.org_id == ORG))
            conn.execute(delete(Order).where(Order.org_id == ORG))
            conn.execute(delete(Customer).where(Customer.org_id == ORG))
            base = datetime(2024, 1, 1, tzinfo=UTC)
            customers = [new_object_id() for _ in range(1000)]
            conn.execute(
                insert(Customer),
                [
                    {"id": c, "org_id": ORG, "name": f"Customer {i}", "status": "active", "marketing_opt_in": False,
                     "tags": [], "created_at": base, "updated_at": base}
                    for i, c in enumerate(customers)
                ],
            )
            batch = 10_000
            for start in range(0, orders, batch):
                rows, items = [], []
                for n in range(start, min(start + batch, orders)):
                    oid = new_object_id()
                    at = base + timedelta(seconds=n)
                    rows.append({
                        "id": oid, "org_id": ORG, "number": f"RPS-2024-{n + 1:06d}", "customer_id": customers[n % 1000],
                        "status": "paid", "currency": "EUR", "subtotal": Decimal("20.00"), "tax": Decimal("3.80"),
                        "total": Decimal("23.80"), "placed_at": at, "created_at": at, "updated_at": at,
                    })
                    items.append({"order_id": oid, "position": 0, "org_id": ORG, "sku": "SKU-1", "name": "Thing",
                                  "quantity": 2, "unit_price": Decimal("10.00"), "tax_rate": Decimal("0.19")})
                conn.execute(insert(Order), rows)
                conn.execute(insert(OrderItem), items)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE orders")
            conn.exec_driver_sql("ANALYZE order_items")
        log(f"seeded in {time.perf_counter() - started:.1f} s")
    with engine.connect() as conn:
        ids = list(conn.scalars(select(Order.id).where(Order.org_id == ORG).order_by(func.random()).limit(5000)))
    engine.dispose()
    return ids


# ------------------------------------------------------------------------------------- servers


def bare_app(url: str):
    """Same engine, SQL and serialisation as the full stack; no auth, RBAC, dependencies or middleware."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from rps_port.api.context import make_api_engine
    from rps_port.api.serializers import order_out
    from rps_port.domain import Order
    from rps_port.services.pagination import page_of, paginate

    engine = make_api_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    app = FastAPI()

    @app.get("/orders")
    async def list_orders(limit: int = 50) -> JSONResponse:
        async with sessions() as session:
            stmt = select(Order).where(Order.org_id == ORG, Order.deleted_at.is_(None))
            page = page_of((await session.scalars(paginate(stmt, Order, None, limit))).all(), limit)
            items = [order_out(o, None).model_dump(mode="json") for o in page.items]
        return JSONResponse({"items": items, "next_cursor": page.next_cursor})

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> JSONResponse:
        async with sessions() as session:
            stmt = select(Order).where(Order.org_id == ORG, Order.deleted_at.is_(None), Order.id == order_id)
            order = await session.scalar(stmt)
            return JSONResponse(order_out(order, None).model_dump(mode="json"))

    return app


def serve(mode: str, url: str, port: int) -> None:
    import logging

    import uvicorn

    if mode == "bare":
        app = bare_app(url)
    else:
        from rps_port.api import app as api_app
        from rps_port.config import load_settings

        if mode == "core":  # the API's own layers only: no seams (middleware, limiter, cutover routing)
            api_app.INSTALLERS.clear()
            api_app.ROUTE_DEPENDENCIES.clear()
            api_app.EXTRA_ROUTERS.clear()
        settings = load_settings()
        app = api_app.create_app(settings)
        if mode == "full":  # as `rps-port serve` does: one JSON access line per request, to a file
            from rps_port.observability.logging import configure_logging

            configure_logging(settings, log_file=Path(tempfile.gettempdir()) / f"api-bench-full-{os.getpid()}.log")
    if mode != "full":
        logging.disable(logging.WARNING)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def start(mode: str, url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "RPS_DATABASE_URL": url,
        "RPS_JWT_SECRET": SECRET,
        "RPS_RATE_LIMIT": "100000000/minute",
        "RPS_RATE_LIMIT_ORG": "1000000000/minute",
        "RPS_LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--url", url, "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/docs", timeout=1)
            return proc, base
        except httpx.TransportError:
            if proc.poll() is not None:
                raise SystemExit(f"{mode} server exited with {proc.returncode}")
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{mode} server did not start")


# ------------------------------------------------------------------------------------- load


def token() -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": "bench", "org": ORG, "roles": ["viewer"], "iss": "portal", "aud": "rps", "iat": now,
              "exp": now + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def drive(base: str, paths: list[str], duration: float, concurrency: int, headers: dict[str, str],
                warmup: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

        async def worker(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                path = random.choice(paths)
                t0 = time.perf_counter()
                r = await client.get(path)
                if record:
                    latencies.append(time.perf_counter() - t0)
                    if r.status_code != 200:
                        errors += 1

        if warmup:
            until = time.perf_counter() + warmup
            await asyncio.gather(*(worker(until, False) for _ in range(concurrency)))
        until = time.perf_counter() + duration
        await asyncio.gather(*(worker(until, True) for _ in range(concurrency)))
    return latencies, errors


def summary(latencies: list[float], errors: int, seconds: float, cpu: float) -> dict:
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / seconds, "p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000,
            "n": len(latencies), "errors": errors, "cpu_ms": cpu * 1000 / len(latencies)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres-admin-url", default=os.environ.get("RPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=6, help="alternations of bare and full per endpoint")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.url, args.port)
        return

    from rich.console import Console
    from rich.table import Table

    url = bench_database(args.postgres_admin_url)
    ids = seed(url, args.orders)
    scenarios = {"GET /orders?limit=50": ["/orders?limit=50"], "GET /orders/{id}": [f"/orders/{i}" for i in ids]}
    results: dict[tuple[str, str], dict] = {}
    stacks = ("bare", "core", "full")
    servers = {mode: start(mode, url) for mode in stacks}
    bearer = {"Authorization": f"Bearer {token()}"}
    headers = {"bare": {}, "core": bearer, "full": bearer}
    # Both servers run all along and the stacks alternate in short rounds, so background load on
    # the machine falls on both alike.
    slice_s = args.duration / args.rounds
    try:
        for name, paths in scenarios.items():
            log(f"{name}: {args.rounds} rounds x {slice_s:.1f} s per stack, {args.concurrency} in flight")
            collected = {mode: ([], 0, 0.0) for mode in servers}
            for round_no in range(args.rounds):
                for mode in (stacks if round_no % 2 == 0 else stacks[::-1]):
                    if round_no == 0:  # warm-up, not measured
                        asyncio.run(drive(servers[mode][1], paths, 2.0, args.concurrency, headers[mode], warmup=0))
                    cpu0 = cpu_seconds(servers[mode][0].pid)
                    lat, err = asyncio.run(drive(servers[mode][1], paths, slice_s, args.concurrency, headers[mode],
                                                 warmup=0))
                    cpu = cpu_seconds(servers[mode][0].pid) - cpu0
                    lat0, err0, cpu_total = collected[mode]
                    collected[mode] = (lat0 + lat, err0 + err, cpu_total + cpu)
            for mode, (lat, err, cpu) in collected.items():
                results[(mode, name)] = summary(lat, err, args.duration, cpu)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=15)
            access_log = Path(tempfile.gettempdir()) / f"api-bench-full-{proc.pid}.log"
            if access_log.exists():
                with access_log.open(encoding="utf-8") as f:
                    log(f"full stack wrote {sum(1 for _ in f):,} JSON log lines")
                access_log.unlink()

    table = Table(title=f"API, {args.orders:,} orders in PostgreSQL, {args.concurrency} in flight, {args.duration:.0f} s each")
    for col in ("endpoint", "stack", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "req/s ratio",
                "CPU ms/req", "CPU ratio", f">= {TARGET_RATIO:.0%}"):
        table.add_column(col, justify="right")
    for name in scenarios:
        bare = results[("bare", name)]
        for mode in stacks:
            r = results[(mode, name)]
            ratio = r["rps"] / bare["rps"]
            cpu_ratio = bare["cpu_ms"] / r["cpu_ms"]  # what throughput would be when the server is CPU-bound
            table.add_row(
                name, mode, f"{r['n']:,}", str(r["errors"]), f"{r['rps']:,.0f}", f"{r['p50']:.1f}", f"{r['p95']:.1f}",
                f"{r['p99']:.1f}", f"{ratio:.2f}" if mode != "bare" else "", f"{r['cpu_ms']:.2f}",
                f"{cpu_ratio:.2f}" if mode != "bare" else "",
                ("yes" if min(ratio, cpu_ratio) >= TARGET_RATIO else "NO") if mode == "full" else "",
            )
    Console(width=200).print(table)
    print("Ratios are against bare. CPU ratio = bare CPU per request / this stack's, i.e. the throughput ratio when\n"
          "the server is CPU-bound. core = the API without the seams (middleware, limiter, cutover routing).")


if __name__ == "__main__":
    main()
