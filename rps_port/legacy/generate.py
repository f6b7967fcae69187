"""`generate()`: write a synthetic legacy RPS database as mongodump and/or mongoexport would, plus a manifest.

Customers are produced in creation order; each customer's orders and transactions are written right
after it, so only that one customer's references are ever in memory (bounded memory at any size).
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from rps_port.legacy.documents import DocumentFactory
from rps_port.legacy.export_worker import JsonExportWorker
from rps_port.legacy.manifest import IDS_NAME, MANIFEST_NAME, Manifest, Tally, rates_table
from rps_port.legacy.quirks import COLLECTIONS
from rps_port.legacy.writers import CollectionWriter, collection_metadata

GENERATOR_VERSION = "1"
DEFAULT_SECRET = "rps-legacy-test-secret"  # the Settings default `legacy_secret`
FORMATS = ("bson", "json", "both")
ORDERS_PER_CUSTOMER = 4.08  # 0..8 uniform, plus soft-deleted duplicates
TRANSACTIONS_PER_CUSTOMER = 6.0  # 2..10 uniform
PARALLEL_JSON_MIN_CUSTOMERS = 2_000  # below this, starting a process costs more than it saves

# Secondary indexes the legacy app declares (mongodump lists them in <collection>.metadata.json).
INDEXES = {
    "customers": [
        {"key": {"org": 1, "createdAt": -1}, "name": "org_1_createdAt_-1"},
        {"key": {"org": 1, "email": 1}, "name": "org_1_email_1"},
    ],
    "orders": [
        {"key": {"org": 1, "number": 1}, "name": "org_1_number_1"},
        {"key": {"org": 1, "customer": 1}, "name": "org_1_customer_1"},
    ],
    "transactions": [
        {"key": {"provider": 1, "providerRef": 1}, "name": "provider_1_providerRef_1", "unique": True},
        {"key": {"order": 1}, "name": "order_1"},
    ],
}

MONEY_RULES = {
    "line": "quantity * unitPrice - discount (discount is an absolute amount for the line; absent = 0)",
    "subtotal": "sum of lines",
    "tax": "sum over items of round_half_even(line * taxRate, currency minor unit); items without taxRate add 0",
    "total": "subtotal + tax; orders before 2019 have totalCents = total in the currency's minor units instead",
    "double": "read as the shortest repr that round-trips, then quantise to the currency's minor unit",
    "minor_units": "ISO 4217 (JPY 0, everything generated here else 2)",
}

Progress = Callable[[int, int], None]


class GenerateError(ValueError):
    """Bad arguments to generate() (named in the message)."""


def expected_documents(customers: int) -> int:
    return round(customers * (1 + ORDERS_PER_CUSTOMER + TRANSACTIONS_PER_CUSTOMER))


def _formats(fmt: str) -> list[str]:
    if fmt not in FORMATS:
        raise GenerateError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return ["bson", "json"] if fmt == "both" else [fmt]


def generate(
    out_dir: str | Path,
    customers: int,
    seed: int = 1,
    fmt: str = "bson",
    progress: Progress | None = None,
    db: str = "rps",
    secret: str = DEFAULT_SECRET,
    *,
    parallel_json: bool | None = None,
) -> Manifest:
    """Write the dataset under `out_dir` and return its manifest (also written to out_dir/manifest.json).

    `parallel_json`: write the export files from a second process (default: when there is more than
    one CPU and at least PARALLEL_JSON_MIN_CUSTOMERS customers). The bytes are the same either way.
    """
    if customers < 0:
        raise GenerateError(f"customers must be >= 0, got {customers}")
    if not db or "/" in db or db in (".", ".."):
        raise GenerateError(f"db must be a plain directory name, got {db!r}")
    formats = _formats(fmt)
    out = Path(out_dir)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # a manifest is only present for a complete dataset
    files: dict[str, dict[str, str]] = {}
    if "bson" in formats:
        (out / db).mkdir(parents=True, exist_ok=True)
        files["bson"] = {c: f"{db}/{c}.bson" for c in COLLECTIONS}
        files["metadata"] = {c: f"{db}/{c}.metadata.json" for c in COLLECTIONS}
    else:
        for c in COLLECTIONS:
            for suffix in (".bson", ".metadata.json"):
                (out / db / f"{c}{suffix}").unlink(missing_ok=True)
    if "json" in formats:
        (out / "export").mkdir(parents=True, exist_ok=True)
        files["json"] = {c: f"export/{c}.json" for c in COLLECTIONS}
    else:
        # A previous run's export would no longer match the dump; only our own file names are removed.
        for c in COLLECTIONS:
            (out / "export" / f"{c}.json").unlink(missing_ok=True)

    factory = DocumentFactory(seed, customers, secret)
    meta_rng = random.Random(f"metadata:{seed}")
    if "bson" in formats:
        for c in COLLECTIONS:
            uuid_hex = meta_rng.getrandbits(128).to_bytes(16, "big").hex()
            (out / files["metadata"][c]).write_text(
                collection_metadata(c, uuid_hex, INDEXES[c]) + "\n", encoding="utf-8"
            )

    tally = Tally()
    expected = expected_documents(customers)
    written = 0
    step = max(1, customers // 200)
    if parallel_json is None:
        parallel_json = customers >= PARALLEL_JSON_MIN_CUSTOMERS and (os.cpu_count() or 1) > 1
    with ExitStack() as stack:
        worker = None
        if parallel_json and "json" in files:
            worker = stack.enter_context(JsonExportWorker({c: out / files["json"][c] for c in COLLECTIONS}))
        writers = {
            c: stack.enter_context(
                CollectionWriter(
                    out / files["bson"][c] if "bson" in files else None,
                    out / files["json"][c] if "json" in files and worker is None else None,
                    json_sink=functools.partial(worker.add, c) if worker is not None else None,
                )
            )
            for c in COLLECTIONS
        }
        for index in range(customers):
            if progress is not None and index % step == 0:
                written = sum(w.count for w in writers.values())
                progress(written, max(expected, written))
            planted, cust = factory.customer(index)
            writers["customers"].write(planted.doc)
            tally.add("customers", planted)
            if planted.reject:
                # References never point at a rejected document: the only broken references are
                # the planted dangling ones, so an ETL's warnings match the manifest exactly.
                continue
            order_refs = []
            for order, ref in factory.orders_for(cust):
                writers["orders"].write(order.doc)
                tally.add("orders", order)
                if ref is not None and order.reject is None:
                    order_refs.append(ref)
            for tx in factory.transactions_for(cust, order_refs):
                writers["transactions"].write(tx.doc)
                tally.add("transactions", tx)
        written = sum(w.count for w in writers.values())
    if progress is not None:
        progress(written, written)

    (out / IDS_NAME).write_text(json.dumps(tally.ids_document(), separators=(",", ":")) + "\n", encoding="utf-8")
    manifest = Manifest(
        seed=seed,
        customers_requested=customers,
        db=db,
        formats=formats,
        generator_version=GENERATOR_VERSION,
        files=files,
        collections=tally.stats,
        quirks=tally.quirks,
        rates=rates_table(),
        orgs=[
            {
                "id": str(o.id),
                "name": o.name,
                "clients": [{"id": str(c), "projects": [str(p) for p in ps]} for c, ps in o.clients],
            }
            for o in factory.orgs
        ],
        encryption={
            "scheme": "enc:v1 (AES-256-CBC, PKCS#7, key = SHA-256 of RPS_LEGACY_SECRET)",
            "fields": ["customers.taxId", "transactions.card.last4"],
            "secret_is_settings_default": secret == DEFAULT_SECRET,
        },
        money_rules=MONEY_RULES,
    )
    manifest.write(out)
    return manifest
