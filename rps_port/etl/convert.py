"""Converters: one legacy value in, one SQL value out (and back, for reverse sync).

Every converter accepts the three shapes a legacy value arrives in: BSON types (from pymongo or a
mongodump file), Extended JSON (`{"$oid"}`, `{"$numberDecimal"}`, `{"$date"}`...) and Mongoose's
JSON (24-hex id strings, `{"$numberDecimal": "12.30"}`, ISO strings with milliseconds and `Z`).
A refusal is a `ConversionError(reason, message)`; the mapping turns it into a reject.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, DivisionByZero, InvalidOperation, Overflow
from decimal import Context as DecimalContext
from typing import Any

from bson import Decimal128, Int64, ObjectId
from bson.datetime_ms import DatetimeMS

from rps_port.etl import extjson
from rps_port.etl.errors import ConversionError
from rps_port.ids import normalize_object_id
from rps_port.legacy.crypto import LegacyCryptoError, is_legacy_encrypted, legacy_decrypt, legacy_encrypt
from rps_port.money import from_minor, minor_units, quantum
from rps_port.timeutil import ensure_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMERIC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f", ""}
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass
class Context:
    """What a converter may look at besides its value: the row built so far and its parent row."""

    row: dict[str, Any]
    parent: dict[str, Any] | None = None
    secret: str = ""
    notes: set[str] | None = None

    def lookup(self, column: str) -> Any:
        if column in self.row:
            return self.row[column]
        if self.parent is not None:
            return self.parent.get(column)
        return None

    def note(self, text: str) -> None:
        if self.notes is not None:
            self.notes.add(text)


Forward = Callable[[Any, dict[str, Any], Context], Any]
Reverse = Callable[[Any, dict[str, Any], Context], Any]


@dataclass(frozen=True)
class Converter:
    name: str
    forward: Forward
    reverse: Reverse
    sql_type: str  # for `etl plan` of tables the project does not define
    doc: str
    args: tuple[str, ...] = field(default_factory=tuple)
    # The common case written inline by the generated mapping code: (condition on `raw`, value), both
    # Python expressions over FAST_NAMES. Where the condition holds, the value must be what `forward`
    # returns, with no note, and never None; elsewhere `forward` runs.
    fast: tuple[str, str] | None = None


FAST_NAMES: dict[str, Any] = {"ObjectId": ObjectId, "datetime": datetime, "UTC": UTC, "combine": datetime.combine}


CONVERTERS: dict[str, Converter] = {}


def converter(
    name: str, sql_type: str, doc: str, args: tuple[str, ...] = (), fast: tuple[str, str] | None = None
) -> Callable[[Forward], Forward]:
    def register(fn: Forward) -> Forward:
        CONVERTERS[name] = Converter(name, fn, _identity, sql_type, doc, args, fast)
        return fn

    return register


def reverse_of(name: str) -> Callable[[Reverse], Reverse]:
    def register(fn: Reverse) -> Reverse:
        conv = CONVERTERS[name]
        CONVERTERS[name] = Converter(conv.name, conv.forward, fn, conv.sql_type, conv.doc, conv.args, conv.fast)
        return fn

    return register


def _identity(value: Any, _args: dict[str, Any], _ctx: Context) -> Any:
    return value


def unwrap(value: Any) -> Any:
    """Extended JSON number wrappers and Int64 to plain Python; anything else unchanged."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key in ("$numberInt", "$numberLong"):
            return int(inner)
        if key == "$numberDouble":
            return float(inner)
    if isinstance(value, Int64):
        return int(value)
    return value


# --------------------------------------------------------------------------- numbers and money


def decimal128_to_decimal(value: Decimal128) -> Decimal:
    """Decimal128 -> Decimal, exactly; the common (finite, small-coefficient) form decoded directly."""
    high, low = value.__getstate__()  # its pickled state; `.bid` would pack these into bytes to unpack
    if (high & 0x6000000000000000) == 0x6000000000000000:  # large-coefficient form, Infinity or NaN
        return value.to_decimal()
    exponent = ((high & 0x7FFE000000000000) >> 49) - 6176
    coefficient = ((high & 0x0001FFFFFFFFFFFF) << 64) | low
    return Decimal(f"{'-' if high >> 63 else ''}{coefficient}E{exponent}")


