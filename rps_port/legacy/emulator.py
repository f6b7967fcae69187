"""A stand-in for the legacy RPS REST API (CONTRACT.md), served from a generated dump.

`create_legacy_app(data_dir, ...)` returns a Starlette app that answers like the Node.js +
Mongoose service: the `{"data", "page", "limit", "total"}` envelope sorted by `createdAt`
descending (MongoDB's mixed-type order: Dates, then strings, then numbers, then missing), 404
`{"error": "not_found"}`, soft-deleted documents excluded, documents serialised exactly as stored
(see `emulator_json`). Callers authenticate with the portal JWT (HS256, the shared secret); like
the legacy app, the emulator trusts the token's `org` claim and nothing else.

Test knobs: `noise` adds a random request id and the server time to every answer, `noise_touch`
rewrites the named fields to "now" on every read (a legacy that touches documents when reading),
`latency_ms` / `error_rate` / `timeout_rate` inject faults. Writes (`POST /api/orders`,
`POST /api/transactions/:id/refund`) change memory only and need `allow_writes`.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rps_port.ids import new_object_id, normalize_object_id
from rps_port.legacy.emulator_json import dumps
from rps_port.legacy.emulator_store import LegacyStore, ref
from rps_port.money import quantize

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LIST_FILTERS = {
    "customers": ("status",),
    "orders": ("status", "customer"),
    "transactions": ("order", "customer", "kind"),
}


@dataclass
class EmulatorOptions:
    jwt_secret: str
    noise: bool = False
    noise_touch: tuple[str, ...] = ()
    latency_ms: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    allow_writes: bool = False
    seed: int | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        for name in ("error_rate", "timeout_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if not self.jwt_secret:
            raise ValueError("the emulator needs the portal's HS256 secret (RPS_JWT_SECRET or --jwt-secret)")
        self.rng = random.Random(self.seed)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json; charset=utf-8", headers=headers)


def _error(status: int, code: str) -> Response:
    return _json({"error": code}, status)


class _FaultMiddleware:
    """Latency, 5xx and hangs on `/api/*`, drawn from the seeded RNG (health checks are exempt)."""

    def __init__(self, app: ASGIApp, options: EmulatorOptions) -> None:
        self.app = app
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        opts = self.options
        if opts.latency_ms:
            await asyncio.sleep(opts.latency_ms / 1000.0)
        draw = opts.rng.random()
        if draw < opts.timeout_rate:
            await asyncio.sleep(opts.timeout_seconds)
            await _error(504, "timeout")(scope, receive, send)
            return
        if draw < opts.timeout_rate + opts.error_rate:
            await _error(500, "internal")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Handlers:
    def __init__(self, store: LegacyStore, options: EmulatorOptions) -> None:
        self.store = store
        self.options = options

    # -- auth and output ---------------------------------------------------------------------

    def _org(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(
                token,
                self.options.jwt_secret,
                algorithms=["HS256"],
                options={"verify_aud": False, "verify_iss": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            return None
        return normalize_object_id(claims.get("org"))

    def _noise(self) -> dict[str, str]:
        if not self.options.noise:
            return {}
        return {
            "requestId": uuid.UUID(int=self.options.rng.getrandbits(128)).hex,
            "serverTime": datetime.now(UTC).isoformat(timespec="microseconds"),
        }

    def _present(self, doc: dict[str, Any]) -> dict[str, Any]:
        if not self.options.noise_touch:
            return doc
        doc = dict(doc)
        now = datetime.now(UTC)
        for name in self.options.noise_touch:
            doc[name] = now
        return doc

    def _reply(self, body: Any, status: int = 200) -> Response:
        noise = self._noise()
        headers = {"X-Request-Id": noise["requestId"], "X-Server-Time": noise["serverTime"]} if noise else None
        if noise and isinstance(body, dict):
            body = {**body, **noise}
        return _json(body, status, headers)

    # -- reads -------------------------------------------------------------------------------

    async def list_docs(self, request: Request) -> Response:
        collection = request.path_params["collection"]
        if collection not in LIST_FILTERS:
            return _error(404, "not_found")
        org = self._org(request)
        if org is None:
            return _error(401, "unauthorized")
        try:
            page = int(request.query_params.get("page", "1"))
            limit = int(request.query_params.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return _error(400, "bad_request")
        if page < 1 or limit < 1:
            return _error(400, "bad_request")
        limit = min(limit, MAX_LIMIT)
        filters = {k: request.query_params[k] for k in LIST_FILTERS[collection] if k in request.query_params}
        docs = self.store.find(collection, org, filters)
        window = docs[(page - 1) * limit : page * limit]
        return self._reply(
            {"data": [self._present(d) for d in window], "page": page, "limit": limit, "total": len(docs)}
        )

    async def get_doc(self, request: Request) -> Response:
        collection = request.path_params["collection"]
        if collection not in LIST_FILTERS:
            return _error(404, "not_found")
        org = self._org(request)
        if org is None:
            return _error(401, "unauthorized")
        doc_id = normalize_object_id(request.path_params["id"])
        doc = self.store.get(collection, doc_id, org) if doc_id else None
        if doc is None:
            return _error(404, "not_found")
        return self._reply(self._present(doc))

    async def health(self, request: Request) -> Response:
        return _json({"ok": True, "counts": self.store.counts()})

    # -- writes (memory only) ----------------------------------------------------------------

    async def create_order(self, request: Request) -> Response:
        if not self.options.allow_writes:
            return _error(405, "read_only")
        org = self._org(request)
        if org is None:
            return _error(401, "unauthorized")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad_request")
        try:
            doc = self._new_order(org, body)
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return _error(400, "validation_failed")
        self.store.collections["orders"].insert_sorted(doc)
        return _json(doc, 201)

    def _new_order(self, org: str, body: dict[str, Any]) -> dict[str, Any]:
        from bson import Decimal128, ObjectId

        customer = ref(body["customer"])
        currency = str(body["currency"]).upper()
        if customer is None or len(currency) != 3 or not body.get("items"):
            raise ValueError("customer, currency and items are required")
        items, subtotal, tax = [], Decimal(0), Decimal(0)
        for raw in body["items"]:
            qty = int(raw["quantity"])
            price = Decimal(str(raw["unitPrice"]))
            discount = Decimal(str(raw.get("discount") or 0))
            rate = Decimal(str(raw.get("taxRate") or 0))
            if qty < 1 or price < 0:
                raise ValueError("bad item")
            line = quantize(price * qty - discount, currency)
            subtotal += line
            tax += quantize(line * rate, currency)
            item = {"sku": str(raw["sku"]), "name": str(raw["name"]), "quantity": qty,
                    "unitPrice": Decimal128(price)}
            if raw.get("discount") is not None:
                item["discount"] = Decimal128(discount)
            if raw.get("taxRate") is not None:
                item["taxRate"] = Decimal128(rate)
            items.append(item)
        now = _now_ms()
        customer_doc = self.store.collections["customers"].by_id.get(customer)
        doc: dict[str, Any] = {
            "_id": ObjectId(new_object_id()),
            "org": ObjectId(org),
            "number": self.store.next_order_number(now.year),
            "customer": ObjectId(customer),
            "status": "draft",
            "currency": currency,
            "items": items,
            "subtotal": Decimal128(quantize(subtotal, currency)),
            "tax": Decimal128(quantize(tax, currency)),
            "total": Decimal128(quantize(subtotal + tax, currency)),
            "placedAt": None,
            "notes": body.get("notes") or "",
            "deletedAt": None,
            "createdAt": now,
            "updatedAt": now,
            "__v": 0,
        }
        if customer_doc is not None:
            for key in ("client", "project"):
                if customer_doc.get(key) is not None:
                    doc[key] = customer_doc[key]
        return doc

    async def refund(self, request: Request) -> Response:
        from bson import Decimal128, ObjectId

        if not self.options.allow_writes:
            return _error(405, "read_only")
        org = self._org(request)
        if org is None:
            return _error(401, "unauthorized")
        doc_id = normalize_object_id(request.path_params["id"])
        charge = self.store.get("transactions", doc_id, org) if doc_id else None
        if charge is None:
            return _error(404, "not_found")
        if charge.get("kind") != "charge" or charge.get("status") != "succeeded":
            return _error(409, "not_refundable")
        try:
            body = await request.json() if await request.body() else {}
            charged = _decimal(charge.get("amount"))
            refunded = sum(
                (_decimal(t.get("amount")) for t in self._refunds_of(charge)), Decimal(0)
            )
            remaining = charged - refunded
            amount = Decimal(str(body["amount"])) if body.get("amount") is not None else remaining
        except (ValueError, InvalidOperation, TypeError):
            return _error(400, "validation_failed")
        currency = str(charge.get("currency") or "").upper()
        if amount <= 0 or amount > remaining:
            return _error(422, "amount_exceeds_refundable")
        now = _now_ms()
        doc = {
            "_id": ObjectId(new_object_id()),
            "org": charge["org"],
            "order": charge.get("order"),
            "customer": charge.get("customer"),
            "kind": "refund",
            "status": "succeeded",
            "amount": Decimal128(quantize(amount, currency)),
            "currency": currency,
            "provider": charge.get("provider"),
            "providerRef": f"re_{uuid.uuid4().hex[:24]}",
            "card": None,
            "processedAt": now,
            "meta": {"refundOf": charge["_id"], "reason": body.get("reason")},
            "deletedAt": None,
            "createdAt": now,
            "updatedAt": now,
            "__v": 0,
        }
        for key in ("client", "project"):
            if charge.get(key) is not None:
                doc[key] = charge[key]
        self.store.collections["transactions"].insert_sorted(doc)
        return _json(doc, 201)

    def _refunds_of(self, charge: dict[str, Any]) -> list[dict[str, Any]]:
        charge_id = ref(charge["_id"])
        return [
            t
            for t in self.store.collections["transactions"].by_id.values()
            if t.get("kind") == "refund"
            and t.get("deletedAt") is None
            and isinstance(t.get("meta"), dict)
            and ref(t["meta"].get("refundOf")) == charge_id
        ]


def _decimal(value: Any) -> Decimal:
    from bson import Decimal128

    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def create_legacy_app(
    data_dir: str | Path,
    *,
    jwt_secret: str | None = None,
    noise: bool = False,
    noise_touch: tuple[str, ...] | list[str] = (),
    latency_ms: float = 0.0,
    error_rate: float = 0.0,
    timeout_rate: float = 0.0,
    timeout_seconds: float = 30.0,
    allow_writes: bool = False,
    seed: int | None = None,
    store: LegacyStore | None = None,
) -> Starlette:
    """The legacy RPS REST API over the dump in `data_dir` (or an already loaded `store`)."""
    if jwt_secret is None:
        from rps_port.config import get_settings

        secret = get_settings().jwt_secret
        jwt_secret = secret.get_secret_value() if secret else ""
    options = EmulatorOptions(
        jwt_secret=jwt_secret,
        noise=noise,
        noise_touch=tuple(noise_touch),
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        timeout_seconds=timeout_seconds,
        allow_writes=allow_writes,
        seed=seed,
    )
    handlers = _Handlers(store or LegacyStore(data_dir), options)
    app = Starlette(
        routes=[
            Route("/health", handlers.health),
            Route("/api/orders", handlers.create_order, methods=["POST"]),
            Route("/api/transactions/{id}/refund", handlers.refund, methods=["POST"]),
            Route("/api/{collection}", handlers.list_docs, methods=["GET", "HEAD"]),
            Route("/api/{collection}/{id}", handlers.get_doc, methods=["GET", "HEAD"]),
        ],
        middleware=[Middleware(_FaultMiddleware, options=options)],
    )
    app.state.store = handlers.store
    app.state.options = options
    return app


__all__ = ["EmulatorOptions", "LegacyStore", "create_legacy_app"]
