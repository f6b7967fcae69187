"""The shipped mapping: documents in every legacy shape become the same rows; broken ones are rejected
with the field and reason; rows go back to the legacy shape; bad mapping files name the line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from bson import Decimal128, Int64, ObjectId

from rps_port.etl.errors import MappingError, RejectError
from rps_port.etl.mapping import SkipDocument, apply_references, load_mapping, mapping_from_text
from rps_port.legacy.crypto import legacy_encrypt

SECRET = "mapping-test-secret"
ORG = ObjectId("5f1d7f0c2a4b6c8d9e0f1a2b")


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(secret=SECRET)


def order_doc(**over):
    doc = {
        "_id": ObjectId("5f2000000000000000000001"),
        "org": ORG,
        "client": str(ObjectId("5f2000000000000000000002")),
        "number": "RPS-2020-000001",
        "customer": ObjectId("5f2000000000000000000003"),
        "status": "paid",
        "currency": "usd",
        "items": [
            {"sku": "A", "name": "Widget", "quantity": "2", "unitPrice": 19.990000000000002, "taxRate": 0.2},
            {"sku": "B", "name": "Gadget", "quantity": 1, "unitPrice": Decimal128("5.00"), "discount": "1.00"},
        ],
        "subtotal": Decimal128("43.98"),
        "tax": 8.8,
        "total": "52.78",
        "placedAt": datetime(2020, 3, 1, 12, 0, 0, 5000),
        "createdAt": "2020-03-01T11:59:00.000Z",
        "updatedAt": Int64(1583064000000),
        "notes": "🎉 日本語 שלום",
        "__v": 3,
        "legacyFlag": {"x": Decimal128("1.10")},
    }
    doc.update(over)
    return doc


def test_an_order_in_mixed_legacy_types_becomes_exact_rows(mapping):
    md = mapping.map_document("orders", order_doc())
    row = md.row
    assert row["id"] == "5f2000000000000000000001"
    assert row["client_id"] == "5f2000000000000000000002"
    assert row["currency"] == "USD"
    assert (row["subtotal"], row["tax"], row["total"]) == (Decimal("43.98"), Decimal("8.80"), Decimal("52.78"))
    assert row["placed_at"] == datetime(2020, 3, 1, 12, 0, 0, 5000, tzinfo=UTC)
    assert row["updated_at"] == row["src_updated_at"] == datetime(2020, 3, 1, 12, 0, tzinfo=UTC)
    assert row["notes"] == "🎉 日本語 שלום"
    assert row["extra"] == {"legacyFlag": {"x": {"$numberDecimal": "1.10"}}}  # unknown field kept; __v dropped
    items = md.children["order_items"]
    assert [(i["order_id"], i["position"], i["quantity"], i["unit_price"], i["discount"]) for i in items] == [
        (row["id"], 0, 2, Decimal("19.99"), None),
        (row["id"], 1, 1, Decimal("5.00"), Decimal("1.00")),
    ]
    assert items[0]["tax_rate"] == Decimal("0.2000") and items[0]["org_id"] == str(ORG)
    assert [(r.column, r.collection, r.value) for r in md.references] == [
        ("customer_id", "customers", "5f2000000000000000000003")
    ]


def test_a_mongoose_json_answer_maps_to_the_same_rows(mapping):
    """Shadow canonicalises legacy REST answers (ids as strings, $numberDecimal, ISO dates) with the mapping."""
    doc = order_doc(subtotal=Decimal128("43.98"), tax=Decimal128("8.80"), total=Decimal128("52.78"))
    mongoose = {
        **json.loads(json.dumps(doc, default=str)),
        "_id": str(doc["_id"]),
        "org": str(ORG),
        "customer": str(doc["customer"]),
        "subtotal": {"$numberDecimal": "43.98"},
        "tax": {"$numberDecimal": "8.80"},
        "total": {"$numberDecimal": "52.78"},
        "items": [
            {"sku": "A", "name": "Widget", "quantity": 2, "unitPrice": {"$numberDecimal": "19.99"}, "taxRate": 0.2},
            {"sku": "B", "name": "Gadget", "quantity": 1, "unitPrice": {"$numberDecimal": "5.00"},
             "discount": {"$numberDecimal": "1.00"}},
        ],
        "placedAt": "2020-03-01T12:00:00.005Z",
        "createdAt": "2020-03-01T11:59:00.000Z",
        "updatedAt": "2020-03-01T12:00:00.000Z",
        "legacyFlag": {"x": {"$numberDecimal": "1.10"}},
    }
    a = mapping.map_document("orders", doc)
    b = mapping.map_document("orders", mongoose)
    assert a.row == b.row
    assert a.children == b.children


def test_legacy_customer_shapes(mapping):
    cid = ObjectId("5a0000000000000000000001")
    doc = {
        "_id": cid,
        "org": str(ORG),
        "firstName": "Ann ",
        "lastName": " Lee",
        "email": "  Ann@Example.com ",
        "status": "active",
        "marketingOptIn": "false",
        "taxId": legacy_encrypt("DE-999", SECRET),
        "addresses": [{"kind": "billing", "line1": "1 Main", "city": "Berlin", "postalCode": "10115", "country": "de"}],
        "meta": {"prefs": {"lang": "de"}, "seen": datetime(2019, 1, 1)},
        "createdAt": Int64(1510000000000),
        "deletedAt": datetime(2021, 1, 1),
    }
    md = mapping.map_document("customers", doc, collect_notes=True)
    assert md.row["name"] == "Ann Lee"
    assert md.row["email"] == "ann@example.com"
    assert md.row["marketing_opt_in"] is False
    assert md.row["tax_id"] == "DE-999"
    assert md.row["tags"] == []
    assert md.row["deleted_at"] == datetime(2021, 1, 1, tzinfo=UTC)
    assert md.row["updated_at"] == md.row["created_at"]  # updatedAt missing -> createdAt
    assert md.row["meta"] == {"prefs": {"lang": "de"}, "seen": {"$date": {"$numberLong": "1546300800000"}}}
    assert md.children["customer_addresses"][0]["country"] == "DE"
    assert {"name:from:firstName+lastName", "legacy_decrypt:decrypted", "boolean:string"} <= md.notes


def test_missing_created_at_falls_back_to_the_object_id_time(mapping):
    doc = {"_id": ObjectId("5a0000000000000000000001"), "org": ORG, "name": "X", "status": "active"}
    md = mapping.map_document("customers", doc)
    assert md.row["created_at"] == datetime.fromtimestamp(0x5A000000, tz=UTC)


@pytest.mark.parametrize(
    "change,reason,field",
    [
        ({"org": None}, "missing_org", "org"),
        ({"total": "12,50"}, "non_numeric_amount", "total"),
        ({"subtotal": Decimal128("43.97")}, "totals_mismatch", "subtotal"),
        ({"total": "52.79"}, "totals_mismatch", "total"),
        ({"status": "lost"}, "invalid_enum", "status"),
        ({"items": [{"sku": "A", "name": "W", "quantity": "two", "unitPrice": 1}]}, "invalid_integer", "items.0.quantity"),
    ],
)
def test_broken_orders_are_rejected_with_field_and_reason(mapping, change, reason, field):
    doc = order_doc(**change)
    if "org" in change and change["org"] is None:
        del doc["org"]
    with pytest.raises(RejectError) as exc:
        mapping.map_document("orders", doc)
    assert exc.value.reason == reason
    assert exc.value.field_path == field
    assert exc.value.record_id == "5f2000000000000000000001"


def test_total_cents_orders_get_a_total(mapping):
    doc = order_doc()
    del doc["total"]
    doc["totalCents"] = Int64(5278)
    md = mapping.map_document("orders", doc)
    assert md.row["total"] == Decimal("52.78")


def test_dangling_references_keep_the_id_and_flag(mapping):
    md = mapping.map_document("orders", order_doc())
    apply_references(md, lambda coll, value: False)
    assert md.row["customer_id"] == "5f2000000000000000000003"
    assert md.flags == {"dangling_customer": "5f2000000000000000000003"}


def test_unmap_gives_the_legacy_document_back(mapping):
    doc = order_doc()
    md = mapping.map_document("orders", doc)
    back = mapping.unmap("orders", md.row, md.children)
    assert back["_id"] == doc["_id"] and isinstance(back["org"], ObjectId)
    assert back["customer"] == doc["customer"]
    assert back["total"] == Decimal128("52.78") and back["subtotal"] == Decimal128("43.98")
    assert back["items"][0] == {"sku": "A", "name": "Widget", "quantity": 2, "unitPrice": Decimal128("19.99"),
                                "taxRate": Decimal128("0.2000")}
    assert back["legacyFlag"] == {"x": Decimal128("1.10")}
    assert back["placedAt"] == datetime(2020, 3, 1, 12, 0, 0, 5000, tzinfo=UTC)
    assert back["deletedAt"] is None and "__v" not in back
    # and the legacy shape maps to the very same rows again
    again = mapping.map_document("orders", back)
    assert again.row == md.row and again.children == md.children


def test_unmap_re_encrypts_for_the_legacy_app(mapping):
    doc = {"_id": ObjectId(), "org": ORG, "name": "A", "status": "active", "taxId": "DE-1"}
    md = mapping.map_document("customers", doc)
    back = mapping.unmap("customers", md.row, md.children)
    assert back["taxId"].startswith("enc:v1:")
    assert mapping.map_document("customers", back).row["tax_id"] == "DE-1"


CUSTOM = """\
name: shop
version: 2
collections:
  products:
    table: products
    drop: [__v]
    skip:
      - {path: archived, equals: true, reason: archived product}
    columns:
      id: {path: _id, convert: object_id, required: true}
      title: {from: [title, name], convert: trim, required: true}
      price: {path: price, convert: money, args: {currency_code: EUR}}
