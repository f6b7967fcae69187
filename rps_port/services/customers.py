"""Customers: list, detail, create, update, soft delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rps_port.domain import Customer, CustomerAddress
from rps_port.domain.schemas import Address, CustomerCreate, CustomerUpdate
from rps_port.services.errors import NotFound
from rps_port.services.events import customer_event
from rps_port.services.pagination import PageResult, page_of, paginate
from rps_port.services.tenancy import TenantScope
from rps_port.timeutil import utcnow


@dataclass
class CustomerFilter:
    status: str | None = None
    client_id: str | None = None
    project_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_customers(
    session: AsyncSession, scope: TenantScope, flt: CustomerFilter, *, cursor: str | None, limit: int,
    descending: bool = True,
) -> PageResult:
    scope.check_filter(flt.client_id, flt.project_id)
    stmt = scope.apply(select(Customer), Customer)
    if flt.status:
        stmt = stmt.where(Customer.status == flt.status)
    if flt.client_id:
        stmt = stmt.where(Customer.client_id == flt.client_id)
    if flt.project_id:
        stmt = stmt.where(Customer.project_id == flt.project_id)
    if flt.created_after:
        stmt = stmt.where(Customer.created_at >= flt.created_after)
    if flt.created_before:
        stmt = stmt.where(Customer.created_at < flt.created_before)
    rows = (await session.scalars(paginate(stmt, Customer, cursor, limit, descending=descending))).all()
    return page_of(rows, limit, descending=descending)


async def get_customer(session: AsyncSession, scope: TenantScope, customer_id: str) -> Customer:
    customer = await session.scalar(scope.apply(select(Customer), Customer).where(Customer.id == customer_id))
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", field="id")
    return customer


def _addresses(customer: Customer, addresses: list[Address]) -> list[CustomerAddress]:
    return [
        CustomerAddress(
            position=i,
            org_id=customer.org_id,
            client_id=customer.client_id,
            project_id=customer.project_id,
            **a.model_dump(),
        )
        for i, a in enumerate(addresses)
    ]


async def create_customer(session: AsyncSession, scope: TenantScope, data: CustomerCreate) -> Customer:
    attribution = scope.stamp(data.client_id, data.project_id)
    fields = data.model_dump(exclude={"client_id", "project_id", "addresses"})
    now = utcnow()
    customer = Customer(**fields, **attribution, created_at=now, updated_at=now)
    customer.addresses = _addresses(customer, data.addresses)
    session.add(customer)
    await session.flush()
    customer_event(session, customer, "customer.created")
    return customer


async def update_customer(
    session: AsyncSession, scope: TenantScope, customer_id: str, data: CustomerUpdate
) -> Customer:
    customer = await get_customer(session, scope, customer_id)
    changes = data.model_dump(exclude_unset=True)
    changed = []
    for name, value in changes.items():
        if name == "addresses":
            customer.addresses = _addresses(customer, data.addresses)
        else:
            setattr(customer, name, value)
        changed.append(name)
    if changed:
        customer.updated_at = utcnow()
        await session.flush()
        customer_event(session, customer, "customer.updated", changed)
    return customer


async def delete_customer(session: AsyncSession, scope: TenantScope, customer_id: str) -> None:
    customer = await get_customer(session, scope, customer_id)
    customer.deleted_at = customer.updated_at = utcnow()
    await session.flush()
    customer_event(session, customer, "customer.deleted")
