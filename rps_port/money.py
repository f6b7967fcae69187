"""Money: Decimal only, quantised to the currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

# ISO 4217 minor units that differ from 2; everything else uses 2.
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-even to the currency's minor unit (banker's rounding, as ledgers do)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def from_minor(cents: int, currency: str) -> Decimal:
    """Integer minor units (e.g. legacy `totalCents`) to a Decimal amount."""
    return Decimal(int(cents)).scaleb(-minor_units(currency))
