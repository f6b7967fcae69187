"""Canonical form: what a legacy answer and a new answer both become so they can be compared.

A canonical record is the resource in the new API's shape (the fields of `CustomerOut`,
`OrderOut`, `TransactionOut`) as plain Python values (Decimal, aware datetimes); the comparison
rules (`ShadowRules.apply`) then normalise them (`12.30` == `12.3`, UTC, truncation). Three sources reach it, each through the code that owns its knowledge:

- a new API answer: validated by the API schema (`rps_port.domain.schemas`);
- a legacy answer: turned into SQL rows by the ETL mapping (`rps_port.etl`), then built into the
  schema exactly like an SQL row (never re-encoding legacy quirks here);
- an SQL row (cause labelling): its columns and child rows, built into the schema.

Rows become the schema shape by a generic rule read from the SQLAlchemy models: a schema field
named like a relationship takes the child rows (ordered by `position`), a schema field holding a
nested model with no such column takes the `<field>_<name>` columns (`card` <- `card_brand`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from rps_port.domain import schemas

RESOURCES = ("customers", "orders", "transactions")
SCHEMAS: dict[str, type[BaseModel]] = {
    "customers": schemas.CustomerOut,
    "orders": schemas.OrderOut,
    "transactions": schemas.TransactionOut,
}


class CanonicalError(ValueError):
    """An answer that cannot be put in canonical form; `side` says whose, the message says why."""

    def __init__(self, side: str, message: str) -> None:
        super().__init__(f"{side}: {message}")
        self.side = side
        self.message = message


@dataclass
class Rows:
    """A record as SQL rows: the parent row and child rows by child table name."""

    parent: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@cache
def _model_for(resource: str):
    from rps_port.domain import Customer, Order, Transaction

    return {"customers": Customer, "orders": Order, "transactions": Transaction}[resource]


@cache
def _relations(resource: str) -> dict[str, str]:
    """Schema field -> child table, from the model's relationships."""
    from sqlalchemy import inspect

    mapper = inspect(_model_for(resource))
    return {rel.key: rel.mapper.local_table.name for rel in mapper.relationships}


@cache
def _composites(resource: str) -> dict[str, type[BaseModel]]:
    """Schema fields holding a nested model that are neither a column nor a relationship."""
    model = _model_for(resource)
    columns = set(model.__table__.columns.keys())
    out = {}
    for name, info in SCHEMAS[resource].model_fields.items():
        if name in columns or name in _relations(resource):
            continue
        nested = _nested_model(info.annotation)
        if nested is not None:
            out[name] = nested
    return out


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    import typing

    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _project(row: Mapping[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    if model is None:
        return dict(row)
    return {k: v for k, v in row.items() if k in model.model_fields}


def rows_to_shape(resource: str, rows: Rows) -> dict[str, Any]:
    """SQL rows -> a dict in the API schema's shape (not yet validated)."""
    shape = dict(rows.parent)
    fields = SCHEMAS[resource].model_fields
    for attr, table in _relations(resource).items():
        if attr not in fields:
            continue
        children = sorted(rows.children.get(table, []), key=lambda r: r.get("position", 0))
        shape[attr] = [_project(child, _nested_model(fields[attr].annotation)) for child in children]
    for attr, nested in _composites(resource).items():
        parts = {name: rows.parent.get(f"{attr}_{name}") for name in nested.model_fields}
        shape[attr] = parts if any(v is not None for v in parts.values()) else None
    return shape


def _validate(resource: str, shape: Mapping[str, Any], side: str) -> dict[str, Any]:
    try:
        model = SCHEMAS[resource].model_validate(shape)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or resource
        raise CanonicalError(side, f"{resource} record does not fit the API schema at {where}: {first['msg']}") from None
    # values are normalised (Decimal trailing zeros, UTC) by ShadowRules.apply, which every comparison runs
    return model.model_dump(mode="python")


def canonical_from_new(resource: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A new API record (JSON object) in canonical form."""
    return _validate(resource, body, "new")


def canonical_from_rows(resource: str, rows: Rows, side: str = "sql") -> dict[str, Any]:
    """SQL rows (from the ETL mapping or from the database) in canonical form."""
    return _validate(resource, rows_to_shape(resource, rows), side)
