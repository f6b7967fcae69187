"""Outbox relay throughput (events/s to Redis Streams and to SQS on moto's server) and
commit-to-publish latency percentiles.

    .venv/bin/python benchmarks/outbox_bench.py [--database-url postgresql://...] [--events 5000]
        [--redis-url redis://127.0.0.1:6379/15] [--rate 200] [--seconds 5] [--batch-size 100]

Throughput: `--events` outbox rows (one transaction per 500, 50 aggregates) are drained by one
relay with `--batch-size`; the clock covers claim + publish + mark + commit. Latency: a producer
commits one event per transaction at `--rate`/s for `--seconds` while a relay polls
(`--poll` s); latency = publish time - the event's created_at (stamped in the committing
transaction). Default database: a fresh SQLite file; pass --database-url for PostgreSQL (a
database this script may fill; its outbox table is emptied first). Redis: a real server
(the stream `rps-bench` is deleted first). SQS: moto's server mode on a free localhost
port (a moto_server subprocess), FIFO and standard queues, boto3 over HTTP.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import delete

from rps_port import schema
from rps_port.db import make_engine, session_scope
from rps_port.outbox.brokers.redis_streams import RedisStreamsBroker
from rps_port.outbox.brokers.sqs import SQSBroker
from rps_port.outbox.models import OutboxEvent, emit
from rps_port.outbox.relay import Relay

ORG = "5f0000000000000000000001"
# Baselines this machine class (2 cores) should meet; a regression shows as "below".
# SQS on moto is bounded by moto itself (its in-memory queue, one Python process), so the SQS
# rows are held against what boto3 alone reaches on the same server (the "ceiling" row).
BASELINES = {"redis": 1500.0, "sqs_vs_ceiling": 0.8, "p95_ms": 250.0}


def fill(engine, n: int) -> None:
    with session_scope(engine) as s:
        s.execute(delete(OutboxEvent))
    for start in range(0, n, 500):
        with session_scope(engine) as s:
            for i in range(start, min(n, start + 500)):
                emit(s, aggregate_type="order", aggregate_id=f"agg{i % 50}", event_type="order.paid",
                     payload={"order_id": f"agg{i % 50}", "total": "19.99", "currency": "USD", "i": i}, org_id=ORG)


def throughput(engine, broker, n: int, batch: int) -> float:
    fill(engine, n)
    relay = Relay(engine, broker, batch_size=batch)
    started = time.perf_counter()
    published = relay.drain()
    elapsed = time.perf_counter() - started
    assert published == n, (published, n)
    return n / elapsed


class Drainer:
    """A consumer deleting what arrives, so the queue stays shallow as it does with live workers
    (moto's in-memory queue costs O(depth) per send; an undrained queue measures moto, not us)."""

    def __init__(self, sqs, queue: str) -> None:
        self.sqs, self.queue, self.stop = sqs, queue, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if got:
                self.sqs.delete_message_batch(QueueUrl=self.queue, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
            else:
                time.sleep(0.01)

    def __enter__(self) -> Drainer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def latency(engine, broker, rate: float, seconds: float, poll: float, batch: int) -> list[float]:
    with session_scope(engine) as s:
        s.execute(delete(OutboxEvent))
    lat: list[float] = []

    def record(messages) -> None:
        now = datetime.now(UTC)
        for m in messages:
            created = datetime.fromisoformat(m["created_at"].replace("Z", "+00:00"))
            lat.append((now - created).total_seconds() * 1000)

    relay = Relay(engine, broker, batch_size=batch, on_published=record)
    stop = threading.Event()
    t = threading.Thread(target=relay.run_forever, kwargs={"poll_interval": poll, "stop": stop.is_set}, daemon=True)
    t.start()
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        with session_scope(engine) as s:
            emit(s, aggregate_type="order", aggregate_id=f"agg{i % 50}", event_type="order.paid", payload={"i": i}, org_id=ORG)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    deadline = time.monotonic() + 10
    while len(lat) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(5)
    return lat


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url")
    ap.add_argument("--redis-url", default=os.environ.get("RPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--poll", type=float, default=0.05)
    args = ap.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='rps-outbox-bench-')}/bench.db"
    schema.upgrade(url, "heads")
    engine = make_engine(url)
    rows: list[tuple[str, str, str, str]] = []

    redis_broker = RedisStreamsBroker(args.redis_url, stream="rps-bench")
    redis_broker.redis.delete("rps-bench")
    redis_rate = throughput(engine, redis_broker, args.events, args.batch_size)
    rows.append(("relay -> Redis Streams", f"{redis_rate:,.0f} ev/s", f">= {BASELINES['redis']:,.0f}",
                 "below" if redis_rate < BASELINES["redis"] else ""))

    import subprocess
    import sys
    from pathlib import Path

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # moto in its own process, so it does not share this one's GIL with the relay
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    fifo = sqs.create_queue(QueueName="bench.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    std = sqs.create_queue(QueueName="bench")["QueueUrl"]
    sqs_events = max(500, args.events // 5)
    # The ceiling: boto3 alone, the same batches of 10 to a drained standard queue, no database.
    raw = sqs.create_queue(QueueName="bench-raw")["QueueUrl"]
    with Drainer(boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1"), raw):
        body = "x" * 300
        started = time.perf_counter()
        for b in range(sqs_events // 10):
            sqs.send_message_batch(QueueUrl=raw, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)])
        ceiling_rate = sqs_events / (time.perf_counter() - started)
    rows.append(("boto3 alone -> SQS on moto (ceiling)", f"{ceiling_rate:,.0f} ev/s", "", "standard queue, no relay, no database"))

    for name, queue in (("sqs-fifo", fifo), ("sqs-standard", std)):
        with Drainer(boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1"), queue):
            rate = throughput(engine, SQSBroker(queue, endpoint_url=endpoint, client=sqs), sqs_events, args.batch_size)
        floor = BASELINES["sqs_vs_ceiling"] * ceiling_rate
        rows.append((f"relay -> SQS on moto ({name.split('-')[1]})", f"{rate:,.0f} ev/s", f">= {floor:,.0f}",
                     "below" if rate < floor else ""))

    for name, broker in (("Redis Streams", redis_broker), ("SQS FIFO on moto", SQSBroker(fifo, endpoint_url=endpoint, client=sqs))):
        drain = Drainer(boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1"), fifo) if "SQS" in name else None
        if drain:
            drain.__enter__()
        lat = latency(engine, broker, args.rate, args.seconds, args.poll, args.batch_size)
        if drain:
            drain.__exit__()
        bound = f"p95 <= {BASELINES['p95_ms']:.0f} ms" if "Redis" in name else "(moto-bound)"
        rows.append((f"commit -> publish, {name}", f"p50 {pct(lat, 50):.1f} / p95 {pct(lat, 95):.1f} / p99 {pct(lat, 99):.1f} ms",
                     bound, f"{len(lat)} events at {args.rate:.0f}/s, poll {args.poll}s"))
    server.terminate()
    server.wait(10)

    backend = "PostgreSQL" if not url.startswith("sqlite") else "SQLite"
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    print(f"outbox relay benchmark - {backend}, batch {args.batch_size}, {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<34}  {'baseline':<16}  note")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:<34}  {r[2]:<16}  {r[3]}")


if __name__ == "__main__":
    main()
