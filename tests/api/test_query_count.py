"""No N+1: the statements a list or detail request runs do not grow with the page."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from .conftest import auth, make_token, seed_tenant


@pytest.fixture
def statements(client):
    engine = client._transport.app.state.rps_context.engine.sync_engine
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith(("BEGIN", "PRAGMA")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    "path, expected",
    [("/customers", 2), ("/orders", 2), ("/transactions", 1)],  # one query + one selectin for children
)
async def test_list_statement_count_is_constant(client, db_url, statements, path, expected):
    small = seed_tenant(db_url, customers=1, orders_per_customer=1)
    big = seed_tenant(db_url, customers=10, orders_per_customer=4)
    counts = []
    for t in (small, big):
        statements.clear()
        r = await client.get(path, params={"limit": 50}, headers=auth(make_token(t.org)))
        assert r.status_code == 200 and r.json()["items"]
        counts.append(len(statements))
    assert counts == [expected, expected], statements


async def test_detail_statement_count(client, db_url, statements):
    t = seed_tenant(db_url, customers=1, orders_per_customer=2)
    for path, expected in ((f"/orders/{t.orders[0]}", 2), (f"/customers/{t.customers[0]}", 2),
                           (f"/transactions/{t.charges[0]}", 1)):
        statements.clear()
        assert (await client.get(path, headers=auth(make_token(t.org)))).status_code == 200
        assert len(statements) == expected, statements
