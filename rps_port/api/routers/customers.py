"""GET/POST /customers, GET/PATCH/DELETE /customers/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from rps_port.api.deps import SessionDep, TenantDep, require
from rps_port.api.idempotency import IdempotencyOptional
from rps_port.api.problems import ProblemRoute
from rps_port.api.routers.common import (
    DEFAULT_PAGE,
    DETAIL_ERRORS,
    READ_ERRORS,
    CreatedAfter,
    CreatedBefore,
    Cursor,
    IdPath,
    Limit,
    RefQuery,
    Sort,
    lower,
    write_responses,
)
from rps_port.api.serializers import customer_out
from rps_port.auth.principal import Principal
from rps_port.domain.schemas import CustomerCreate, CustomerOut, CustomerStatus, CustomerUpdate, Page
from rps_port.services import customers as svc

Reader = Annotated[Principal, Depends(require("customers:read"))]
Writer = Annotated[Principal, Depends(require("customers:write"))]
Deleter = Annotated[Principal, Depends(require("customers:delete"))]


def build_customers_router() -> APIRouter:
    router = APIRouter(route_class=ProblemRoute, tags=["customers"])

    @router.get("/customers", response_model=Page[CustomerOut], responses=READ_ERRORS, summary="List customers")
    async def list_customers(
        session: SessionDep,
        principal: Reader,
        scope: TenantDep,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
        sort: Sort = "-created_at",
        status: CustomerStatus | None = None,
        client_id: RefQuery = None,
        project_id: RefQuery = None,
        created_after: CreatedAfter = None,
        created_before: CreatedBefore = None,
    ) -> JSONResponse:
        flt = svc.CustomerFilter(status, lower(client_id), lower(project_id), created_after, created_before)
        page = await svc.list_customers(session, scope, flt, cursor=cursor, limit=limit, descending=sort == "-created_at")
        items = [customer_out(c, principal).model_dump(mode="json") for c in page.items]
        return JSONResponse({"items": items, "next_cursor": page.next_cursor})

    @router.get("/customers/{customer_id}", response_model=CustomerOut, responses=DETAIL_ERRORS, summary="Get a customer")
    async def get_customer(customer_id: IdPath, session: SessionDep, principal: Reader, scope: TenantDep) -> JSONResponse:
        customer = await svc.get_customer(session, scope, customer_id.lower())
        return JSONResponse(customer_out(customer, principal).model_dump(mode="json"))

    @router.post(
        "/customers", status_code=201, response_model=CustomerOut, responses=write_responses(201, location=True), summary="Create a customer"
    )
    async def create_customer(
        body: CustomerCreate, session: SessionDep, principal: Writer, scope: TenantDep, idem: IdempotencyOptional
    ) -> Response:
        async def action() -> CustomerOut:
            return customer_out(await svc.create_customer(session, scope, body), principal)

        return await idem.run(session, 201, action, headers=lambda b: {"Location": f"customers/{b['id']}"})

    @router.patch(
        "/customers/{customer_id}", response_model=CustomerOut, responses=write_responses(200), summary="Update a customer"
    )
    async def update_customer(
        customer_id: IdPath,
        body: CustomerUpdate,
        session: SessionDep,
        principal: Writer,
        scope: TenantDep,
        idem: IdempotencyOptional,
    ) -> Response:
        async def action() -> CustomerOut:
            return customer_out(await svc.update_customer(session, scope, customer_id.lower(), body), principal)

        return await idem.run(session, 200, action)

    @router.delete(
        "/customers/{customer_id}",
        status_code=204,
        response_class=Response,
        responses=write_responses(204),
        summary="Delete a customer (soft: it disappears from reads, the row is kept)",
    )
    async def delete_customer(
        customer_id: IdPath, session: SessionDep, principal: Deleter, scope: TenantDep, idem: IdempotencyOptional
    ) -> Response:
        async def action() -> None:
            await svc.delete_customer(session, scope, customer_id.lower())

        return await idem.run(session, 204, action)

    return router
