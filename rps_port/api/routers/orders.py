"""GET/POST /orders, GET/PATCH /orders/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from rps_port.api.deps import SessionDep, TenantDep, require
from rps_port.api.idempotency import IdempotencyOptional, IdempotencyRequired
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
from rps_port.api.serializers import order_out
from rps_port.auth.principal import Principal
from rps_port.domain.schemas import OrderCreate, OrderOut, OrderStatus, OrderUpdate, Page
from rps_port.services import orders as svc

Reader = Annotated[Principal, Depends(require("orders:read"))]
Writer = Annotated[Principal, Depends(require("orders:write"))]


def build_orders_router() -> APIRouter:
    router = APIRouter(route_class=ProblemRoute, tags=["orders"])

    @router.get("/orders", response_model=Page[OrderOut], responses=READ_ERRORS, summary="List orders")
    async def list_orders(
        session: SessionDep,
        principal: Reader,
        scope: TenantDep,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
        sort: Sort = "-created_at",
        status: OrderStatus | None = None,
        customer_id: RefQuery = None,
        client_id: RefQuery = None,
        project_id: RefQuery = None,
        created_after: CreatedAfter = None,
        created_before: CreatedBefore = None,
    ) -> JSONResponse:
        flt = svc.OrderFilter(
            status, lower(customer_id), lower(client_id), lower(project_id), created_after, created_before
        )
        page = await svc.list_orders(session, scope, flt, cursor=cursor, limit=limit, descending=sort == "-created_at")
        items = [order_out(o, principal).model_dump(mode="json") for o in page.items]
        return JSONResponse({"items": items, "next_cursor": page.next_cursor})

    @router.get("/orders/{order_id}", response_model=OrderOut, responses=DETAIL_ERRORS, summary="Get an order")
    async def get_order(order_id: IdPath, session: SessionDep, principal: Reader, scope: TenantDep) -> JSONResponse:
        order = await svc.get_order(session, scope, order_id.lower())
        return JSONResponse(order_out(order, principal).model_dump(mode="json"))

    @router.post(
        "/orders",
        status_code=201,
        response_model=OrderOut,
        responses=write_responses(201, location=True),
        summary="Place an order",
        description="Creates the order in status `placed` (as the legacy POST did) with totals computed "
        "from the items, and emits `order.placed`. Requires an Idempotency-Key.",
    )
    async def place_order(
        body: OrderCreate, session: SessionDep, principal: Writer, scope: TenantDep, idem: IdempotencyRequired
    ) -> Response:
        async def action() -> OrderOut:
            return order_out(await svc.place_order(session, scope, body), principal)

        return await idem.run(session, 201, action, headers=lambda b: {"Location": f"orders/{b['id']}"})

    @router.patch(
        "/orders/{order_id}",
        response_model=OrderOut,
        responses=write_responses(200),
        summary="Change an order's status",
        description="Moves the order along the state machine draft -> placed -> paid -> fulfilled, "
        "placed/draft -> cancelled, paid/fulfilled -> refunded; any other move is a 409.",
    )
    async def change_status(
        order_id: IdPath,
        body: OrderUpdate,
        session: SessionDep,
        principal: Writer,
        scope: TenantDep,
        idem: IdempotencyOptional,
    ) -> Response:
        async def action() -> OrderOut:
            return order_out(await svc.change_status(session, scope, order_id.lower(), body.status), principal)

        return await idem.run(session, 200, action)

    return router
