"""An independent recount of a generated legacy dataset, from the documents alone.

Nothing here imports the generator: every quirk is recognised by inspecting the document the
way an ETL would meet it, so the tests compare two independent views of the same files.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId

from rps_port.money import minor_units

_NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
_ENC = re.compile(r"^enc:v1:[0-9a-f]{32}:([0-9a-f]{32})+$")

COMMON_FIELDS = {"_id", "org", "client", "project", "createdAt", "updatedAt", "__v", "deletedAt"}
FIELDS = {
    "customers": COMMON_FIELDS | {"name", "firstName", "lastName", "email", "phone", "addresses", "tags", "status",
                                  "marketingOptIn", "taxId", "meta"},
    "orders": COMMON_FIELDS | {"number", "customer", "status", "currency", "items", "subtotal", "tax", "total",
                               "totalCents", "shippingAddress", "placedAt", "notes"},
    "transactions": COMMON_FIELDS | {"order", "customer", "kind", "status", "amount", "currency", "provider",
                                     "providerRef", "card", "failureCode", "processedAt"},
}


def oid_hex(value: Any) -> str | None:
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{24}", value):
        return value
    return None


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and bool(_ENC.match(value))


def money(value: Any) -> Decimal | None:
    """The exact amount a legacy money value stands for; None when it is not a number at all."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and _NUMERIC.match(value):
        return Decimal(value)
    return None


def money_kind(value: Any) -> str | None:
    if isinstance(value, Decimal128):
        return "decimal128"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str) and _NUMERIC.match(value):
        return "string"
    return None


def _q(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)))


def _noisy(value: Any, currency: str) -> bool:
    if not isinstance(value, float):
        return False
    exact = Decimal(repr(value))
    return exact != _q(exact, currency)


