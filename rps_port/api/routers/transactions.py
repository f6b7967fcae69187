"""GET /transactions, GET /transactions/{id}, POST /transactions/{id}/refund."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from rps_port.api.deps import SessionDep, TenantDep, require
from rps_port.api.idempotency import IdempotencyRequired
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
from rps_port.api.serializers import transaction_out
from rps_port.auth.principal import Principal
from rps_port.domain.schemas import Page, RefundCreate, TransactionKind, TransactionOut, TransactionStatus
from rps_port.services import transactions as svc

Reader = Annotated[Principal, Depends(require("transactions:read"))]
Refunder = Annotated[Principal, Depends(require("transactions:refund"))]


def build_transactions_router() -> APIRouter:
    router = APIRouter(route_class=ProblemRoute, tags=["transactions"])

    @router.get(
        "/transactions", response_model=Page[TransactionOut], responses=READ_ERRORS, summary="List transactions"
    )
    async def list_transactions(
        session: SessionDep,
        principal: Reader,
        scope: TenantDep,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
        sort: Sort = "-created_at",
        kind: TransactionKind | None = None,
        status: TransactionStatus | None = None,
        order_id: RefQuery = None,
        customer_id: RefQuery = None,
        client_id: RefQuery = None,
        project_id: RefQuery = None,
        created_after: CreatedAfter = None,
        created_before: CreatedBefore = None,
    ) -> JSONResponse:
        flt = svc.TransactionFilter(
            kind,
            status,
            lower(order_id),
            lower(customer_id),
            lower(client_id),
            lower(project_id),
            created_after,
            created_before,
        )
        page = await svc.list_transactions(session, scope, flt, cursor=cursor, limit=limit, descending=sort == "-created_at")
        items = [transaction_out(t, principal).model_dump(mode="json") for t in page.items]
        return JSONResponse({"items": items, "next_cursor": page.next_cursor})

    @router.get(
        "/transactions/{transaction_id}",
        response_model=TransactionOut,
        responses=DETAIL_ERRORS,
        summary="Get a transaction",
    )
    async def get_transaction(
        transaction_id: IdPath, session: SessionDep, principal: Reader, scope: TenantDep
    ) -> JSONResponse:
        tx = await svc.get_transaction(session, scope, transaction_id.lower())
        return JSONResponse(transaction_out(tx, principal).model_dump(mode="json"))

    @router.post(
        "/transactions/{transaction_id}/refund",
        status_code=201,
        response_model=TransactionOut,
        responses=write_responses(201, location=True),
        summary="Refund a charge",
        description="Creates a succeeded refund of a succeeded charge, for `amount` or by default all "
        "that remains refundable; more than remains is a 422. Requires an Idempotency-Key.",
    )
    async def refund(
        transaction_id: IdPath,
        body: RefundCreate,
        session: SessionDep,
        principal: Refunder,
        scope: TenantDep,
        idem: IdempotencyRequired,
    ) -> Response:
        async def action() -> TransactionOut:
            return transaction_out(await svc.refund(session, scope, transaction_id.lower(), body), principal)

        return await idem.run(session, 201, action, headers=lambda b: {"Location": f"../{b['id']}"})

    return router