"""


def test_a_user_mapping_for_another_collection():
    m = mapping_from_text(CUSTOM, secret="")
    md = m.map_document("products", {"_id": ObjectId(), "name": " Lamp ", "price": 9.5, "color": "red"})
    assert md.row["title"] == "Lamp" and md.row["price"] == Decimal("9.50")
    assert md.row["extra"] == {"color": "red"}
    with pytest.raises(SkipDocument) as exc:
        m.map_document("products", {"_id": ObjectId(), "title": "Old", "archived": True})
    assert exc.value.reason == "archived product"


def test_mapping_errors_name_the_line_and_field():
    broken = CUSTOM.replace("convert: money", "convert: monies")
    with pytest.raises(MappingError) as exc:
        mapping_from_text(broken, origin="shop.yaml")
    text = str(exc.value)
    assert "shop.yaml:12" in text and "collections.products.columns.price" in text and "monies" in text

    with pytest.raises(MappingError) as exc:
        mapping_from_text(CUSTOM.replace("required: true}\n      title", "requird: true}\n      title"), origin="m.yaml")
    assert "m.yaml:10" in str(exc.value) and "requird" in str(exc.value)


def test_references_must_point_to_an_earlier_collection():
    text = CUSTOM + """\
    references:
      id: {collection: later, flag: dangling}
  later:
    table: later
    columns:
      id: {path: _id, convert: object_id}