@dataclass
class Recount:
    totals: Counter[str] = field(default_factory=Counter)
    soft_deleted: Counter[str] = field(default_factory=Counter)
    quirks: Counter[str] = field(default_factory=Counter)
    rejects: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    warnings: Counter[str] = field(default_factory=Counter)
    ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    customer_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    seen_emails: set[str] = field(default_factory=set)
    live_numbers: Counter[tuple[str, str]] = field(default_factory=Counter)
    deleted_numbers: list[tuple[str, tuple[str, str]]] = field(default_factory=list)
    provider_refs: Counter[tuple[str, str]] = field(default_factory=Counter)
    tenancy: set[tuple[str | None, str | None, str | None]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def _hit(self, coll: str, name: str, doc_id: str) -> None:
        self.quirks[f"{coll}.{name}"] += 1
        self.ids[f"{coll}.{name}"].add(doc_id)

    # ---- shared --------------------------------------------------------------------------------

    def _common(self, coll: str, doc: dict[str, Any]) -> str:
        doc_id = str(doc["_id"])
        def hit(name):
            return self._hit(coll, name, doc_id)
        self.totals[coll] += 1
        if "org" not in doc:
            hit("missing_org")
        elif isinstance(doc["org"], str):
            hit("org_string")
        for name in ("client", "project"):
            if name not in doc:
                hit(f"{name}_absent")
            elif isinstance(doc[name], str):
                hit(f"{name}_string")
        self.tenancy.add(tuple(oid_hex(doc.get(k)) for k in ("org", "client", "project")))  # type: ignore[arg-type]
        for name, key in (("created_at", "createdAt"), ("updated_at", "updatedAt")):
            value = doc.get(key)
            if key not in doc:
                hit(f"{name}_missing")
            elif isinstance(value, str):
                hit(f"{name}_iso_string")
                datetime.fromisoformat(value)
            elif isinstance(value, int):
                hit(f"{name}_epoch_ms")
            elif not isinstance(value, datetime):
                self.problems.append(f"{coll} {doc_id}: {key} is {type(value).__name__}")
        if "__v" not in doc:
            hit("version_key_missing")
        if "deletedAt" not in doc:
            hit("deleted_at_absent")
        elif isinstance(doc["deletedAt"], datetime):
            hit("soft_deleted")
            self.soft_deleted[coll] += 1
        if set(doc) - FIELDS[coll]:
            hit("extra_fields")
        return doc_id

    def _reject(self, coll: str, doc_id: str, reason: str) -> None:
        if doc_id not in self.rejects[coll]:
            self.rejects[coll][doc_id] = reason

    # ---- per collection ------------------------------------------------------------------------

    def customer(self, doc: dict[str, Any]) -> None:
        doc_id = self._common("customers", doc)
        def hit(name):
            return self._hit("customers", name, doc_id)
        self.customer_ids.add(doc_id)
        if "org" not in doc:
            self._reject("customers", doc_id, "missing_org")
        if "firstName" in doc and "lastName" in doc and "name" not in doc:
            hit("legacy_name_split")
        email = doc.get("email")
        if email is None:
            hit("email_absent")
        else:
            normal = email.strip().lower()
            if email != normal:
                hit("email_messy")
            if normal in self.seen_emails:
                hit("email_duplicate")
            self.seen_emails.add(normal)
        phone = doc.get("phone")
        if phone is None:
            hit("phone_absent")
        elif not phone.startswith("+"):
            hit("phone_national")
        elif " " in phone:
            hit("phone_spaced")
        elif "-" in phone:
            hit("phone_dashed")
        elif not re.fullmatch(r"\+\d{8,15}", phone):
            self.problems.append(f"customer {doc_id}: phone {phone!r}")
        addresses = doc["addresses"]
        if addresses == []:
            hit("addresses_empty")
        elif any(a["country"] != a["country"].upper() for a in addresses):
            hit("address_country_lowercase")
        if "tags" not in doc:
            hit("tags_absent")
        elif doc["tags"] == []:
            hit("tags_empty")
        if isinstance(doc["marketingOptIn"], str):
            hit("marketing_opt_in_string")
        tax_id = doc.get("taxId")
        if tax_id is None:
            hit("tax_id_absent")
        elif is_encrypted(tax_id):
            hit("tax_id_encrypted")
        else:
            hit("tax_id_plaintext")
        if isinstance(doc.get("meta"), dict):
            hit("meta_present")

    def order(self, doc: dict[str, Any]) -> None:
        doc_id = self._common("orders", doc)
        def hit(name):
            return self._hit("orders", name, doc_id)
        self.order_ids.add(doc_id)
        currency = doc["currency"]
        if currency != currency.upper():
            hit("currency_lowercase")
        cust = doc["customer"]
        if isinstance(cust, str):
            hit("customer_string_ref")
        dangling = oid_hex(cust) not in self.customer_ids
        if oid_hex(cust) in self.rejects["customers"]:
            self.problems.append(f"order {doc_id} references rejected customer {cust}")
        items = doc["items"]
        if any(isinstance(i["quantity"], str) for i in items):
            hit("quantity_string")
        slots = [doc.get("subtotal"), doc.get("tax")]
        if "total" in doc:
            slots.append(doc["total"])
        if "totalCents" in doc and "total" not in doc:
            hit("total_cents_only")
        for item in items:
            slots.append(item["unitPrice"])
            if "discount" in item:
                slots.append(item["discount"])
        self._money_style("orders", slots, currency, hit)
        if "shippingAddress" not in doc:
            hit("shipping_address_absent")
        if doc.get("status") == "draft" and doc.get("placedAt") is None:
            hit("placed_at_null")
        notes = doc.get("notes")
        if notes is None:
            hit("notes_absent")
        elif any(ord(ch) > 127 for ch in notes):
            hit("notes_unicode")

        key = (oid_hex(doc.get("org")) or "", doc["number"])
        if isinstance(doc.get("deletedAt"), datetime):
            self.deleted_numbers.append((doc_id, key))
        else:
            self.live_numbers[key] += 1

        if "org" not in doc:
            self._reject("orders", doc_id, "missing_org")
        elif any(money(v) is None for v in slots):
            hit("broken_non_numeric_amount")
            self._reject("orders", doc_id, "non_numeric_amount")
        elif not self._totals_add_up(doc, items, currency):
            hit("broken_totals")
            self._reject("orders", doc_id, "totals_mismatch")
        elif dangling:
            hit("dangling_customer")
            self.warnings["orders.dangling_customer"] += 1

    def _totals_add_up(self, doc: dict[str, Any], items: list[dict[str, Any]], currency: str) -> bool:
        lines = Decimal(0)
        for item in items:
            line = int(item["quantity"]) * _q(money(item["unitPrice"]), currency)  # type: ignore[arg-type]
            if "discount" in item:
                line -= _q(money(item["discount"]), currency)  # type: ignore[arg-type]
            lines += line
        subtotal = _q(money(doc["subtotal"]), currency)  # type: ignore[arg-type]
        tax = _q(money(doc["tax"]), currency)  # type: ignore[arg-type]
        if lines != subtotal:
            return False
        if "total" in doc:
            return subtotal + tax == _q(money(doc["total"]), currency)  # type: ignore[arg-type]
        return (subtotal + tax).scaleb(minor_units(currency)) == doc["totalCents"]

    def _money_style(self, coll: str, values: list[Any], currency: str, hit: Any) -> None:
        kinds = {k for k in (money_kind(v) for v in values) if k}
        if len(kinds) == 1:
            hit(f"money_{kinds.pop()}")
        elif kinds:
            hit("money_mixed")
        if any(_noisy(v, currency) for v in values):
            hit("money_float_noise")

    def transaction(self, doc: dict[str, Any]) -> None:
        doc_id = self._common("transactions", doc)
        def hit(name):
            return self._hit("transactions", name, doc_id)
        currency = doc["currency"]
        if currency != currency.upper():
            hit("currency_lowercase")
        self._money_style("transactions", [doc["amount"]], currency, hit)
        order = doc["order"]
        if str(order) in self.rejects["orders"] or str(doc["customer"]) in self.rejects["customers"]:
            self.problems.append(f"transaction {doc_id} references a rejected document")
        if order is None:
            hit("null_order")
        card = doc["card"]
        if card is None:
            hit("card_null")
        elif is_encrypted(card["last4"]):
            hit("card_last4_encrypted")
        if "processedAt" not in doc:
            hit("processed_at_absent")
            if doc["status"] != "pending":
                self.problems.append(f"transaction {doc_id}: no processedAt but status {doc['status']}")
        if "failureCode" in doc:
            hit("failure_code")
        self.provider_refs[(doc["provider"], doc["providerRef"])] += 1
        if "org" not in doc:
            self._reject("transactions", doc_id, "missing_org")
        elif money(doc["amount"]) is None:
            hit("broken_non_numeric_amount")
            self._reject("transactions", doc_id, "non_numeric_amount")
        elif order is not None and str(order) not in self.order_ids:
            hit("dangling_order")
            self.warnings["transactions.dangling_order"] += 1

    def finish(self) -> None:
        """Order-number duplicates need every order seen first."""
        for doc_id, key in self.deleted_numbers:
            if self.live_numbers[key]:
                self._hit("orders", "soft_deleted_duplicate_number", doc_id)
