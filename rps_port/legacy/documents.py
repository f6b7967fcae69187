"""Builders for legacy documents, each planting quirks at the rates in `quirks.RATE`.

A builder returns a `Planted`: the document plus the quirk names it actually carries, the
reason a correct ETL must reject it (if broken) and the warnings it should raise. Counts in the
manifest come from these, so they describe exactly what was written.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from bson import Decimal128, ObjectId

from rps_port.legacy import catalog as cat
from rps_port.legacy.crypto import legacy_encrypt
from rps_port.legacy.quirks import (
    COLLECTIONS,
    NAME_SPLIT_BEFORE,
    PLAINTEXT_TAX_ID_BEFORE,
    RATE,
    STRING_BOOL_BEFORE,
    STRING_CUSTOMER_REF_BEFORE,
    STRING_ORG_BEFORE,
    TOTAL_CENTS_BEFORE,
    quirks_of,
)
from rps_port.money import minor_units

START = datetime(2016, 1, 1, tzinfo=UTC)
END = datetime(2025, 7, 1, tzinfo=UTC)
_SPAN_MS = int((END - START).total_seconds() * 1000)
_START_MS = int(START.timestamp() * 1000)
_END_MS = int(END.timestamp() * 1000)
_RATES_BY_NAME = {c: {q.name: q.rate for q in quirks_of(c)} for c in COLLECTIONS}
_STRING_ORG_MS = int(STRING_ORG_BEFORE.timestamp() * 1000)
_ORG_EPOCH = int(datetime(2015, 6, 1, tzinfo=UTC).timestamp())

ORDER_STATUSES = (("draft", 8), ("placed", 12), ("paid", 30), ("fulfilled", 35), ("cancelled", 8), ("refunded", 7))
TX_KINDS = (("charge", 55), ("refund", 15), ("payout", 10), ("adjustment", 20))
TX_STATUSES = (("succeeded", 80), ("pending", 8), ("failed", 7), ("reversed", 5))
PROVIDERS = (("stripe", 50), ("adyen", 20), ("paypal", 20), ("manual", 10))
CUSTOMER_STATUSES = (("active", 85), ("blocked", 5), ("archived", 10))
MONEY_TYPES = ("decimal128", "double", "string")


def _cum(pairs: tuple[tuple[str, int], ...] | dict[str, int]) -> tuple[list[str], list[int]]:
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    total, cum = 0, []
    for _, weight in items:
        total += weight
        cum.append(total)
    return [name for name, _ in items], cum


_COUNTRY_CHOICE = _cum(cat.COUNTRY_WEIGHTS)
_ORDER_STATUS_CHOICE = _cum(ORDER_STATUSES)
_TX_KIND_CHOICE = _cum(TX_KINDS)
_TX_STATUS_CHOICE = _cum(TX_STATUSES)
_PROVIDER_CHOICE = _cum(PROVIDERS)
_CUSTOMER_STATUS_CHOICE = _cum(CUSTOMER_STATUSES)


@dataclass
class Planted:
    doc: dict[str, Any]
    quirks: list[str] = field(default_factory=list)
    reject: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Tenant:
    org: ObjectId
    client: ObjectId
    project: ObjectId


@dataclass
class OrgInfo:
    id: ObjectId
    name: str
    clients: list[tuple[ObjectId, list[ObjectId]]]


@dataclass
class CustomerRef:
    """What later documents need to know about a customer (kept only while its orders are built)."""

    id: ObjectId
    tenant: Tenant
    created_ms: int
    country: str
    currency: str
    address: dict[str, Any] | None


@dataclass
class OrderRef:
    id: ObjectId
    created_ms: int
    currency: str
    total: Decimal | None


class Ids:
    """Deterministic, unique ObjectIds: 4-byte creation time, 2-byte seed tag, 6-byte counter."""

    def __init__(self, rng: random.Random) -> None:
        self._tag = rng.getrandbits(16).to_bytes(2, "big")
        self._n = 0

    def at(self, seconds: int) -> ObjectId:
        self._n += 1
        return ObjectId(seconds.to_bytes(4, "big") + self._tag + self._n.to_bytes(6, "big"))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BIAS = 6176  # IEEE 754-2008 decimal128 exponent bias
_LOW64 = (1 << 64) - 1
_EXACT = Context(prec=34)  # decimal128 holds 34 digits; scaleb must not round to the default 28


def _dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def decimal128(amount: Decimal) -> Decimal128:
    """`Decimal128(amount)` for finite amounts of up to 34 digits, built straight from the BID bits (faster)."""
    sign, _digits, exponent = amount.as_tuple()
    coefficient = abs(int(amount.scaleb(-exponent, context=_EXACT)))  # type: ignore[operator]
    high = ((exponent + _BIAS) << 49) | (coefficient >> 64)  # type: ignore[operator]
    if sign:
        high |= 1 << 63
    return Decimal128((high, coefficient & _LOW64))


def _randint(rng: random.Random, low: int, high: int) -> int:
    """Uniform in [low, high]; cheaper than Random.randint (a ~1e-16 bias does not matter here)."""
    return low + int(rng.random() * (high - low + 1))


def _choice(rng: random.Random, seq: Any) -> Any:
    return seq[int(rng.random() * len(seq))]


def _iso(ms: int) -> str:
    return _dt(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class DocumentFactory:
    """Builds customers, orders and transactions from one seeded `random.Random`."""

    def __init__(self, seed: int, customers: int, secret: str) -> None:
        self.rng = random.Random(seed)
        self.ids = Ids(self.rng)
        self.secret = secret
        self.customers = max(customers, 1)
        self.orgs = self._make_orgs()
        self._org_cum = [sum(w for w in (40, 30, 20, 10)[: i + 1]) for i in range(len(self.orgs))]
        self._recent_emails: deque[str] = deque(maxlen=512)
        self._order_seq: dict[tuple[bytes, int], int] = {}
        self._tx_seq = 0

    # ---- helpers -------------------------------------------------------------------------------

    def _pick(self, choice: tuple[list[str], list[int]]) -> str:
        names, cum = choice
        x = self.rng.random() * cum[-1]
        for name, c in zip(names, cum, strict=True):
            if x < c:
                return name
        return names[-1]

    def _chance(self, key: str) -> bool:
        return self.rng.random() < RATE[key]

    def _make_orgs(self) -> list[OrgInfo]:
        orgs = []
        for i, name in enumerate(["Acme Retail", "Globex", "Initech", "Umbrella Shop"]):
            org_id = self.ids.at(_ORG_EPOCH + i)
            clients = []
            for _ in range(_randint(self.rng, 2, 4)):
                client_id = self.ids.at(_ORG_EPOCH + 100 + i)
                projects = [self.ids.at(_ORG_EPOCH + 200 + i) for _ in range(_randint(self.rng, 1, 3))]
                clients.append((client_id, projects))
            orgs.append(OrgInfo(org_id, name, clients))
        return orgs

    def _tenant(self) -> Tenant:
        x = self.rng.random() * self._org_cum[-1]
        org = next(o for o, c in zip(self.orgs, self._org_cum, strict=True) if x < c)
        client, projects = _choice(self.rng, org.clients)
        return Tenant(org.id, client, _choice(self.rng, projects))

    def _date_value(self, ms: int, prefix: str, rates: dict[str, float], quirks: list[str]) -> Any:
        x = self.rng.random()
        iso = rates[f"{prefix}_iso_string"]
        if x < iso:
            quirks.append(f"{prefix}_iso_string")
            return _iso(ms)
        if x < iso + rates[f"{prefix}_epoch_ms"]:
            quirks.append(f"{prefix}_epoch_ms")
            return ms
        return _dt(ms)

    def _head(self, coll: str, oid: ObjectId, tenant: Tenant, created_ms: int, p: Planted,
              allow_missing_org: bool = True) -> None:
        doc, q, rng, rates = p.doc, p.quirks, self.rng, _RATES_BY_NAME[coll]
        doc["_id"] = oid
        if allow_missing_org and rng.random() < rates["missing_org"]:
            q.append("missing_org")
            p.reject = "missing_org"
        elif created_ms < _STRING_ORG_MS:
            q.append("org_string")
            doc["org"] = str(tenant.org)
        else:
            doc["org"] = tenant.org
        for name, value in (("client", tenant.client), ("project", tenant.project)):
            x = rng.random()
            absent = rates[f"{name}_absent"]
            if x < absent:
                q.append(f"{name}_absent")
            elif x < absent + rates[f"{name}_string"]:
                q.append(f"{name}_string")
                doc[name] = str(value)
            else:
                doc[name] = value

    def _tail(self, coll: str, created_ms: int, p: Planted, force_deleted: bool = False) -> None:
        doc, q, rng, rates = p.doc, p.quirks, self.rng, _RATES_BY_NAME[coll]
        if force_deleted or rng.random() < rates["soft_deleted"]:
            q.append("soft_deleted")
            doc["deletedAt"] = _dt(min(created_ms + _randint(rng, 3_600_000, 400 * 86_400_000), _END_MS))
        elif rng.random() < rates["deleted_at_absent"]:
            q.append("deleted_at_absent")
        else:
            doc["deletedAt"] = None
        if rng.random() < rates["extra_fields"]:
            q.append("extra_fields")
            for name, kind in rng.sample(cat.EXTRA_FIELDS, _randint(rng, 1, 2)):
                doc[name] = self._extra_value(kind)
        doc["createdAt"] = self._date_value(created_ms, "created_at", rates, q)
        if rng.random() < rates["updated_at_missing"]:
            q.append("updated_at_missing")
        else:
            updated = min(created_ms + _randint(rng, 0, 90 * 86_400_000), _END_MS)
            doc["updatedAt"] = self._date_value(updated, "updated_at", rates, q)
        if rng.random() < rates["version_key_missing"]:
            q.append("version_key_missing")
        else:
            doc["__v"] = _randint(rng, 0, 3)

    def _extra_value(self, kind: str) -> Any:
        rng = self.rng
        if kind == "int":
            return _randint(rng, 1, 10_000_000)
        if kind == "str":
            return _choice(rng, ["import-2017-03", "salesforce", "legacy-v1", "pending_review", "migrated"])
        return {"vip": rng.random() < 0.5, "history": [_randint(rng, 1, 9) for _ in range(_randint(rng, 0, 3))],
                "note": _choice(rng, ["", "ok", "re-sync"])}

    # ---- customers -----------------------------------------------------------------------------

    def customer(self, index: int) -> tuple[Planted, CustomerRef]:
        rng = self.rng
        created_ms = _START_MS + int((index + rng.random()) * _SPAN_MS / self.customers)
        created = _dt(created_ms)
        tenant = self._tenant()
        oid = self.ids.at(created_ms // 1000)
        p = Planted({})
        self._head("customers", oid, tenant, created_ms, p)
        doc, q = p.doc, p.quirks

        first, first_ascii = _choice(rng, cat.FIRST_NAMES)
        last, last_ascii = _choice(rng, cat.LAST_NAMES)
        if created < NAME_SPLIT_BEFORE and self._chance("customers.legacy_name_split"):
            q.append("legacy_name_split")
            doc["firstName"], doc["lastName"] = first, last
        else:
            doc["name"] = f"{first} {last}"

        if self._chance("customers.email_absent"):
            q.append("email_absent")
        else:
            if self._recent_emails and self._chance("customers.email_duplicate"):
                q.append("email_duplicate")
                email = _choice(rng, self._recent_emails)
            else:
                email = f"{first_ascii}.{last_ascii}.{index}@{_choice(rng, cat.EMAIL_DOMAINS)}"
                self._recent_emails.append(email)
            if self._chance("customers.email_messy"):
                q.append("email_messy")
                email = self._messy_email(email)
            doc["email"] = email

        country = self._pick(_COUNTRY_CHOICE)
        currency, _rates, cities, dial = cat.COUNTRIES[country]
        phone = self._phone(dial, q)
        if phone is not None:
            doc["phone"] = phone

        addresses: list[dict[str, Any]] = []
        if self._chance("customers.addresses_empty"):
            q.append("addresses_empty")
        else:
            lower = self._chance("customers.address_country_lowercase")
            if lower:
                q.append("address_country_lowercase")
            kinds = ["billing"] if rng.random() < 0.6 else ["billing", "shipping"]
            addresses = [self._address(kind, country, cities, lower) for kind in kinds]
        doc["addresses"] = addresses

        if self._chance("customers.tags_absent"):
            q.append("tags_absent")
        elif self._chance("customers.tags_empty"):
            q.append("tags_empty")
            doc["tags"] = []
        else:
            doc["tags"] = rng.sample(cat.TAGS, _randint(rng, 1, 3))

        doc["status"] = self._pick(_CUSTOMER_STATUS_CHOICE)
        opt_in = rng.random() < 0.4
        if created < STRING_BOOL_BEFORE and self._chance("customers.marketing_opt_in_string"):
            q.append("marketing_opt_in_string")
            doc["marketingOptIn"] = "true" if opt_in else "false"
        else:
            doc["marketingOptIn"] = opt_in

        if self._chance("customers.tax_id_absent"):
            q.append("tax_id_absent")
        else:
            tax_id = f"{country}{_randint(rng, 100_000_000, 999_999_999)}"
            if created < PLAINTEXT_TAX_ID_BEFORE:
                q.append("tax_id_plaintext")
                doc["taxId"] = tax_id
            else:
                q.append("tax_id_encrypted")
                doc["taxId"] = legacy_encrypt(tax_id, self.secret, iv=rng.randbytes(16))

        if self._chance("customers.meta_present"):
            q.append("meta_present")
            doc["meta"] = self._meta()

        self._tail("customers", created_ms, p)
        shipping = next((a for a in addresses if a["kind"] == "shipping"), addresses[0] if addresses else None)
        return p, CustomerRef(oid, tenant, created_ms, country, currency, shipping)

    def _messy_email(self, email: str) -> str:
        rng = self.rng
        style = _randint(rng, 0, 3)
        if style == 0:
            messy = email[0].upper() + email[1:]
        elif style == 1:
            messy = email.upper()
        elif style == 2:
            local, domain = email.split("@", 1)
            messy = local.title() + "@" + domain.upper()
        else:
            messy = email
        # Always some surrounding space when the case change alone could be a no-op.
        if style == 3 or rng.random() < 0.5:
            messy = _choice(rng, [" ", "  ", "\t"]) + messy + _choice(rng, ["", " "])
        return messy

    def _phone(self, dial: str, q: list[str]) -> str | None:
        rng = self.rng
        if self._chance("customers.phone_absent"):
            q.append("phone_absent")
            return None
        area, a, b = _randint(rng, 20, 99), _randint(rng, 100, 999), _randint(rng, 1000, 9999)
        x = rng.random()
        spaced = RATE["customers.phone_spaced"]
        dashed = spaced + RATE["customers.phone_dashed"]
        national = dashed + RATE["customers.phone_national"]
        if x < spaced:
            q.append("phone_spaced")
            return f"+{dial} {area} {a} {b}"
        if x < dashed:
            q.append("phone_dashed")
            return f"+{dial}-{area}-{a}-{b}"
        if x < national:
            q.append("phone_national")
            return f"({area}) {a}-{b}" if dial == "1" else f"0{area} {a} {b}"
        return f"+{dial}{area}{a}{b}"

    def _address(self, kind: str, country: str, cities: list[str], lower: bool) -> dict[str, Any]:
        rng = self.rng
        addr: dict[str, Any] = {"kind": kind, "line1": f"{_randint(rng, 1, 999)} {_choice(rng, cat.STREETS)}"}
        if rng.random() < 0.2:
            addr["line2"] = f"Apt {_randint(rng, 1, 40)}"
        addr["city"] = _choice(rng, cities)
        if country in cat.REGIONS:
            addr["region"] = _choice(rng, cat.REGIONS[country])
        addr["postalCode"] = f"{_randint(rng, 10000, 99999)}"
        addr["country"] = country.lower() if lower else country
        return addr

    def _meta(self) -> dict[str, Any]:
        rng = self.rng
        meta: dict[str, Any] = {"source": _choice(rng, cat.META_SOURCES)}
        if rng.random() < 0.5:
            meta["crmId"] = f"CRM-{_randint(rng, 1, 999_999):06d}"
        if rng.random() < 0.4:
            meta["prefs"] = {"lang": _choice(rng, ["en", "de", "fr", "ja"]), "newsletter": rng.random() < 0.5}
        if rng.random() < 0.2:
            meta["history"] = [{"at": _dt(_START_MS + _randint(rng, 0, _SPAN_MS)), "event": "import"}]
        if rng.random() < 0.1:
            meta["score"] = _choice(rng, [1, 2.5, "high", None])
        return meta

    # ---- orders --------------------------------------------------------------------------------

    def orders_for(self, cust: CustomerRef) -> list[tuple[Planted, OrderRef | None]]:
        """The customer's orders, oldest first; soft-deleted duplicates come with no OrderRef."""
        rng = self.rng
        end_ms = _END_MS
        times = sorted(_randint(rng, cust.created_ms, end_ms - 1) for _ in range(_randint(rng, 0, 8)))
        out: list[tuple[Planted, OrderRef | None]] = []
        for created_ms in times:
            planted, ref = self._order(cust, created_ms)
            if planted.reject is None and "soft_deleted" not in planted.quirks and self._chance(
                "orders.soft_deleted_duplicate_number"
            ):
                out.append((self._deleted_duplicate(cust, planted.doc, created_ms), None))
            out.append((planted, ref))
        return out

    def _number(self, org: ObjectId, year: int) -> str:
        key = (org.binary, year)
        seq = self._order_seq.get(key, 0) + 1
        self._order_seq[key] = seq
        return f"RPS-{year}-{seq:06d}"

    def _order(self, cust: CustomerRef, created_ms: int) -> tuple[Planted, OrderRef]:
        rng = self.rng
        created = _dt(created_ms)
        oid = self.ids.at(created_ms // 1000)
        p = Planted({})
        x = rng.random()
        r_tot = RATE["orders.broken_totals"]
        broken = None
        if x < r_tot:
            broken = "broken_totals"
        elif x < r_tot + RATE["orders.broken_non_numeric_amount"]:
            broken = "broken_non_numeric_amount"
        self._head("orders", oid, cust.tenant, created_ms, p, allow_missing_org=broken is None)
        if p.reject is None and broken is not None:
            p.quirks.append(broken)
            p.reject = "totals_mismatch" if broken == "broken_totals" else "non_numeric_amount"
        doc, q = p.doc, p.quirks
        doc["number"] = self._number(cust.tenant.org, created.year)

        customer: ObjectId = cust.id
        if p.reject is None and self._chance("orders.dangling_customer"):
            q.append("dangling_customer")
            p.warnings.append("dangling_customer")
            customer = self.ids.at(created_ms // 1000)
        if created < STRING_CUSTOMER_REF_BEFORE and self._chance("orders.customer_string_ref"):
            q.append("customer_string_ref")
            doc["customer"] = str(customer)
        else:
            doc["customer"] = customer

        status = self._pick(_ORDER_STATUS_CHOICE)
        doc["status"] = status
        currency = cust.currency
        if self._chance("orders.currency_lowercase"):
            q.append("currency_lowercase")
            doc["currency"] = currency.lower()
        else:
            doc["currency"] = currency

        total = self._order_money(doc, q, cust, currency, created < TOTAL_CENTS_BEFORE, broken)

        if self._chance("orders.shipping_address_absent"):
            q.append("shipping_address_absent")
        elif cust.address is None:
            _cur, _rates, cities, _dial = cat.COUNTRIES[cust.country]
            doc["shippingAddress"] = self._address("shipping", cust.country, cities, False)
        else:
            doc["shippingAddress"] = dict(cust.address)
        if status == "draft":
            q.append("placed_at_null")
            doc["placedAt"] = None
        else:
            doc["placedAt"] = _dt(created_ms + _randint(rng, 0, 3_600_000))
        if self._chance("orders.notes_absent"):
            q.append("notes_absent")
        elif self._chance("orders.notes_unicode"):
            q.append("notes_unicode")
            doc["notes"] = _choice(rng, cat.UNICODE_NOTES)
        else:
            doc["notes"] = _choice(rng, cat.ASCII_NOTES)
        self._tail("orders", created_ms, p)
        return p, OrderRef(oid, created_ms, currency, total if p.reject is None else None)

    def _order_money(self, doc: dict[str, Any], q: list[str], cust: CustomerRef, currency: str,
                     cents_only: bool, broken: str | None) -> Decimal:
        rng = self.rng
        exp = -minor_units(currency)
        quantum = Decimal(1).scaleb(exp)
        _c, rates, _cities, _dial = cat.COUNTRIES[cust.country]
        rate_text = _choice(rng, rates)
        rate = Decimal(rate_text)
        low, high = (50, 50_000) if exp else (100, 50_000)
        slots: list[tuple[dict[str, Any], str, Decimal]] = []
        items: list[dict[str, Any]] = []
        subtotal = Decimal(0).scaleb(exp)
        tax = Decimal(0).scaleb(exp)
        for _ in range(_randint(rng, 1, 5)):
            sku, name = _choice(rng, cat.PRODUCTS)
            quantity = _randint(rng, 1, 10)
            unit = Decimal(_randint(rng, low, high)).scaleb(exp)
            item: dict[str, Any] = {"sku": sku, "name": name}
            if self._chance("orders.quantity_string"):
                item["quantity"] = str(quantity)
                if "quantity_string" not in q:
                    q.append("quantity_string")
            else:
                item["quantity"] = quantity
            item["unitPrice"] = None  # filled by _encode_money; keeps Mongoose's field order
            slots.append((item, "unitPrice", unit))
            line = unit * quantity
            if rng.random() < 0.3:
                discount = Decimal(_randint(rng, 1, max(1, int(line.scaleb(-exp)) // 5))).scaleb(exp)
                item["discount"] = None
                slots.append((item, "discount", discount))
                line -= discount
            if rng.random() < 0.8:
                item["taxRate"] = float(rate_text)
                tax += (line * rate).quantize(quantum, rounding=ROUND_HALF_EVEN)
            subtotal += line
            items.append(item)
        doc["items"] = items
        total = subtotal + tax
        delta = Decimal(_randint(rng, 1, 500)).scaleb(exp)
        bad_subtotal = broken == "broken_totals" and rng.random() < 0.5
        bad_total = broken == "broken_totals" and not bad_subtotal
        slots.append((doc, "subtotal", subtotal + delta if bad_subtotal else subtotal))
        slots.append((doc, "tax", tax))
        if cents_only:
            q.append("total_cents_only")
        else:
            slots.append((doc, "total", total + delta if bad_total else total))
        self._encode_money(slots, "orders", q, broken == "broken_non_numeric_amount")
        if cents_only:
            doc["totalCents"] = int((total + delta if bad_total else total).scaleb(-exp))
        return total

    def _encode_money(self, slots: list[tuple[dict[str, Any], str, Decimal]], coll: str, q: list[str],
                      plant_non_numeric: bool) -> None:
        """Write each (container, key, amount) in the document's money style; record what was planted."""
        rng = self.rng
        x = rng.random()
        rates = _RATES_BY_NAME[coll]
        r_dec, r_dbl, r_str = rates["money_decimal128"], rates["money_double"], rates["money_string"]
        if x < r_dec:
            types = ["decimal128"] * len(slots)
        elif x < r_dec + r_dbl:
            types = ["double"] * len(slots)
        elif x < r_dec + r_dbl + r_str or len(slots) < 2:
            types = ["string"] * len(slots)
        else:
            order = list(MONEY_TYPES)
            rng.shuffle(order)
            types = [order[i % 3] for i in range(len(slots))]
        bad = rng.randrange(len(slots)) if plant_non_numeric else -1
        noisy_wanted = "double" in types and rng.random() < rates["money_float_noise"]
        doubles = [i for i, t in enumerate(types) if t == "double" and i != bad and slots[i][2] != 0]
        forced = _choice(rng, doubles) if noisy_wanted and doubles else -1
        noisy = False
        for i, ((container, key, amount), kind) in enumerate(zip(slots, types, strict=True)):
            if i == bad:
                container[key] = _choice(rng, cat.NON_NUMERIC_AMOUNTS)
            elif kind == "decimal128":
                container[key] = decimal128(amount)
            elif kind == "string":
                container[key] = str(amount)
            else:
                value = float(str(amount))
                if i == forced or (noisy_wanted and amount != 0 and rng.random() < 0.3):
                    towards = math.inf if rng.random() < 0.5 else -math.inf
                    for _ in range(_randint(rng, 1, 3)):
                        value = math.nextafter(value, towards)
                    noisy = True
                container[key] = value
        seen = {t for i, t in enumerate(types) if i != bad}
        if len(seen) == 1:
            q.append(f"money_{seen.pop()}")
        elif seen:
            q.append("money_mixed")
        if noisy:
            q.append("money_float_noise")

    def _deleted_duplicate(self, cust: CustomerRef, live: dict[str, Any], live_ms: int) -> Planted:
        """An older, soft-deleted order that shares the live order's number (and org)."""
        rng = self.rng
        created_ms = max(cust.created_ms, live_ms - _randint(rng, 60_000, 7 * 86_400_000))
        p = Planted({})
        self._head("orders", self.ids.at(created_ms // 1000), cust.tenant, created_ms, p, allow_missing_org=False)
        if "org" in live:
            p.doc["org"] = live["org"]
        if "org_string" in p.quirks and not isinstance(live.get("org"), str):
            p.quirks.remove("org_string")
        elif "org_string" not in p.quirks and isinstance(live.get("org"), str):
            p.quirks.append("org_string")
        p.quirks.append("soft_deleted_duplicate_number")
        doc = p.doc
        doc["number"] = live["number"]
        doc["customer"] = cust.id
        doc["status"] = "cancelled"
        doc["currency"] = cust.currency
        exp = -minor_units(cust.currency)
        unit = Decimal(_randint(rng, 100, 10_000)).scaleb(exp)
        doc["items"] = [{"sku": "SKU-1001", "name": "Widget", "quantity": 1, "unitPrice": Decimal128(unit)}]
        doc["subtotal"] = Decimal128(unit)
        doc["tax"] = Decimal128(Decimal(0).scaleb(exp))
        doc["total"] = Decimal128(unit)
        p.quirks.append("money_decimal128")
        p.quirks.append("shipping_address_absent")
        doc["placedAt"] = _dt(created_ms)
        doc["notes"] = "replaced by a corrected order"
        self._tail("orders", created_ms, p, force_deleted=True)
        return p

    # ---- transactions --------------------------------------------------------------------------

    def transactions_for(self, cust: CustomerRef, orders: list[OrderRef]) -> list[Planted]:
        rng = self.rng
        return [self._transaction(cust, orders) for _ in range(_randint(rng, 2, 10))]

    def _transaction(self, cust: CustomerRef, orders: list[OrderRef]) -> Planted:
        rng = self.rng
        kind = self._pick(_TX_KIND_CHOICE)
        order: OrderRef | None = None
        if kind in ("charge", "refund") or (kind == "adjustment" and rng.random() < 0.5):
            order = _choice(rng, orders) if orders else None
        end_ms = _END_MS
        if order is not None:
            created_ms = min(order.created_ms + _randint(rng, 1_000, 30 * 86_400_000), end_ms - 1)
        else:
            created_ms = _randint(rng, cust.created_ms, end_ms - 1)
        oid = self.ids.at(created_ms // 1000)
        p = Planted({})
        broken = self._chance("transactions.broken_non_numeric_amount")
        self._head("transactions", oid, cust.tenant, created_ms, p, allow_missing_org=not broken)
        if broken and p.reject is None:
            p.quirks.append("broken_non_numeric_amount")
            p.reject = "non_numeric_amount"
        doc, q = p.doc, p.quirks

        if order is None:
            q.append("null_order")
            doc["order"] = None
        elif p.reject is None and self._chance("transactions.dangling_order"):
            q.append("dangling_order")
            p.warnings.append("dangling_order")
            doc["order"] = self.ids.at(created_ms // 1000)
        else:
            doc["order"] = order.id
        doc["customer"] = cust.id
        doc["kind"] = kind
        status = self._pick(_TX_STATUS_CHOICE)
        doc["status"] = status

        currency = order.currency if order is not None else cust.currency
        exp = -minor_units(currency)
        if order is not None and order.total is not None and kind == "charge":
            amount = order.total
        elif order is not None and order.total is not None and kind == "refund":
            quantum = Decimal(1).scaleb(exp)
            share = (order.total * _randint(rng, 1, 4) / 4).quantize(quantum, rounding=ROUND_HALF_EVEN)
            amount = max(share, quantum)
        else:
            amount = Decimal(_randint(rng, 100, 200_000)).scaleb(exp)
        self._encode_money([(doc, "amount", amount)], "transactions", q, p.reject == "non_numeric_amount")
        if self._chance("transactions.currency_lowercase"):
            q.append("currency_lowercase")
            doc["currency"] = currency.lower()
        else:
            doc["currency"] = currency

        provider = "manual" if kind in ("payout", "adjustment") and rng.random() < 0.5 else self._pick(
            _PROVIDER_CHOICE
        )
        doc["provider"] = provider
        doc["providerRef"] = self._provider_ref(provider, kind, created_ms)
        if kind in ("payout", "adjustment") or provider in ("paypal", "manual"):
            q.append("card_null")
            doc["card"] = None
        else:
            last4 = f"{_randint(rng, 0, 9999):04d}"
            if self._chance("transactions.card_last4_encrypted"):
                q.append("card_last4_encrypted")
                last4 = legacy_encrypt(last4, self.secret, iv=rng.randbytes(16))
            doc["card"] = {"brand": _choice(rng, cat.CARD_BRANDS), "last4": last4,
                           "expMonth": _randint(rng, 1, 12), "expYear": _dt(created_ms).year + _randint(rng, 0, 5)}
        if status == "failed":
            q.append("failure_code")
            doc["failureCode"] = _choice(rng, cat.FAILURE_CODES)
        if status == "pending":
            q.append("processed_at_absent")
        else:
            doc["processedAt"] = _dt(min(created_ms + _randint(rng, 500, 86_400_000), end_ms))
        self._tail("transactions", created_ms, p)
        return p

    def _provider_ref(self, provider: str, kind: str, created_ms: int) -> str:
        """Unique per provider: each embeds the global transaction sequence number."""
        self._tx_seq += 1
        seq = self._tx_seq
        rand = self.rng.getrandbits(32)
        if provider == "stripe":
            prefix = {"charge": "ch", "refund": "re", "payout": "po", "adjustment": "adj"}[kind]
            return f"{prefix}_{rand:08x}{seq:010d}"
        if provider == "paypal":
            return f"PAYID-{rand:08X}-{seq:010d}"
        if provider == "adyen":
            return f"88{rand % 10_000:04d}{seq:010d}"
        return f"MANUAL-{_dt(created_ms).year}-{seq:08d}"
