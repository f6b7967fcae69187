"""Shadow runs end to end: the emulator and the new API over the same generated data, over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from rps_port.shadow.corpus import CorpusEntry, org_principal, sample_corpus
from rps_port.shadow.runner import ShadowConfig, run_shadow

from .conftest import free_port, principals


def config(env: Any, corpus: list[CorpusEntry], **kw: Any) -> ShadowConfig:
    return ShadowConfig(legacy_url=env.legacy_url, new_url=env.new_url, corpus=corpus, principals=principals(),
                        source=str(env.data_dir), sql_url=env.db_url, concurrency=4, min_samples=5, **kw)


def test_unchanged_data_with_noise_has_no_mismatches(running: Any) -> None:
    env = running(legacy_kwargs={"noise": True, "noise_touch": ["updatedAt"], "seed": 3})
    corpus = sample_corpus(env.data_dir, 15, seed=1)
    report = run_shadow(config(env, corpus, max_mismatch_rate=0.2))
    assert report.totals.errors == 0, report.errors
    assert report.totals.mismatches == 0, [f"{f.endpoint} {f.path} {f.kind} {f.examples[0]}" for f in report.fingerprints]
    assert report.totals.compared > 20
    # the legacy's touched updatedAt was learned as noise and subtracted
    assert any(n.path.endswith("updated_at") and n.suppressed for n in report.noise)


def _pick(db_url: str) -> dict[str, Any]:
    """Records to plant differences on: live, mapped orders with items, transactions, customers."""
    from rps_port.db import make_engine
    from rps_port.domain import Customer, Order, Transaction

    engine = make_engine(db_url)
    with engine.connect() as conn:
        orders = conn.execute(
            select(Order.id, Order.customer_id, Order.org_id, Order.shipping_address).where(
                Order.deleted_at.is_(None), Order.customer_id.is_not(None)
            ).order_by(Order.id)
        ).all()
        with_items = {r[0] for r in conn.execute(select(Order.id).join(Order.items))}
        orders = [o for o in orders if o.id in with_items]
        txs = conn.execute(
            select(Transaction.id).where(Transaction.deleted_at.is_(None), Transaction.provider_ref.is_not(None))
            .order_by(Transaction.id)
        ).scalars().all()
        customers = conn.execute(
            select(Customer.id).where(Customer.deleted_at.is_(None)).order_by(Customer.id)
        ).scalars().all()
    engine.dispose()
    missing = orders[0]
    return {
        "price": orders[1].id,
        "missing": missing.id,
        "missing_customer": missing.customer_id,
        "missing_org": missing.org_id,
        "status": orders[2].id,
        "rounding": txs[0],
        "logic": txs[1],
        "tz": customers[0],
    }


def _plant(db_url: str, ids: dict[str, Any]) -> None:
    from rps_port.db import make_engine
    from rps_port.domain import Customer, Order, OrderItem, Transaction

    engine = make_engine(db_url)
    with engine.begin() as conn:
        price = conn.execute(select(OrderItem.unit_price).where(OrderItem.order_id == ids["price"],
                                                                OrderItem.position == 0)).scalar_one()
        conn.execute(update(OrderItem).where(OrderItem.order_id == ids["price"], OrderItem.position == 0)
                     .values(unit_price=price + Decimal("1.00")))
        conn.execute(delete(OrderItem).where(OrderItem.order_id == ids["missing"]))
        conn.execute(delete(Order).where(Order.id == ids["missing"]))
        status = conn.execute(select(Order.status).where(Order.id == ids["status"])).scalar_one()
        conn.execute(update(Order).where(Order.id == ids["status"])
                     .values(status="cancelled" if status != "cancelled" else "draft", updated_at=Order.updated_at))
        amount = conn.execute(select(Transaction.amount).where(Transaction.id == ids["rounding"])).scalar_one()
        conn.execute(update(Transaction).where(Transaction.id == ids["rounding"]).values(amount=amount + Decimal("0.01"), updated_at=Transaction.updated_at))
        created = conn.execute(select(Customer.created_at).where(Customer.id == ids["tz"])).scalar_one()
        conn.execute(update(Customer).where(Customer.id == ids["tz"]).values(created_at=created + timedelta(hours=2), updated_at=Customer.updated_at))
    engine.dispose()


def _logic_bug(transaction_id: str) -> Any:
    """Wrap the new API so one transaction's provider_ref comes back changed: same data, other answer."""
    import json

    def wrap(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or not scope["path"].endswith(transaction_id):
                await app(scope, receive, send)
                return
            start: dict[str, Any] = {}

            async def capture(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)
                    return
                body = json.loads(message["body"])
                body["provider_ref"] = body["provider_ref"] + "-v2"
                raw = json.dumps(body).encode()
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(raw)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": raw})

            await app(scope, receive, capture)

        return wrapped

    return wrap


@pytest.mark.parametrize("target_url", ["sqlite", "postgres"], indirect=True)
def test_planted_differences_are_found_fingerprinted_and_labelled(running: Any, target_url: str) -> None:
    ids = _pick(target_url)
    env = running(api_wrapper=_logic_bug(ids["logic"]))
    _plant(env.db_url, ids)
    org_of: dict[str, str] = {}
    from rps_port.legacy.emulator_store import iter_documents, ref

    for collection in ("customers", "orders", "transactions"):
        for doc in iter_documents(env.data_dir, collection):
            if ref(doc.get("_id")) and ref(doc.get("org")):
                org_of[ref(doc["_id"])] = ref(doc["org"])

    def detail(collection: str, key: str) -> CorpusEntry:
        return CorpusEntry("GET", f"/api/{collection}/{ids[key]}", {}, org_principal(org_of[ids[key]]))

    corpus = [
        detail("orders", "price"), detail("orders", "missing"), detail("orders", "status"),
        detail("transactions", "rounding"), detail("transactions", "logic"), detail("customers", "tz"),
        CorpusEntry("GET", "/api/orders", {"customer": ids["missing_customer"], "limit": "100"},
                    org_principal(ids["missing_org"])),
    ]
    background = sample_corpus(env.data_dir, 10, seed=5)
    report = run_shadow(config(env, corpus + background, max_mismatch_rate=0.05))

    found = {(f.endpoint, f.path, f.kind): f for f in report.fingerprints}
    expected = {
        ("GET /api/orders/:id", "items[*].unit_price", "value_changed"): ("price", "data drift"),
        ("GET /api/orders/:id", "(record)", "missing"): ("missing", "data drift"),
        ("GET /api/orders", "data[*]", "missing"): ("missing", "data drift"),
        ("GET /api/orders/:id", "status", "value_changed"): ("status", "data drift"),
        ("GET /api/transactions/:id", "amount", "value_changed"): ("rounding", "data drift"),
        ("GET /api/transactions/:id", "provider_ref", "value_changed"): ("logic", "logic"),
        ("GET /api/customers/:id", "created_at", "value_changed"): ("tz", "data drift"),
    }
    for key, (planted, cause) in expected.items():
        assert key in found, f"{key} not found; got {sorted(found)}"
        fp = found[key]
        assert any(ex.record_id == ids[planted] for ex in fp.examples), (key, fp.examples)
        assert fp.causes.get(cause), (key, fp.causes)
        assert fp.curl["legacy"].startswith("curl ") and fp.curl["new"].startswith("curl ")
        if key[0].endswith(":id"):
            assert fp.curl["legacy"].endswith(f"/api/{key[0].split('/')[2]}/{ids[planted]}'")
    # every difference reported belongs to a planted record: no false positives
    planted_ids = {ids[k] for k in ("price", "missing", "status", "rounding", "logic", "tz")}
    for fp in report.fingerprints:
        assert {ex.record_id for ex in fp.examples} <= planted_ids, fp
    rounding = found[("GET /api/transactions/:id", "amount", "value_changed")].examples[0]
    assert Decimal(str(rounding.new)) - Decimal(str(rounding.legacy)) == Decimal("0.01")
    tz = found[("GET /api/customers/:id", "created_at", "value_changed")].examples[0]
    assert tz.cause_detail and "created_at" in tz.cause_detail  # SQL differs from the source there
    assert report.verdict in ("fail", "inconclusive") and report.exit_code() != 0


def test_legacy_down_gives_errors_not_mismatches(running: Any) -> None:
    env = running()
    corpus = sample_corpus(env.data_dir, 5, seed=2)
    dead = f"http://127.0.0.1:{free_port()}"
    report = run_shadow(ShadowConfig(legacy_url=dead, new_url=env.new_url, corpus=corpus, principals=principals(),
                                     legacy_timeout=2, min_samples=5))
    assert report.totals.mismatches == 0 and report.totals.compared == 0
    assert report.totals.errors == len(corpus)
    assert {e.side for e in report.errors} == {"legacy"}
    assert report.verdict == "inconclusive" and report.exit_code() == 3


def test_flaky_legacy_errors_are_counted_apart(running: Any) -> None:
    env = running(legacy_kwargs={"error_rate": 0.3, "seed": 9})
    corpus = sample_corpus(env.data_dir, 10, seed=3)
    report = run_shadow(config(env, corpus, read_legacy_twice=False))
    assert report.totals.errors > 0
    assert report.totals.mismatches == 0, [(f.endpoint, f.path) for f in report.fingerprints]
    assert report.totals.errors + report.totals.compared + report.totals.unmappable == len(corpus)


def test_writes_are_replayed_once_per_side_only_with_allow_writes(running: Any) -> None:
    from rps_port.legacy.emulator_store import iter_documents, ref

    env = running(legacy_kwargs={"allow_writes": True})
    charge = next(d for d in iter_documents(env.data_dir, "transactions")
                  if d.get("kind") == "charge" and d.get("status") == "succeeded" and ref(d.get("org"))
                  and not d.get("deletedAt") and isinstance(d.get("amount"), object))
    customer = next(d for d in iter_documents(env.data_dir, "customers")
                    if ref(d.get("org")) and not d.get("deletedAt"))
    corpus = [
        CorpusEntry("POST", "/api/orders", {}, org_principal(ref(customer["org"])),
                    {"customer": ref(customer["_id"]), "currency": "EUR", "notes": "shadow",
                     "items": [{"sku": "S1", "name": "Thing", "quantity": 2, "unitPrice": "9.95"}]}),
        CorpusEntry("POST", f"/api/transactions/{ref(charge['_id'])}/refund", {}, org_principal(ref(charge["org"])),
                    {"amount": "1.00", "reason": "shadow"}),
    ]
    skipped = run_shadow(config(env, corpus))
    assert skipped.totals.requests == 0 and len(skipped.skipped) == 2
    assert all("--allow-writes" in s for s in skipped.skipped)

    report = run_shadow(config(env, corpus, allow_writes=True))
    by = {e.endpoint: e for e in report.endpoints}
    assert by["POST /api/orders"].compared == 1 and by["POST /api/transactions/:id/refund"].compared == 1
    # generated fields (ids, numbers, timestamps) are never reported as differences of a write
    paths = {f.path for f in report.fingerprints}
    assert not paths & {"id", "number", "created_at", "updated_at", "provider_ref"}, paths


def test_a_record_changing_on_the_legacy_mid_comparison_is_racy_not_a_mismatch(running: Any) -> None:
    """The legacy answers twice with a status the new side no longer has (a write in flight), then,
    when re-read after the difference is seen, with the committed one: `racy`."""
    import json

    from rps_port.legacy.emulator import create_legacy_app
    from rps_port.legacy.emulator_store import iter_documents, ref

    from .conftest import SECRET, ServerThread

    env = running()
    doc = next(d for d in iter_documents(env.data_dir, "orders")
               if ref(d.get("org")) and not d.get("deletedAt") and d.get("status") != "cancelled")
    target = f"/api/orders/{ref(doc['_id'])}"
    inner = create_legacy_app(env.data_dir, jwt_secret=SECRET)
    seen = {"n": 0}

    async def legacy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != target:
            await inner(scope, receive, send)
            return
        seen["n"] += 1
        stale = seen["n"] <= 2
        start: dict[str, Any] = {}

        async def patch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body = json.loads(message["body"])
            if stale:
                body["status"] = "cancelled"
            raw = json.dumps(body).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(raw)).encode())]})
            await send({"type": "http.response.body", "body": raw})

        await inner(scope, receive, patch)

    with ServerThread(legacy) as server:
        corpus = [CorpusEntry("GET", target, {}, org_principal(ref(doc["org"])))]
        report = run_shadow(ShadowConfig(legacy_url=server.url, new_url=env.new_url, corpus=corpus,
                                         principals=principals(), min_samples=1))
    assert seen["n"] == 3  # legacy, legacy again (noise), re-read after the difference
    [e] = report.endpoints
    assert (e.racy, e.mismatches, e.compared) == (1, 0, 0)
    assert report.fingerprints == []


