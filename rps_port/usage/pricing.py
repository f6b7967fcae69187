"""The pricing catalog: Decimal prices with effective dates, loaded from a versioned TOML file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

DEFAULT_CATALOG = Path(__file__).with_name("pricing.toml")


class PricingError(ValueError):
    """The catalog is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Price:
    type: str
    unit: str
    price: Decimal
    effective_from: date
    effective_to: date | None = None
    provider: str | None = None
    model: str | None = None
    country: str | None = None  # "*" = any destination without its own entry


@dataclass(frozen=True)
class Quote:
    unit_price: Decimal
    cost: Decimal
    currency: str
    version: str


def _date(value: object, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PricingError(f"{where}: not an ISO date: {value!r}") from None


class Catalog:
    def __init__(self, version: str, currency: str, prices: list[Price], calling_codes: dict[str, str]) -> None:
        self.version = version
        self.currency = currency
        self.prices = prices
        self.calling_codes = calling_codes

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        path = Path(path) if path else DEFAULT_CATALOG
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PricingError(f"pricing catalog {path}: {exc}") from None
        if "version" not in data or "currency" not in data:
            raise PricingError(f"pricing catalog {path}: needs top-level 'version' and 'currency'")
        prices = []
        for i, entry in enumerate(data.get("prices", [])):
            where = f"pricing catalog {path.name} prices[{i}]"
            for required in ("type", "unit", "price", "effective_from"):
                if required not in entry:
                    raise PricingError(f"{where}: missing '{required}'")
            if not isinstance(entry["price"], str):
                raise PricingError(f"{where}: 'price' must be a decimal string, not {type(entry['price']).__name__}")
            try:
                amount = Decimal(entry["price"])
            except InvalidOperation:
                raise PricingError(f"{where}: 'price' is not a decimal: {entry['price']!r}") from None
            if amount < 0:
                raise PricingError(f"{where}: 'price' is negative")
            prices.append(
                Price(
                    type=entry["type"],
                    unit=entry["unit"],
                    price=amount,
                    effective_from=_date(entry["effective_from"], where),
                    effective_to=_date(entry["effective_to"], where) if "effective_to" in entry else None,
                    provider=entry.get("provider"),
                    model=entry.get("model"),
                    country=entry.get("country"),
                )
            )
        return cls(str(data["version"]), str(data["currency"]), prices, dict(data.get("calling_codes", {})))

    def country_of(self, phone: str) -> str | None:
        digits = "".join(ch for ch in phone if ch.isdigit())
        if not phone.strip().startswith("+"):
            return None
        for length in (3, 2, 1):
            if digits[:length] in self.calling_codes:
                return self.calling_codes[digits[:length]]
        return None

    def find(
        self,
        type: str,
        unit: str,
        when: datetime,
        *,
        provider: str | None = None,
        model: str | None = None,
        country: str | None = None,
    ) -> Price | None:
        day = when.date()
        best: tuple[tuple[int, date], Price] | None = None
        for p in self.prices:
            if p.type != type or p.unit != unit:
                continue
            if p.provider is not None and p.provider != provider:
                continue
            if p.model is not None and p.model != model:
                continue
            if p.country is not None and p.country not in ("*", country):
                continue
            if p.effective_from > day or (p.effective_to is not None and day >= p.effective_to):
                continue
            specific = int(p.country not in (None, "*")) + int(p.provider is not None) + int(p.model is not None)
            key = (specific, p.effective_from)
            if best is None or key > best[0]:
                best = (key, p)
        return best[1] if best else None

    def quote(self, type: str, unit: str, quantity: Decimal, when: datetime, **dims: str | None) -> Quote | None:
        price = self.find(type, unit, when, **dims)
        if price is None:
            return None
        return Quote(price.price, price.price * quantity, self.currency, self.version)


@lru_cache(maxsize=8)
def load_catalog(path: str | None = None) -> Catalog:
    return Catalog.load(path)