"""
    with pytest.raises(MappingError) as exc:
        mapping_from_text(text)
    assert "must be listed before" in str(exc.value)


def test_generated_fill_functions_behave_like_the_generic_loop(mapping, small_dataset):
    from rps_port.etl.sources import open_source
    from rps_port.legacy.generate import DEFAULT_SECRET

    def outcome(cm, doc):
        try:
            md = cm.map(doc, DEFAULT_SECRET, collect_notes=True)
        except (RejectError, SkipDocument) as exc:
            return repr(exc)
        return md.row, md.children, md.notes

    for name in ("customers", "orders", "transactions"):
        cm = mapping.collection(name)
        docs = [d for _, d in open_source(small_dataset).scan(name)]
        fast = [outcome(cm, d) for d in docs]
        saved = cm._fill_parent, [c.fill for c in cm.children]
        try:
            cm._fill_parent = lambda doc, ctx, rid, pre, cm=cm: cm._fill_generic(cm.columns, doc, ctx, rid, pre)
            for child in cm.children:
                child.fill = lambda doc, ctx, rid, pre, cm=cm, cols=child.columns: cm._fill_generic(cols, doc, ctx, rid, pre)
            generic = [outcome(cm, d) for d in docs]
        finally:
            cm._fill_parent = saved[0]
            for child, fill in zip(cm.children, saved[1], strict=True):
                child.fill = fill
        assert fast == generic
