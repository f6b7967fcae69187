"""Converters accept BSON types, Extended JSON and Mongoose JSON, and refuse with a reason code."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from bson import Decimal128, Int64, ObjectId

from rps_port.etl import convert
from rps_port.etl.convert import Context
from rps_port.etl.errors import ConversionError
from rps_port.legacy.crypto import legacy_encrypt
from rps_port.timeutil import naive_as_utc


def ctx(**row) -> Context:
    return Context(row=row, secret="the-secret")


def money(value, currency="USD"):
    return convert.money(value, {}, ctx(currency=currency))


@pytest.mark.parametrize(
    "value",
    [Decimal128("19.99"), 19.99, 19.990000000000002, 19.989999999999995, "19.99", " 19.99 ",
     {"$numberDecimal": "19.99"}, {"$numberDouble": "19.990000000000002"}],
)
def test_money_from_every_legacy_form_is_the_same_decimal(value):
    out = money(value)
    assert out == Decimal("19.99") and str(out) == "19.99"


def test_money_quantises_to_the_currency_minor_unit():
    assert str(money(1500, "JPY")) == "1500"
    assert str(money(Decimal128("1.234"), "BHD")) == "1.234"
    assert str(money(12, "usd")) == "12.00"


def test_a_double_is_read_as_its_shortest_repr_not_its_binary_value():
    # 0.1 + 0.2 is 0.30000000000000004 in binary float; read exactly then rounded half-even.
    assert money(0.1 + 0.2) == Decimal("0.30")
    assert money(2.675) == Decimal("2.68")  # binary 2.67499999... would round down; the shortest repr is 2.675


@pytest.mark.parametrize("bad", ["12,50", "abc", "", "N/A", "1.234,56", "--", float("nan"), float("inf"), True, [1]])
def test_non_numeric_amounts_are_refused(bad):
    with pytest.raises(ConversionError) as exc:
        money(bad)
    assert exc.value.reason == "non_numeric_amount"


def test_exact_amounts_with_more_places_than_the_currency_are_refused_not_rounded():
    with pytest.raises(ConversionError) as exc:
        money(Decimal128("12.345"))
    assert exc.value.reason == "excess_precision"
    assert convert.money("12.345", {"round_exact": True}, ctx(currency="USD")) == Decimal("12.34")


def test_cents_and_back():
    assert convert.cents(Int64(4838), {}, ctx(currency="USD")) == Decimal("48.38")
    assert convert.cents("1500", {}, ctx(currency="JPY")) == Decimal(1500)
    back = convert.CONVERTERS["cents"].reverse(Decimal("48.38"), {}, ctx(currency="USD"))
    assert back == 4838 and isinstance(back, Int64)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2020, 5, 6, 7, 8, 9, 123000),
        datetime(2020, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
        "2020-05-06T07:08:09.123Z",
        "2020-05-06T09:08:09.123+02:00",
        Int64(1588748889123),
        1588748889123,
        {"$date": "2020-05-06T07:08:09.123Z"},
        {"$date": {"$numberLong": "1588748889123"}},
    ],
)
def test_dates_from_every_form_are_utc_with_milliseconds(value):
    out = convert.to_datetime(value, {}, ctx())
    assert out == datetime(2020, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    assert out.tzinfo is not None and out.utcoffset().total_seconds() == 0


def test_bad_dates_are_refused():
    with pytest.raises(ConversionError) as exc:
        convert.to_datetime("yesterday", {}, ctx())
    assert exc.value.reason == "invalid_datetime"


@pytest.mark.parametrize("value,expected", [(True, True), ("true", True), ("FALSE", False), (" yes ", True), (0, False)])
def test_booleans(value, expected):
    assert convert.boolean(value, {}, ctx()) is expected


def test_object_ids_in_every_form():
    oid = ObjectId()
    for value in (oid, str(oid), str(oid).upper(), {"$oid": str(oid)}):
        assert convert.object_id(value, {}, ctx()) == str(oid)
    with pytest.raises(ConversionError):
        convert.object_id("not-an-id", {}, ctx())
    assert convert.CONVERTERS["object_id"].reverse(str(oid), {}, ctx()) == oid


def test_text_normalisers():
    assert convert.email("  Ann.Lee@Example.COM ", {}, ctx()) == "ann.lee@example.com"
    assert convert.currency(" eur", {}, ctx()) == "EUR"
    assert convert.upper("de", {"length": 2}, ctx()) == "DE"
    assert convert.enum(" Active", {"values": ["active", "blocked"]}, ctx()) == "active"
    with pytest.raises(ConversionError) as exc:
        convert.enum("gone", {"values": ["active", "blocked"]}, ctx())
    assert exc.value.reason == "invalid_enum"
    assert convert.text("  ü 日本 ", {}, ctx()) == "  ü 日本 "


def test_legacy_encrypted_values_are_decrypted_and_plaintext_passes():
    enc = legacy_encrypt("DE-123456789", "the-secret")
    assert convert.decrypt(enc, {}, ctx()) == "DE-123456789"
    assert convert.decrypt("DE-123456789", {}, ctx()) == "DE-123456789"
    wrong = Context(row={}, secret="another-secret")
    with pytest.raises(ConversionError) as exc:
        convert.decrypt(enc, {}, wrong)
    assert exc.value.reason == "decrypt_failed"
    assert "DE-123456789" not in exc.value.message


def test_json_keeps_bson_types_as_canonical_extended_json():
    value = {"at": datetime(2020, 1, 1, tzinfo=UTC), "n": Decimal128("1.50"), "id": ObjectId("5f1d7f0c2a4b6c8d9e0f1a2b")}
    out = convert.to_json(value, {}, ctx())
    assert out == {
        "at": {"$date": {"$numberLong": "1577836800000"}},
        "n": {"$numberDecimal": "1.50"},
        "id": {"$oid": "5f1d7f0c2a4b6c8d9e0f1a2b"},
    }
    json.dumps(out)  # plain JSON
    assert convert.CONVERTERS["json"].reverse(out, {}, ctx()) == value


def test_decimal128_fast_path_is_exact():
    for text in ("0", "0.00", "-0", "-1.5", "19.99", "1E+10", "12345678901234567890.1234", "NaN", "-Infinity",
                 "9999999999999999999999999999999999", "1E-6176", "9.999999999999999999999999999999999E+6144",
                 "Infinity"):
        d = Decimal128(text)
        fast, slow = convert.decimal128_to_decimal(d), d.to_decimal()
        assert str(fast) == str(slow)
    rng = random.Random(3)
    for _ in range(2000):  # any coefficient and exponent Decimal128 holds: same digits, same exponent
        d = Decimal128(Decimal(f"{rng.randint(-(10**34) + 1, 10**34 - 1)}E{rng.randint(-6100, 6100)}"))
        assert str(convert.decimal128_to_decimal(d)) == str(d.to_decimal())


def test_naive_bson_dates_become_the_same_instant_in_utc():
    for naive in (datetime(2017, 8, 7, 3, 31, 51, 464000), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999000),
                  datetime(2024, 2, 29, 12, 0, 0, 1000, fold=1)):
        out = convert.CONVERTERS["datetime"].forward(naive, {}, ctx())
        assert out == naive.replace(tzinfo=UTC) and out.tzinfo is UTC and naive_as_utc(naive) == out
