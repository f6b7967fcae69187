"""Usage reports: rows grouped by attribution and type, with exact Decimal totals.

Sums are done here in Decimal (SQLite stores the amounts as text), so the CLI and `GET /usage`,
which both call `usage_report`, give the same digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rps_port.timeutil import ensure_utc
from rps_port.usage.models import UsageEvent, plain

GROUP_FIELDS = {
    "org": "org_id",
    "client": "client_id",
    "project": "project_id",
    "type": "type",
    "unit": "unit",
    "provider": "provider",
    "model": "model",
    "country": "country",
    "day": None,
    "month": None,
}


class ReportError(ValueError):
    pass


def parse_group_by(value: str | Iterable[str]) -> tuple[str, ...]:
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = [n for n in names if n not in GROUP_FIELDS]
    if unknown:
        raise ReportError(f"group-by: unknown field {unknown[0]!r} (one of {', '.join(GROUP_FIELDS)})")
    return tuple(dict.fromkeys(names))


@dataclass
class ReportRow:
    key: dict[str, str | None]
    events: int = 0
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    unpriced: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.key, "events": self.events, "quantity": str(plain(self.quantity)),
                "cost": str(plain(self.cost)), "unpriced_events": self.unpriced}


@dataclass
class UsageReport:
    org_id: str
    since: datetime | None
    until: datetime | None
    group_by: tuple[str, ...]
    currency: str | None
    rows: list[ReportRow] = field(default_factory=list)

    @property
    def total_cost(self) -> Decimal:
        return sum((r.cost for r in self.rows), Decimal(0))

    @property
    def total_events(self) -> int:
        return sum(r.events for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "org": self.org_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "group_by": list(self.group_by),
            "currency": self.currency,
            "rows": [r.to_dict() for r in self.rows],
            "total": {"events": self.total_events, "cost": str(plain(self.total_cost)),
                      "unpriced_events": sum(r.unpriced for r in self.rows)},
        }


def _key_value(row: UsageEvent, name: str) -> str | None:
    if name == "day":
        return row.occurred_at.date().isoformat()
    if name == "month":
        return row.occurred_at.strftime("%Y-%m")
    return getattr(row, GROUP_FIELDS[name])


def usage_report(
    session: Session,
    *,
    org_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Iterable[str] = ("client", "project", "type"),
    clients: Iterable[str] | None = None,
    projects: Iterable[str] | None = None,
) -> UsageReport:
    """Usage of one org in [since, until), grouped; `clients`/`projects` restrict it (None = all)."""
    groups = parse_group_by(group_by)
    query = select(UsageEvent).where(UsageEvent.org_id == org_id).order_by(UsageEvent.occurred_at, UsageEvent.id)
    if since is not None:
        query = query.where(UsageEvent.occurred_at >= ensure_utc(since))
    if until is not None:
        query = query.where(UsageEvent.occurred_at < ensure_utc(until))
    if clients is not None:
        query = query.where(UsageEvent.client_id.in_(list(clients)))
    if projects is not None:
        query = query.where(UsageEvent.project_id.in_(list(projects)))
    rows: dict[tuple, ReportRow] = {}
    currencies: set[str] = set()
    for event in session.execute(query.execution_options(yield_per=1000)).scalars():
        key = tuple(_key_value(event, g) for g in groups)
        row = rows.setdefault(key, ReportRow(dict(zip(groups, key, strict=True))))
        row.events += 1
        row.quantity += event.quantity
        if event.cost is None:
            row.unpriced += 1
        else:
            row.cost += event.cost
            currencies.add(event.currency or "")
    if len(currencies) > 1:
        raise ReportError(f"usage of org {org_id} is priced in several currencies: {sorted(currencies)}")
    ordered = sorted(rows.values(), key=lambda r: tuple((v is None, v or "") for v in r.key.values()))
    return UsageReport(org_id, since, until, groups, next(iter(currencies), None), ordered)
