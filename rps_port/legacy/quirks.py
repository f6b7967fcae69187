"""The quirks the generator plants, each at a stated rate: the single table the code and docs share.

A rate is a probability within the population named in `applies_to`. `reject` names the reason
a correct ETL must reject a document with that quirk (genuinely broken data); `warning` names a
quirk a correct ETL loads but flags (a dangling reference). Everything else must load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

COLLECTIONS = ("customers", "orders", "transactions")

# Era boundaries (documents created before these dates carry the older shapes).
NAME_SPLIT_BEFORE = datetime(2018, 1, 1, tzinfo=UTC)
STRING_BOOL_BEFORE = datetime(2019, 1, 1, tzinfo=UTC)
TOTAL_CENTS_BEFORE = datetime(2019, 1, 1, tzinfo=UTC)
PLAINTEXT_TAX_ID_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
STRING_CUSTOMER_REF_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
STRING_ORG_BEFORE = datetime(2021, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Quirk:
    key: str  # "<collection>.<name>", the manifest key
    rate: float
    applies_to: str
    description: str
    reject: str | None = None
    warning: str | None = None

    @property
    def collection(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


def _common(c: str) -> list[Quirk]:
    return [
        Quirk(f"{c}.org_string", 1.0, f"{c} created before 2021", "`org` is a 24-hex string, not an ObjectId"),
        Quirk(f"{c}.missing_org", 0.003, f"all {c}", "`org` field absent (broken)", reject="missing_org"),
        Quirk(f"{c}.client_string", 0.10, f"all {c}", "`client` is a 24-hex string"),
        Quirk(f"{c}.client_absent", 0.08, f"all {c}", "`client` field absent"),
        Quirk(f"{c}.project_string", 0.10, f"all {c}", "`project` is a 24-hex string"),
        Quirk(f"{c}.project_absent", 0.12, f"all {c}", "`project` field absent"),
        Quirk(f"{c}.created_at_iso_string", 0.05, f"all {c}", "`createdAt` is an ISO-8601 string"),
        Quirk(f"{c}.created_at_epoch_ms", 0.04, f"all {c}", "`createdAt` is epoch milliseconds (Int64)"),
        Quirk(f"{c}.updated_at_missing", 0.08, f"all {c}", "`updatedAt` absent"),
        Quirk(f"{c}.updated_at_iso_string", 0.05, f"{c} with updatedAt", "`updatedAt` is an ISO-8601 string"),
        Quirk(f"{c}.updated_at_epoch_ms", 0.04, f"{c} with updatedAt", "`updatedAt` is epoch milliseconds"),
        Quirk(f"{c}.version_key_missing", 0.03, f"all {c}", "no `__v` (written outside Mongoose)"),
        Quirk(f"{c}.soft_deleted", 0.04, f"all {c}", "`deletedAt` is a Date (soft delete)"),
        Quirk(f"{c}.deleted_at_absent", 0.20, f"{c} not soft-deleted", "`deletedAt` absent instead of null"),
        Quirk(f"{c}.extra_fields", 0.03, f"all {c}", "unknown extra top-level fields (must be kept)"),
    ]


QUIRKS: tuple[Quirk, ...] = tuple(
    _common("customers")
    + [
        Quirk("customers.legacy_name_split", 0.75, "customers created before 2018",
              "`firstName` + `lastName` instead of `name`"),
        Quirk("customers.email_absent", 0.05, "all customers", "no `email`"),
        Quirk("customers.email_messy", 0.25, "customers with email",
              "email in mixed case and/or with surrounding spaces"),
        Quirk("customers.email_duplicate", 0.03, "customers with email",
              "email equal (after trim + lower-case) to an earlier customer's"),
        Quirk("customers.phone_absent", 0.10, "all customers", "no `phone`"),
        Quirk("customers.phone_spaced", 0.12, "customers with phone", "E.164 with spaces"),
        Quirk("customers.phone_dashed", 0.10, "customers with phone", "international format with dashes"),
        Quirk("customers.phone_national", 0.08, "customers with phone", "national format, no country code"),
        Quirk("customers.addresses_empty", 0.10, "all customers", "`addresses` is []"),
        Quirk("customers.address_country_lowercase", 0.08, "customers with addresses",
              "address `country` in lower case"),
        Quirk("customers.tags_absent", 0.15, "all customers", "no `tags`"),
        Quirk("customers.tags_empty", 0.10, "customers with tags", "`tags` is []"),
        Quirk("customers.marketing_opt_in_string", 0.60, "customers created before 2019",
              "`marketingOptIn` is \"true\"/\"false\""),
        Quirk("customers.tax_id_absent", 0.40, "all customers", "no `taxId`"),
        Quirk("customers.tax_id_plaintext", 1.0, "customers with taxId created before 2020", "`taxId` in clear"),
        Quirk("customers.tax_id_encrypted", 1.0, "customers with taxId created 2020 or later",
              "`taxId` as enc:v1 (legacy secret)"),
        Quirk("customers.meta_present", 0.70, "all customers", "free-form `meta` object (nested values)"),
    ]
    + _common("orders")
    + [
        Quirk("orders.customer_string_ref", 0.50, "orders created before 2020", "`customer` is a 24-hex string"),
        Quirk("orders.dangling_customer", 0.02, "orders that are not broken",
              "`customer` points to no customer document", warning="dangling_customer"),
        Quirk("orders.currency_lowercase", 0.05, "all orders", "`currency` in lower case"),
        Quirk("orders.quantity_string", 0.05, "order items", "item `quantity` as a numeric string (counted: orders with any)"),
        Quirk("orders.money_decimal128", 0.50, "all orders", "every money value is Decimal128"),
        Quirk("orders.money_double", 0.25, "all orders", "every money value is a double"),
        Quirk("orders.money_string", 0.15, "all orders", "every money value is a numeric string"),
        Quirk("orders.money_mixed", 0.10, "all orders", "money values of different BSON types in one document"),
        Quirk("orders.money_float_noise", 0.40, "orders with double money values",
              "doubles with binary noise, e.g. 19.990000000000002 (still round to the right minor unit)"),
        Quirk("orders.total_cents_only", 1.0, "orders created before 2019",
              "`totalCents` (Int, minor units) instead of `total`"),
        Quirk("orders.soft_deleted_duplicate_number", 0.02, "live orders",
              "an extra soft-deleted order with the same `number` in the same org"),
        Quirk("orders.notes_absent", 0.30, "all orders", "no `notes`"),
        Quirk("orders.notes_unicode", 0.30, "orders with notes", "notes with emoji, CJK, RTL or combining marks"),
        Quirk("orders.shipping_address_absent", 0.30, "all orders", "no `shippingAddress`"),
        Quirk("orders.placed_at_null", 1.0, "draft orders", "`placedAt` is null"),
        Quirk("orders.broken_totals", 0.004, "all orders",
              "items do not add up to subtotal, or subtotal + tax != total (broken)", reject="totals_mismatch"),
        Quirk("orders.broken_non_numeric_amount", 0.002, "all orders",
              "a money value such as \"12,50\" or \"abc\" (broken)", reject="non_numeric_amount"),
    ]
    + _common("transactions")
    + [
        Quirk("transactions.dangling_order", 0.02, "transactions with an order ref, not broken",
              "`order` points to no order document", warning="dangling_order"),
        Quirk("transactions.null_order", 1.0, "payouts, half of adjustments, customers without orders",
              "`order` is null"),
        Quirk("transactions.card_null", 1.0, "payouts, adjustments, paypal and manual", "`card` is null"),
        Quirk("transactions.card_last4_encrypted", 0.30, "transactions with a card", "`card.last4` as enc:v1"),
        Quirk("transactions.processed_at_absent", 1.0, "pending transactions", "no `processedAt`"),
        Quirk("transactions.currency_lowercase", 0.05, "all transactions", "`currency` in lower case"),
        Quirk("transactions.money_decimal128", 0.55, "all transactions", "`amount` is Decimal128"),
        Quirk("transactions.money_double", 0.30, "all transactions", "`amount` is a double"),
        Quirk("transactions.money_string", 0.15, "all transactions", "`amount` is a numeric string"),
        Quirk("transactions.money_float_noise", 0.40, "transactions with a double amount",
              "double amount with binary noise"),
        Quirk("transactions.failure_code", 1.0, "failed transactions", "`failureCode` present"),
        Quirk("transactions.broken_non_numeric_amount", 0.003, "all transactions",
              "`amount` such as \"12,50\" or \"abc\" (broken)", reject="non_numeric_amount"),
    ]
)

QUIRK_BY_KEY: dict[str, Quirk] = {q.key: q for q in QUIRKS}
RATE: dict[str, float] = {q.key: q.rate for q in QUIRKS}


def quirks_of(collection: str) -> list[Quirk]:
    return [q for q in QUIRKS if q.collection == collection]


def reject_reasons(collection: str) -> list[str]:
    return sorted({q.reject for q in quirks_of(collection) if q.reject})
