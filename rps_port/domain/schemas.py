"""Pydantic v2 schemas: what the API reads and writes. Money is an exact decimal string, times UTC."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from rps_port.timeutil import ensure_utc

ObjectId = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", examples=["65a1f0c2e4b0a1b2c3d4e5f6"])]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
UTC = Annotated[datetime, AfterValidator(ensure_utc)]
# Serialised as a JSON string so no client parses money into a binary float.
MoneyOut = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]
MoneyIn = Annotated[
    Decimal,
    Field(max_digits=16, decimal_places=4, allow_inf_nan=False),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]

CustomerStatus = Literal["active", "blocked", "archived"]
OrderStatus = Literal["draft", "placed", "paid", "fulfilled", "cancelled", "refunded"]
TransactionKind = Literal["charge", "refund", "payout", "adjustment"]
TransactionStatus = Literal["pending", "succeeded", "failed", "reversed"]


def _unstorable(value: Any, path: str) -> str | None:
    """Why `value` cannot be stored as given (PostgreSQL rejects NUL in text and JSON, lone UTF-16
    surrogates cannot be encoded, JSON has no NaN/Infinity), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path} contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path} is not valid Unicode"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{path} is not a finite number"
    elif isinstance(value, dict):
        for k, v in value.items():
            problem = _unstorable(k, f"{path} key") or _unstorable(v, f"{path}.{k}")
            if problem:
                return problem
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            problem = _unstorable(v, f"{path}.{i}")
            if problem:
                return problem
    return None


class InputModel(BaseModel):
    """A request body: unknown fields are errors, and every value must be storable on both backends."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> InputModel:
        for name, value in self.__dict__.items():
            problem = _unstorable(value, name)
            if problem:
                raise ValueError(problem)
        return self


class Attribution(BaseModel):
    org_id: ObjectId
    client_id: ObjectId | None = None
    project_id: ObjectId | None = None


class RecordOut(Attribution):
    model_config = ConfigDict(from_attributes=True)

    id: ObjectId
    created_at: UTC
    updated_at: UTC
    deleted_at: UTC | None = None


class Address(InputModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    kind: Literal["billing", "shipping"]
    line1: str = Field(min_length=1, max_length=300)
    line2: str | None = Field(default=None, max_length=300)
    city: str = Field(min_length=1, max_length=120)
    region: str | None = Field(default=None, max_length=120)
    postal_code: str | None = Field(default=None, max_length=32)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class AddressOut(BaseModel):
    """An address as stored: lenient, because migrated shipping addresses are legacy JSON
    (camelCase `postalCode`, `kind` often absent)."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    kind: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = Field(default=None, validation_alias=AliasChoices("postal_code", "postalCode"))
    country: str | None = None


class CustomerOut(RecordOut):
    name: str
    email: str | None = None
    phone: str | None = None
    status: CustomerStatus
    marketing_opt_in: bool
    tax_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    addresses: list[AddressOut] = Field(default_factory=list)
    meta: dict[str, Any] | None = None


class CustomerCreate(InputModel):
    name: str = Field(min_length=1, max_length=300)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{4,31}$")
    status: CustomerStatus = "active"
    marketing_opt_in: bool = False
    tax_id: str | None = Field(default=None, max_length=64)
    tags: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)
    addresses: list[Address] = Field(default_factory=list, max_length=20)
    meta: dict[str, Any] | None = None
    client_id: ObjectId | None = None
    project_id: ObjectId | None = None


class CustomerUpdate(InputModel):
    """Partial update: absent fields stay as they are; `null` clears a nullable field and is an
    error for the others (name, status, marketing_opt_in, tags, addresses)."""

    name: str = Field(default=None, min_length=1, max_length=300)  # type: ignore[assignment]
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{4,31}$")
    status: CustomerStatus = None  # type: ignore[assignment]
    marketing_opt_in: bool = None  # type: ignore[assignment]
    tax_id: str | None = Field(default=None, max_length=64)
    tags: list[Annotated[str, Field(max_length=64)]] = Field(default=None, max_length=50)  # type: ignore[assignment]
    addresses: list[Address] = Field(default=None, max_length=20)  # type: ignore[assignment]
    meta: dict[str, Any] | None = None


class OrderItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    sku: str
    name: str
    quantity: int
    unit_price: MoneyOut
    discount: MoneyOut | None = None
    tax_rate: MoneyOut | None = None


class OrderOut(RecordOut):
    number: str
    customer_id: ObjectId | None = None
    status: OrderStatus
    currency: CurrencyCode
    subtotal: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    items: list[OrderItemOut] = Field(default_factory=list)
    shipping_address: AddressOut | None = None
    placed_at: UTC | None = None
    notes: str | None = None

    @field_validator("shipping_address", mode="before")
    @classmethod
    def _legacy_address(cls, value: Any) -> Any:
        # a migrated document may hold anything here; what is not an object is shown as absent
        return value if isinstance(value, (dict, AddressOut)) else None


class OrderItemCreate(InputModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=300)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: MoneyIn = Field(ge=0)
    discount: MoneyIn | None = Field(default=None, ge=0)
    tax_rate: MoneyIn | None = Field(default=None, ge=0, le=1)


class OrderCreate(InputModel):
    customer_id: ObjectId
    currency: CurrencyCode
    items: list[OrderItemCreate] = Field(min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=5000)
    shipping_address: Address | None = None
    client_id: ObjectId | None = None
    project_id: ObjectId | None = None


class OrderUpdate(InputModel):
    status: OrderStatus


class CardOut(BaseModel):
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


class TransactionOut(RecordOut):
    order_id: ObjectId | None = None
    customer_id: ObjectId | None = None
    parent_id: ObjectId | None = None
    kind: TransactionKind
    status: TransactionStatus
    amount: MoneyOut
    currency: CurrencyCode
    provider: str
    provider_ref: str | None = None
    card: CardOut | None = None
    failure_code: str | None = None
    processed_at: UTC | None = None


class RefundCreate(InputModel):
    amount: MoneyIn | None = Field(default=None, gt=0, description="Defaults to the remaining refundable amount.")
    reason: str | None = Field(default=None, max_length=500)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A list page: `next_cursor` is opaque; pass it back as `cursor` for the next page (null at the end)."""

    items: list[T]
    next_cursor: str | None = None
