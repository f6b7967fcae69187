"""Property-based run of the OpenAPI document against the app (bounded examples per operation):
no server error, and every response matches the documented status, content type and schema."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import NullPool

from rps_port.api.app import create_app
from rps_port.api.context import ApiContext, make_api_engine

from .conftest import auth, make_token, seed_tenant

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture
def seeded(db_url, api_settings):
    tenant = seed_tenant(db_url, customers=2, orders_per_customer=2)
    # Each generated request runs on a fresh event loop: no pooled connections across loops.
    engine = make_api_engine(db_url, poolclass=NullPool)
    ctx = ApiContext.build(api_settings, session_factory=async_sessionmaker(engine, expire_on_commit=False))
    app = create_app(api_settings, context=ctx)
    yield app, tenant


def test_openapi_conformance(seeded):
    """Every operation, a bounded number of generated requests each (schemathesis' pytest plugin
    does not load under this pytest, so Hypothesis drives the strategies directly)."""
    app, tenant = seeded
    headers = auth(make_token(tenant.org, ["owner"]))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The resource routers' operations (seams may add others, e.g. /metrics, tested by their owners).
    ours = ("/customers", "/orders", "/transactions")
    operations = [op for op in (r.ok() for r in schema.get_all_operations()) if op.path.startswith(ours)]
    assert len(operations) == 12, [op.label for op in operations]

    statuses: Counter[tuple[str, int]] = Counter()
    def run(operation) -> None:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def check(case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[(operation.label, response.status_code)] += 1

        check()

    for operation in operations:
        run(operation)
    # the run reached the handlers, not just the validation layer
    successes = {label for (label, status), _ in statuses.items() if status < 300}
    assert {"GET /customers", "GET /orders", "GET /transactions", "POST /customers"} <= successes, statuses