def to_decimal(value: Any, ctx: Context | None = None) -> tuple[Decimal, str]:
    """An exact Decimal and the kind it came from (decimal128, double, string, int)."""
    kind = type(value)
    if kind is Decimal128:  # the common cases first, by exact type
        dec = decimal128_to_decimal(value)
        if dec.is_finite():
            return dec, "decimal128"
    elif kind is float and math.isfinite(value):
        return Decimal(repr(value)), "double"
    elif kind is str and _NUMERIC.match(text := value.strip()):
        return Decimal(text), "string"
    elif kind is int:
        return Decimal(value), "int"
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "$numberDecimal":
            value = Decimal128(str(inner))
        elif key == "$numberDouble":
            if not _NUMERIC.match(str(inner)):
                raise ConversionError("non_numeric_amount", f"not a finite number ({inner!s:.10})")
            return Decimal(str(inner)), "double"
        elif key in ("$numberInt", "$numberLong"):
            return Decimal(int(inner)), "int"
    if isinstance(value, bool):
        raise ConversionError("non_numeric_amount", "a boolean where a number was expected")
    if isinstance(value, Decimal128):
        dec = decimal128_to_decimal(value)
        if not dec.is_finite():
            raise ConversionError("non_numeric_amount", "Decimal128 is not finite")
        return dec, "decimal128"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError("non_numeric_amount", "decimal is not finite")
        return value, "decimal"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError("non_numeric_amount", "double is not finite")
        # repr() is the shortest decimal that round-trips the double: 19.990000000000002 stays itself.
        return Decimal(repr(value)), "double"
    if isinstance(value, (int, Int64)):
        return Decimal(int(value)), "int"
    if isinstance(value, str):
        text = value.strip()
        if not _NUMERIC.match(text):
            raise ConversionError("non_numeric_amount", "numeric string expected (e.g. '12.50')")
        try:
            return Decimal(text), "string"
        except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
            raise ConversionError("non_numeric_amount", "numeric string expected") from None
    raise ConversionError("non_numeric_amount", f"a number was expected, got {type(value).__name__}")


