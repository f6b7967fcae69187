"""Request corpora: JSONL of legacy requests, their new-API routes, principals and sampled corpora.

A corpus line: `{"method": "GET", "path": "/api/orders", "query": {"customer": "…", "limit": "50"},
"principal": "ops"}`, where `principal` names an entry of the principals file (claims) or is an
inline claims object. Paths are the legacy's (CONTRACT.md); `route()` maps each to the new API.

List endpoints: the legacy is page-based (`page`, `limit`, `total`), the new API cursor-based.
A legacy page `p` of size `l` is compared with records `(p-1)*l .. p*l-1` of the new API under
the same filters, reached by walking `next_cursor`; records are matched by id (the window as a
set), so the order within a page is not compared and `total` is not compared (the new API has
none).
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rps_port.ids import normalize_object_id

LEGACY_DEFAULT_LIMIT = 20
LEGACY_MAX_LIMIT = 100
# legacy query parameter -> new API query parameter, per resource
QUERY_MAP: dict[str, dict[str, str]] = {
    "customers": {"status": "status"},
    "orders": {"status": "status", "customer": "customer_id"},
    "transactions": {"order": "order_id", "customer": "customer_id", "kind": "kind"},
}
_PATH = re.compile(r"^/api/(customers|orders|transactions)(?:/([^/]+))?(/refund)?/?$")


class CorpusError(ValueError):
    """A corpus line that cannot be replayed; the message names the line and the field."""


@dataclass
class CorpusEntry:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    principal: str | dict[str, Any] | None = None
    body: Any = None

    @property
    def legacy_target(self) -> str:
        return self.path + (f"?{urlencode(self.query)}" if self.query else "")


@dataclass
class Route:
    endpoint: str  # the legacy route template, e.g. "GET /api/orders/:id"
    resource: str
    kind: str  # detail | list | refund | create
    new_path: str
    new_query: dict[str, str]
    record_id: str | None = None
    page: int = 1
    limit: int = LEGACY_DEFAULT_LIMIT

    @property
    def new_target(self) -> str:
        return self.new_path + (f"?{urlencode(self.new_query)}" if self.new_query else "")


def route(entry: CorpusEntry, new_prefix: str = "") -> Route:
    """The new-API request that answers the same question as a legacy request."""
    method = entry.method.upper()
    match = _PATH.match(entry.path)
    if not match:
        raise CorpusError(f"path {entry.path!r} is not a legacy RPS route (CONTRACT.md)")
    resource, raw_id, refund = match.groups()
    prefix = new_prefix.rstrip("/")
    if refund:
        if method != "POST" or resource != "transactions" or not raw_id:
            raise CorpusError(f"{method} {entry.path}: refunds are POST /api/transactions/:id/refund")
        return Route(f"POST /api/{resource}/:id/refund", resource, "refund",
                     f"{prefix}/{resource}/{raw_id}/refund", {}, normalize_object_id(raw_id))
    if raw_id is not None:
        if method not in ("GET", "HEAD"):
            raise CorpusError(f"{method} {entry.path}: the legacy API has no such route")
        return Route(f"{method} /api/{resource}/:id", resource, "detail", f"{prefix}/{resource}/{raw_id}", {},
                     normalize_object_id(raw_id) or raw_id)
    if method == "POST":
        if resource != "orders":
            raise CorpusError(f"POST {entry.path}: the legacy API only creates orders")
        return Route("POST /api/orders", resource, "create", f"{prefix}/orders", {})
    if method not in ("GET", "HEAD"):
        raise CorpusError(f"{method} {entry.path}: the legacy API has no such route")
    new_query: dict[str, str] = {}
    page, limit = 1, LEGACY_DEFAULT_LIMIT
    for key, value in entry.query.items():
        if key == "page":
            page = _positive(value, "page")
        elif key == "limit":
            limit = min(_positive(value, "limit"), LEGACY_MAX_LIMIT)
        elif key in QUERY_MAP[resource]:
            new_query[QUERY_MAP[resource][key]] = str(value)
        else:
            raise CorpusError(f"query parameter {key!r} is not a filter of GET /api/{resource}")
    return Route(f"{method} /api/{resource}", resource, "list", f"{prefix}/{resource}", new_query,
                 page=page, limit=limit)


# Fields a write generates on each side independently: never compared for writes.
WRITE_GENERATED = ("id", "number", "created_at", "updated_at", "placed_at", "processed_at", "provider_ref",
                   "parent_id")
_ITEM_FIELDS = {"sku": "sku", "name": "name", "quantity": "quantity", "unitPrice": "unit_price",
                "discount": "discount", "taxRate": "tax_rate"}


def new_body(r: Route, body: Any) -> Any:
    """The new API's request body for a legacy write body (`POST /api/orders`, refunds)."""
    if not isinstance(body, dict):
        return body
    if r.kind == "create":
        out: dict[str, Any] = {"customer_id": body.get("customer"), "currency": body.get("currency")}
        out["items"] = [{_ITEM_FIELDS[k]: v for k, v in item.items() if k in _ITEM_FIELDS}
                        for item in body.get("items") or [] if isinstance(item, dict)]
        if body.get("notes") is not None:
            out["notes"] = body["notes"]
        return out
    return {k: body[k] for k in ("amount", "reason") if body.get(k) is not None}