def test_noise_read_can_go_to_a_second_legacy_instance(running: Any) -> None:
    from rps_port.legacy.emulator import create_legacy_app

    from .conftest import SECRET, ServerThread

    env = running(legacy_kwargs={"noise": True, "noise_touch": ["updatedAt"], "seed": 5})
    second = create_legacy_app(env.data_dir, jwt_secret=SECRET, noise=True, noise_touch=["updatedAt"], seed=6)
    with ServerThread(second) as secondary:
        corpus = sample_corpus(env.data_dir, 5, seed=8)
        report = run_shadow(config(env, corpus, legacy_secondary_url=secondary.url))
    assert report.totals.mismatches == 0 and report.totals.errors == 0
    assert report.totals.noise_suppressed > 0  # the touched updatedAt was learned from the second instance


def test_reads_to_the_new_side_ask_a_routed_app_for_the_new_routers(running: Any) -> None:
    """Against an app with cutover routing, a read without `X-RPS-Serve: new` would be proxied to legacy."""
    seen: list[tuple[str, str | None]] = []

    def recording(app: Any) -> Any:
        async def asgi(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                seen.append((scope["method"], (headers.get(b"x-rps-serve") or b"").decode() or None))
            await app(scope, receive, send)
        return asgi

    env = running(api_wrapper=recording)
    report = run_shadow(config(env, sample_corpus(env.data_dir, 4, seed=5), read_legacy_twice=False))
    assert report.totals.compared > 0
    reads = [serve for method, serve in seen if method == "GET"]
    assert reads and set(reads) == {"new"}
