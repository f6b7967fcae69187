"""ETL backfill throughput into PostgreSQL, side by side with its baselines.

    .venv/bin/python benchmarks/etl_bench.py [--customers 100000] [--postgres-admin-url URL]
        [--baseline-docs 150000] [--only etl,orm,dlt,copy] [--data DIR]

Generates a legacy dataset of N customers (about 11 documents per customer; kept under --data and
reused when its manifest matches) and loads it into fresh PostgreSQL databases, each variant in its
own process so its peak RSS is its own:

- etl:  `rps_port.etl.run_backfill` (mapping, COPY into a staging table + one upsert per batch,
        checkpoints, rejects, reconciliation) over the whole dataset.
- etl-workers: the same backfill with its `_id` ranges on the process executor, one worker process
        per core (`rps-port etl run --executor process`).
- orm:  a naive SQLAlchemy ORM loop: the same mapping, then one ORM object per document (children
        as related objects), `session.add`, commit every 1,000 documents.
- dlt:  dlt (`pipeline.run`, postgres destination) loading the same mapped rows (parents and child
        rows routed to their tables), its own normalise and load steps.
- copy: the floor: `COPY ... FROM` files holding the final, already-flattened rows (exported from
        the etl variant's database) into empty tables.

orm and dlt are slow, so by default they load the first --baseline-docs documents (in collection
order, all collections in proportion) and their documents/s is compared: the rate is what matters.
Prints documents/s, seconds, the variant's own CPU seconds (client side; robust to a busy machine, but
excluding the PostgreSQL server's work), the local PostgreSQL server's CPU seconds and the machine's
idle core-seconds while it ran (sampled from /proc; "-" elsewhere), and peak RSS per variant, and
the ratios the issue asks for (etl >= 10x orm, >= 5x dlt, within 2.5x of copy). Run with
--customers 10000 and 100000 to compare the ETL's peak RSS (it must not grow with N).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLLECTIONS = ("customers", "orders", "transactions")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- databases


def _admin(url: str) -> Any:
    from sqlalchemy import create_engine

    from rps_port.db import sync_url

    return create_engine(sync_url(url), isolation_level="AUTOCOMMIT")


def fresh_database(admin_url: str, label: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from rps_port import schema
    from rps_port.db import sync_url

    name = f"etl_bench_{label}_{uuid.uuid4().hex[:6]}"
    engine = _admin(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = make_url(sync_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    schema.upgrade(url)
    return url


def drop_database(admin_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    engine = _admin(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


# --------------------------------------------------------------------------- variants (child processes)


def _docs(data: Path, limit: int | None) -> Any:
    """(collection, document) in load order; with a limit, each collection contributes its share."""
    from rps_port.etl.sources import open_source

    src = open_source(data)
    totals = {c: src.stats(c).count for c in COLLECTIONS}
    grand = sum(totals.values())
    for coll in COLLECTIONS:
        share = None if limit is None else max(1, round(limit * totals[coll] / grand))
        for i, (_pos, doc) in enumerate(src.scan(coll)):
            if share is not None and i >= share:
                break
            yield coll, doc


def variant_etl(data: Path, url: str, _limit: int | None) -> int:
    from rps_port.db import make_engine
    from rps_port.etl import load_mapping, open_source, run_backfill

    engine = make_engine(url)
    summary = run_backfill(engine, open_source(data), load_mapping(), batch_size=2000)
    assert summary.balanced, summary.as_dict()
    return sum(r.source_total for r in summary.reconciliations)


def variant_etl_workers(data: Path, url: str, _limit: int | None) -> int:
    """The same backfill with its ranges on the process executor, one worker per core (its CLI form:
    `rps-port etl run --executor process`)."""
    from rps_port.db import make_engine
    from rps_port.etl import load_mapping, open_source
    from rps_port.etl.executors import ProcessExecutor, WorkerSpec, run_scaled_backfill

    engine = make_engine(url)
    executor = ProcessExecutor()
    try:
        result = run_scaled_backfill(engine, open_source(data), load_mapping(), WorkerSpec(str(data), url), executor)
    finally:
        executor.close()
    assert result.summary.balanced and not result.failures, result.as_dict()
    return sum(r.source_total for r in result.summary.reconciliations)


def variant_orm(data: Path, url: str, limit: int | None) -> int:
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from rps_port.db import make_engine
    from rps_port.domain.customers import Customer, CustomerAddress
    from rps_port.domain.orders import Order, OrderItem
    from rps_port.domain.transactions import Transaction
    from rps_port.etl import RejectError, load_mapping

    mapping = load_mapping()
    models = {"customers": (Customer, CustomerAddress, "addresses"), "orders": (Order, OrderItem, "items"),
              "transactions": (Transaction, None, None)}
    engine = make_engine(url)
    n = 0
    session = Session(engine)
    for coll, doc in _docs(data, limit):
        n += 1
        try:
            md = mapping.map_document(coll, doc)
        except RejectError:
            continue
        model, child_model, rel = models[coll]
        obj = model(**md.row)
        if child_model is not None:
            setattr(obj, rel, [child_model(**r) for rows in md.children.values() for r in rows])
        session.add(obj)
        if n % 1000 == 0:
            try:
                session.commit()
            except IntegrityError:  # a live-uniqueness clash: the naive loop just drops the batch
                session.rollback()
    session.commit()
    session.close()
    return n


def variant_dlt(data: Path, url: str, limit: int | None) -> int:
    import dlt

    from rps_port.etl import RejectError, load_mapping

    mapping = load_mapping()
    count = {"n": 0}

    def rows():
        for coll, doc in _docs(data, limit):
            count["n"] += 1
            try:
                md = mapping.map_document(coll, doc)
            except RejectError:
                continue
            yield dlt.mark.with_table_name(md.row, md.table)
            for table, children in md.children.items():
                for child in children:
                    yield dlt.mark.with_table_name(child, table)

    from sqlalchemy.engine import make_url

    u = make_url(url)
    if not u.password:  # dlt insists on a password; a trust-auth server ignores it
        u = u.set(password="unused")
    creds = u.set(drivername="postgresql").render_as_string(hide_password=False)
    pipeline = dlt.pipeline(
        pipeline_name=f"etl_bench_{uuid.uuid4().hex[:6]}",
        destination=dlt.destinations.postgres(credentials=creds),
        dataset_name="legacy",
        pipelines_dir=tempfile.mkdtemp(prefix="dlt-bench-"),
    )
    pipeline.run(dlt.resource(rows, name="legacy", write_disposition="append"))
    return count["n"]


def variant_copy(data: Path, url: str, _limit: int | None) -> int:
    """COPY FROM files of final rows (written beforehand by the parent from the etl database)."""
    import psycopg

    files = json.loads(os.environ["ETL_BENCH_COPY_FILES"])
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn, conn.cursor() as cur:
        for table, path in files.items():
            with open(path, "rb") as fh, cur.copy(f'COPY "{table}" FROM STDIN') as copy:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
    return int(os.environ["ETL_BENCH_DOCS"])


VARIANTS = {"etl": variant_etl, "etl-workers": variant_etl_workers, "orm": variant_orm, "dlt": variant_dlt, "copy": variant_copy}


def child_main(variant: str, data: Path, url: str, limit: int | None) -> None:
    started = time.perf_counter()
    docs = VARIANTS[variant](data, url, limit)
    seconds = time.perf_counter() - started
    cpu = sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
    # Worker processes have their own peak RSS: the larger of this process and its largest child.
    rss = max(peak_rss_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print(json.dumps({"variant": variant, "documents": docs, "seconds": seconds, "peak_rss_mb": rss,
                      "client_cpu_s": cpu}))


# --------------------------------------------------------------------------- parent


def run_child(variant: str, data: Path, url: str, limit: int | None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One variant in its own process, with the local PostgreSQL server's CPU and the idle cores
    sampled meanwhile (the child's numbers cover only the client side)."""
    from procstat import CpuSampler

    cmd = [sys.executable, __file__, "--child", variant, "--data", str(data), "--url", url]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    with CpuSampler() as cpu:
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["server_cpu_s"], result["idle_core_s"] = cpu.server_cpu_s, cpu.idle_core_s
    return result