_QUANTA: dict[str, Decimal] = {}
# Python's default context with half-even rounding, as a context method (no keyword arguments to parse).
_HALF_EVEN = DecimalContext(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def _currency_of(args: dict[str, Any], ctx: Context) -> str:
    code = args.get("currency_code") or ctx.lookup(args.get("currency", "currency"))
    if not code:
        raise ConversionError("missing_currency", "money needs a currency and the document has none")
    return str(code)


@converter(
    "money",
    "NUMERIC(20,4)",
    "Decimal128 / double / numeric string / integer units -> Decimal quantised to the currency's minor unit. "
    "A double is read as its shortest round-trip decimal then rounded half-even (float noise disappears); "
    "exact types (Decimal128, string) with non-zero digits beyond the minor unit are rejected "
    "(`excess_precision`) unless `round_exact: true`.",
    ("currency", "currency_code", "round_exact"),
)
def money(value: Any, args: dict[str, Any], ctx: Context) -> Decimal:
    dec, kind = to_decimal(value)
    currency = _currency_of(args, ctx)
    if ctx.notes is not None:
        ctx.notes.add(f"money:{kind}")
    step = _QUANTA.get(currency)
    if step is None:
        step = _QUANTA[currency] = quantum(currency)
    out = _HALF_EVEN.quantize(dec, step)
    if out != dec and kind != "double" and not args.get("round_exact"):
        raise ConversionError(
            "excess_precision", f"{kind} amount has more than {minor_units(currency)} decimal places for {currency}"
        )
    return out


@reverse_of("money")
def _money_back(value: Any, _args: dict[str, Any], _ctx: Context) -> Any:
    return None if value is None else Decimal128(Decimal(value))


@converter(
    "cents",
    "NUMERIC(20,4)",
    "Integer minor units (legacy `totalCents`) -> Decimal amount in the currency.",
    ("currency", "currency_code"),
)
def cents(value: Any, args: dict[str, Any], ctx: Context) -> Decimal:
    dec, _kind = to_decimal(value)
    if dec != dec.to_integral_value():
        raise ConversionError("non_numeric_amount", "minor units must be a whole number")
    ctx.note("money:cents")
    return from_minor(int(dec), _currency_of(args, ctx))


@reverse_of("cents")
def _cents_back(value: Any, args: dict[str, Any], ctx: Context) -> Any:
    if value is None:
        return None
    return Int64(int(Decimal(value).scaleb(minor_units(_currency_of(args, ctx)))))


_SCALES: dict[int, Decimal] = {}  # the decimal converter's quantum per scale


@converter(
    "decimal",
    "NUMERIC(20,4)",
    "Exact decimal (same inputs as money) with at most `scale` places (default 4); more is rejected.",
    ("scale",),
)
def decimal(value: Any, args: dict[str, Any], ctx: Context) -> Decimal:
    dec, kind = to_decimal(value)
    scale = int(args.get("scale", 4))
    step = _SCALES.get(scale)
    if step is None:
        step = _SCALES[scale] = Decimal(1).scaleb(-scale)
    out = dec.quantize(step)
    if out != dec and kind != "double":
        raise ConversionError("excess_precision", f"more than {scale} decimal places")
    return out


@reverse_of("decimal")
def _decimal_back(value: Any, _args: dict[str, Any], _ctx: Context) -> Any:
    return None if value is None else Decimal128(Decimal(value))


@converter("integer", "INTEGER", "int / Int64 / integral double / integral numeric string -> int.")
def integer(value: Any, _args: dict[str, Any], ctx: Context) -> int:
    value = unwrap(value)
    if isinstance(value, bool):
        raise ConversionError("invalid_integer", "a boolean where an integer was expected")
    if isinstance(value, int):
        return value
    try:
        dec, kind = to_decimal(value)
    except ConversionError:
        raise ConversionError("invalid_integer", "an integer was expected") from None
    if dec != dec.to_integral_value():
        raise ConversionError("invalid_integer", "an integer was expected, got a fraction")
    ctx.note(f"integer:{kind}")
    return int(dec)


# --------------------------------------------------------------------------- ids, times, flags


@converter("object_id", "VARCHAR(24)", "ObjectId, 24-hex string (any case) or {$oid} -> 24 lower-case hex.",
           fast=("type(raw) is ObjectId", "raw.binary.hex()"))
def object_id(value: Any, _args: dict[str, Any], ctx: Context) -> str:
    if type(value) is ObjectId:
        return value.binary.hex()
    out = normalize_object_id(value)
    if out is None:
        raise ConversionError("invalid_object_id", "an ObjectId (or its 24-hex string) was expected")
    if isinstance(value, str):
        ctx.note("object_id:string")
    return out


@reverse_of("object_id")
def _object_id_back(value: Any, _args: dict[str, Any], _ctx: Context) -> Any:
    return None if value is None else ObjectId(value)


def _truncate_ms(dt: datetime) -> datetime:
    extra = dt.microsecond % 1000
    return dt.replace(microsecond=dt.microsecond - extra) if extra else dt


@converter(
    "datetime",
    "TIMESTAMP WITH TIME ZONE",
    "BSON Date, ISO-8601 string, epoch milliseconds (int/Int64/{$numberLong}) or {$date} -> UTC, millisecond "
    "precision (what a BSON Date holds).",
    # a BSON Date as pymongo decodes it: naive, UTC, whole milliseconds; the value is naive_as_utc(raw)
    fast=(
        "type(raw) is datetime and raw.tzinfo is None and not raw.microsecond % 1000",
        "combine(raw.date(), raw.time(), UTC)",
    ),
)
def to_datetime(value: Any, _args: dict[str, Any], ctx: Context) -> datetime:
    if isinstance(value, dict) and "$date" in value and len(value) == 1:
        value = value["$date"]
        if isinstance(value, dict):
            value = unwrap(value)
    value = unwrap(value)
    if isinstance(value, datetime):
        return _truncate_ms(ensure_utc(value))
    if isinstance(value, DatetimeMS):
        value = int(value)
    if isinstance(value, bool):
        raise ConversionError("invalid_datetime", "a boolean where a date was expected")
    if isinstance(value, int):
        ctx.note("datetime:epoch_ms")
        return EPOCH + timedelta(milliseconds=value)
    if isinstance(value, float) and value == int(value):
        ctx.note("datetime:epoch_ms")
        return EPOCH + timedelta(milliseconds=int(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ConversionError("invalid_datetime", "an ISO-8601 date-time was expected") from None
        ctx.note("datetime:iso_string")
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return _truncate_ms(parsed)
    raise ConversionError("invalid_datetime", f"a date was expected, got {type(value).__name__}")


def id_time(record_id: str) -> datetime:
    """When an ObjectId was generated (its first four bytes): the fallback for a missing `createdAt`."""
    return datetime.fromtimestamp(int(record_id[:8], 16), tz=UTC)


@converter("boolean", "BOOLEAN", "bool, 'true'/'false'/'1'/'0'/'yes'/'no' (any case), 0/1 -> bool.")
def boolean(value: Any, _args: dict[str, Any], ctx: Context) -> bool:
    value = unwrap(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        ctx.note("boolean:string")
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ConversionError("invalid_boolean", "a boolean (or 'true'/'false') was expected")


# --------------------------------------------------------------------------- text


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ConversionError("invalid_text", f"a string was expected, got {type(value).__name__}")
    return value


@converter("text", "TEXT", "A string kept exactly as it is (any Unicode).", fast=("type(raw) is str", "raw"))
def text(value: Any, _args: dict[str, Any], _ctx: Context) -> str:
    return _text(value)


@converter("trim", "TEXT", "A string with surrounding whitespace removed; empty -> NULL.")
def trim(value: Any, _args: dict[str, Any], _ctx: Context) -> str | None:
    return _text(value).strip() or None


@converter("email", "VARCHAR(320)", "Trimmed and lower-cased; empty -> NULL. Duplicates are allowed.")
def email(value: Any, _args: dict[str, Any], ctx: Context) -> str | None:
    raw = _text(value)
    out = raw.strip().lower()
    if out != raw:
        ctx.note("email:normalised")
    return out or None


@converter("upper", "TEXT", "Trimmed and upper-cased (country codes).", ("length",))
def upper(value: Any, args: dict[str, Any], ctx: Context) -> str:
    raw = _text(value)
    out = raw.strip().upper()
    if out != raw:
        ctx.note("upper:normalised")
    length = args.get("length")
    if length is not None and len(out) != int(length):
        raise ConversionError("invalid_code", f"a {length}-letter code was expected")
    return out


@converter("currency", "VARCHAR(3)", "ISO-4217 code, trimmed and upper-cased; anything else is rejected.")
def currency(value: Any, _args: dict[str, Any], ctx: Context) -> str:
    raw = _text(value)
    out = raw.strip().upper()
    if not _CURRENCY.match(out):
        raise ConversionError("invalid_currency", "an ISO-4217 currency code was expected")
    if out != raw:
        ctx.note("currency:normalised")
    return out


@converter(
    "enum",
    "VARCHAR(32)",
    "Trimmed, lower-cased and checked against `values` (with optional `aliases` {legacy: new}).",
    ("values", "aliases"),
)
def enum(value: Any, args: dict[str, Any], ctx: Context) -> str:
    out = _text(value).strip().lower()
    out = (args.get("aliases") or {}).get(out, out)
    values = args.get("values") or ()
    if values and out not in values:
        raise ConversionError("invalid_enum", f"not one of {', '.join(values)}")
    return out


@converter(
    "legacy_decrypt",
    "TEXT",
    "A legacy `enc:v1:` value decrypted with the legacy secret (plaintext from older documents passes through). "
    "Reverse sync re-encrypts with the legacy secret. A field-encryption column type re-encrypts under the new key.",
)
def decrypt(value: Any, _args: dict[str, Any], ctx: Context) -> str:
    raw = _text(value)
    if not is_legacy_encrypted(raw):
        if raw.startswith("enc:"):
            raise ConversionError("decrypt_failed", "malformed enc:v1 value")
        ctx.note("legacy_decrypt:plaintext")
        return raw
    try:
        out = legacy_decrypt(raw, ctx.secret)
    except LegacyCryptoError as exc:
        raise ConversionError("decrypt_failed", str(exc)) from None
    ctx.note("legacy_decrypt:decrypted")
    return out


@reverse_of("legacy_decrypt")
def _encrypt_back(value: Any, _args: dict[str, Any], ctx: Context) -> Any:
    return None if value is None else legacy_encrypt(value, ctx.secret)


# --------------------------------------------------------------------------- structures


@converter("string_list", "JSON", "An array of strings (kept in order).")
def string_list(value: Any, _args: dict[str, Any], _ctx: Context) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConversionError("invalid_list", "an array of strings was expected")
    return list(value)


@converter(
    "json",
    "JSON",
    "Any value kept as canonical Extended JSON (BSON types survive: dates, decimals, ids). "
    "`upper: [key, ...]` upper-cases those keys of an object (e.g. an embedded address's country).",
    ("upper",),
)
def to_json(value: Any, args: dict[str, Any], ctx: Context) -> Any:
    out = extjson.to_canonical(value)
    for key in args.get("upper") or ():
        if isinstance(out, dict) and isinstance(out.get(key), str):
            fixed = out[key].strip().upper()
            if fixed != out[key]:
                ctx.note("json:upper")
            out[key] = fixed
    return out


@reverse_of("json")
def _json_back(value: Any, _args: dict[str, Any], _ctx: Context) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return extjson.from_canonical(value)


def get(name: str) -> Converter:
    try:
        return CONVERTERS[name]
    except KeyError:
        raise KeyError(f"unknown converter {name!r}; known: {', '.join(sorted(CONVERTERS))}") from None
