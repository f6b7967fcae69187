"""RFC 9457 problem details for every error the API returns, and their OpenAPI description."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from rps_port.services.errors import ServiceError

log = logging.getLogger("rps_port.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"

# Written out (not generated from a model) so it can be inlined in every response of a router
# that is mounted into someone else's app, without relying on their components section.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "A URI reference naming the problem type."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation errors, one per offending field.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "description": "Dotted location, e.g. body.items.0.quantity."},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "missing_permission": {"type": "string"},
        "field": {"type": "string"},
    },
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    400: "Bad request (e.g. a missing Idempotency-Key).",
    401: "Missing or invalid credentials.",
    403: "The caller lacks a permission or the client/project is outside its allowance.",
    404: "No such record visible to the caller.",
    409: "Conflict with the record's state, or a request with the same Idempotency-Key is in flight.",
    422: "Validation error; `errors` names each field.",
    429: "Too many requests.",
    500: "Internal error.",
    503: "Temporarily unavailable.",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these statuses, each an application/problem+json body."""
    return {
        code: {"description": _DESCRIPTIONS.get(code, HTTPStatus(code).phrase), "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
        for code in codes
    }


def problem(status: int, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _validation_response(exc)


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return _http_response(exc)


async def _service(request: Request, exc: ServiceError) -> JSONResponse:
    return _service_response(exc)


async def _respond_with(request: Request, exc: RespondWith) -> Response:
    return exc.response


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    route = request.scope.get("route")
    log.exception("unhandled error on %s %s", request.method, getattr(route, "path", "?"))
    return problem(500, "internal error")


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app returns becomes application/problem+json (also for the portal's app,
    when it calls this on its own FastAPI instance)."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, _service)  # type: ignore[arg-type]
    app.add_exception_handler(RespondWith, _respond_with)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)


class RespondWith(Exception):
    """Raised by a dependency to answer the request with a ready response (e.g. an idempotency
    conflict found before the handler runs)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _convert(exc: Exception) -> Response | None:
    if isinstance(exc, RespondWith):
        return exc.response
    if isinstance(exc, ServiceError):
        return _service_response(exc)
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_response(exc)
    return None


def _service_response(exc: ServiceError) -> JSONResponse:
    extra = dict(exc.extra)
    if exc.field and exc.status == 422:
        extra["errors"] = [{"field": exc.field, "message": exc.detail}]
    return problem(exc.status, exc.detail, field=exc.field, **extra)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    if any(tuple(e["loc"]) == ("header", "Idempotency-Key") and e["type"] == "missing" for e in exc.errors()):
        return problem(400, "Idempotency-Key header is required for this operation", field="Idempotency-Key")
    errors = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
    fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
    return problem(422, f"invalid {fields}", errors=errors)


def _http_response(exc: StarletteHTTPException) -> JSONResponse:
    extra = dict(exc.detail) if isinstance(exc.detail, dict) else {}
    detail = exc.detail if isinstance(exc.detail, str) else extra.pop("detail", None)
    if detail == HTTPStatus(exc.status_code).phrase:
        detail = None
    return problem(exc.status_code, detail, headers=exc.headers, **extra)


class ProblemRoute(APIRoute):
    """Routes of this class answer their own errors with problem+json, so the routers stay correct
    when mounted into an app that never called `install_problem_handlers`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (RespondWith, ServiceError, RequestValidationError, StarletteHTTPException) as exc:
                response = _convert(exc)
                assert response is not None
                return response

        return route_handler