def export_final_rows(url: str, out_dir: Path) -> dict[str, str]:
    import psycopg

    from rps_port.etl import load_mapping
    from rps_port.etl.tables import mapping_tables

    files = {}
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn, conn.cursor() as cur:
        for table in mapping_tables(load_mapping()):
            path = out_dir / f"{table}.copy"
            with open(path, "wb") as fh, cur.copy(f'COPY "{table}" TO STDOUT') as copy:
                fh.writelines(copy)
            files[table] = str(path)
    return files


def ensure_data(data: Path, customers: int, seed: int) -> int:
    from rps_port.legacy.generate import generate
    from rps_port.legacy.manifest import Manifest

    manifest = data / "manifest.json"
    if manifest.exists():
        m = Manifest.load(data)
        if m.customers_requested == customers and m.seed == seed:
            return m.total_documents
    log(f"generating {customers:,} customers into {data} ...")
    return generate(data, customers, seed=seed, fmt="bson").total_documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="dataset directory (default: a temp dir per N)")
    parser.add_argument("--postgres-admin-url", default=os.environ.get(
        "RPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--baseline-docs", type=int, default=150_000,
                        help="documents the orm and dlt variants load (0 = all)")
    parser.add_argument("--only", default="etl,etl-workers,orm,dlt,copy")
    parser.add_argument("--child", choices=sorted(VARIANTS))
    parser.add_argument("--url")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()

    if args.child:
        child_main(args.child, args.data, args.url, args.limit)
        return

    os.environ.setdefault("RPS_FIELD_KEYS", "bench1:YmVuY2gtZmllbGQta2V5LTMyLWJ5dGVzLWxvbmchISE=")
    data = args.data or Path(tempfile.gettempdir()) / f"rps-etl-bench-{args.customers}-{args.seed}"
    total = ensure_data(data, args.customers, args.seed)
    wanted = [v.strip() for v in args.only.split(",") if v.strip()]
    limit = args.baseline_docs or None
    results: dict[str, dict[str, Any]] = {}
    etl_url = None
    for variant in ["etl", "etl-workers", "orm", "dlt"]:
        if variant not in wanted and not (variant == "etl" and "copy" in wanted):
            continue
        url = fresh_database(args.postgres_admin_url, variant)
        log(f"{variant}: loading ...")
        try:
            results[variant] = run_child(variant, data, url, None if variant.startswith("etl") else limit)
        except BaseException:
            drop_database(args.postgres_admin_url, url)
            if etl_url:
                drop_database(args.postgres_admin_url, etl_url)
            raise
        log(f"{variant}: {results[variant]}")
        if variant == "etl":
            etl_url = url
        else:
            drop_database(args.postgres_admin_url, url)
    if "copy" in wanted and etl_url:
        with tempfile.TemporaryDirectory(prefix="etl-bench-copy-") as tmp:
            files = export_final_rows(etl_url, Path(tmp))
            url = fresh_database(args.postgres_admin_url, "copy")
            log("copy: loading ...")
            results["copy"] = run_child("copy", data, url, None, {"ETL_BENCH_COPY_FILES": json.dumps(files),
                                                                  "ETL_BENCH_DOCS": str(total)})
            drop_database(args.postgres_admin_url, url)
    if etl_url:
        drop_database(args.postgres_admin_url, etl_url)
    report(args.customers, total, results)


def report(customers: int, total: int, results: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    rate = {k: v["documents"] / v["seconds"] for k, v in results.items()}
    ours = [k for k in ("etl", "etl-workers") if k in rate]
    table = Table(title=f"ETL backfill into PostgreSQL: {customers:,} customers, {total:,} documents "
                        f"({os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f})")
    for col in ("variant", "documents", "seconds", "documents/s", "client CPU s", "docs/CPU-s", "server CPU s",
                "idle core-s", "peak RSS MiB", "etl / etl-workers vs this"):
        table.add_column(col, justify="left" if col == "variant" else "right")

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for name, r in results.items():
        ratio = "" if name in ours else " / ".join(f"{rate[k] / rate[name]:.2f}x" for k in ours)
        cpu = r.get("client_cpu_s") or 0.0
        table.add_row(name, f"{r['documents']:,}", f"{r['seconds']:.1f}", f"{rate[name]:,.0f}", f"{cpu:.1f}",
                      f"{r['documents'] / cpu:,.0f}" if cpu else "-", seconds(r.get("server_cpu_s")),
                      seconds(r.get("idle_core_s")), f"{r['peak_rss_mb']:.0f}", ratio)
    Console(width=150).print(table)
    targets = {"orm": (">=", 10.0), "dlt": (">=", 5.0), "copy": (">=", 1 / 2.5)}
    for mine in ours:
        for name, (_op, target) in targets.items():
            if name in rate:
                got = rate[mine] / rate[name]
                verdict = "met" if got >= target else "NOT met"
                print(f"target {mine}/{name} >= {target:.2f}x: {got:.2f}x -> {verdict}")
    print(json.dumps({"customers": customers, "documents": total, "results": results}))


if __name__ == "__main__":
    main()