def _positive(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CorpusError(f"query parameter {name!r} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise CorpusError(f"query parameter {name!r} must be a positive integer, got {value!r}")
    return number


def read_corpus(path: str | Path) -> list[CorpusEntry]:
    """Entries of a JSONL corpus; a bad line is an error naming the file, the line and the field."""
    out = []
    p = Path(path)
    with p.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{p}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(raw, dict):
                raise CorpusError(f"{p}:{number}: a corpus line must be a JSON object")
            for name in ("method", "path"):
                if not isinstance(raw.get(name), str):
                    raise CorpusError(f"{p}:{number}: field {name!r} is required (a string)")
            query = raw.get("query") or {}
            if not isinstance(query, dict):
                raise CorpusError(f"{p}:{number}: field 'query' must be an object")
            entry = CorpusEntry(raw["method"].upper(), raw["path"], {k: str(v) for k, v in query.items()},
                                raw.get("principal"), raw.get("body"))
            try:
                route(entry)
            except CorpusError as exc:
                raise CorpusError(f"{p}:{number}: {exc}") from None
            out.append(entry)
    return out


def write_corpus(entries: list[CorpusEntry], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for e in entries:
            fh.write(json.dumps({k: v for k, v in asdict(e).items() if v not in (None, {})}, default=str) + "\n")
    return p


def org_principal(org: str) -> dict[str, Any]:
    """Claims of an org-wide reader (every client and project), as sampled corpora use."""
    return {"sub": "rps-port-shadow", "org": org, "clients": ["*"], "projects": ["*"], "roles": ["admin"]}


def sample_corpus(source: str | Path, n: int, *, seed: int = 0, list_limit: int = LEGACY_MAX_LIMIT) -> list[CorpusEntry]:
    """A corpus from `n` ids sampled per collection of a dump/export directory (reservoir sampling).

    Each sampled id gives a detail request; each sampled order and transaction also gives the list
    of its customer's orders (transactions), whose result set fits one page, so list membership is
    compared exactly. The principal is an org-wide reader of the document's org.
    """
    from rps_port.legacy.emulator_store import COLLECTIONS, ref

    rng = random.Random(seed)
    out: list[CorpusEntry] = []
    for collection in COLLECTIONS:
        reservoir: list[tuple[str, str, str | None]] = []
        seen = 0
        for doc in _documents(str(source), collection):
            doc_id, org = ref(doc.get("_id")), ref(doc.get("org"))
            if doc_id is None or org is None:
                continue
            seen += 1
            item = (doc_id, org, ref(doc.get("customer")))
            if len(reservoir) < n:
                reservoir.append(item)
            else:
                j = rng.randrange(seen)
                if j < n:
                    reservoir[j] = item
        listed: set[tuple[str, str]] = set()
        for doc_id, org, customer in reservoir:
            principal = org_principal(org)
            out.append(CorpusEntry("GET", f"/api/{collection}/{doc_id}", {}, principal))
            if collection != "customers" and customer and (org, customer) not in listed:
                listed.add((org, customer))
                out.append(CorpusEntry("GET", f"/api/{collection}", {"customer": customer, "page": "1",
                                                                       "limit": str(list_limit)}, principal))
    rng.shuffle(out)
    return out


def _documents(source: str, collection: str) -> Any:
    """`_id`, `org` and `customer` of every document, from a dump/export directory or a live MongoDB."""
    if source.startswith(("mongodb://", "mongodb+srv://")):
        import pymongo

        client = pymongo.MongoClient(source, tz_aware=True)
        try:
            db = client.get_default_database(default="rps")
            yield from db[collection].find({}, {"_id": 1, "org": 1, "customer": 1}).sort("_id", 1)
        finally:
            client.close()
        return
    from rps_port.legacy.emulator_store import iter_documents

    yield from iter_documents(source, collection)


class Principals:
    """Tokens for corpus principals: named claims from a file, inline claims, or one fixed token."""

    def __init__(self, *, named: dict[str, dict[str, Any]] | None = None, token: str | None = None,
                 secret: str | None = None, issuer: str = "portal", audience: str = "rps",
                 ttl_seconds: int = 3600) -> None:
        self.named = named or {}
        self.token = token
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str]] = {}

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Principals:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise CorpusError(f"{path}: principals must map a name to its JWT claims")
        return cls(named=data, **kwargs)

    def name(self, principal: str | dict[str, Any] | None) -> str | None:
        if isinstance(principal, dict):
            return f"org {principal.get('org')}"
        return principal

    def bearer(self, principal: str | dict[str, Any] | None) -> str:
        if self.token and principal is None:
            return self.token
        if isinstance(principal, str):
            if principal not in self.named:
                raise CorpusError(f"principal {principal!r} is not in the principals file")
            claims = self.named[principal]
        elif isinstance(principal, dict):
            claims = principal
        elif self.token:
            return self.token
        else:
            raise CorpusError("a corpus line has no principal and no --token was given")
        key = json.dumps(claims, sort_keys=True)
        now = time.time()
        cached = self._cache.get(key)
        if cached and cached[0] > now + 60:
            return cached[1]
        if not self.secret:
            raise CorpusError("minting tokens for corpus principals needs RPS_JWT_SECRET (or pass --token)")
        import jwt

        full = {"iss": self.issuer, "aud": self.audience, "sub": "rps-port-shadow", **claims,
                "iat": int(now), "exp": int(now) + self.ttl}
        token = jwt.encode(full, self.secret, algorithm="HS256")
        self._cache[key] = (full["exp"], token)
        return token
