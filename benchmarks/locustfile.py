"""A portal's traffic mix against rps-port: list, detail, create, refund, for several orgs.

Needs RPS_LOAD_FIXTURE: a JSON file written by benchmarks/load_run.py with, per org, a token and
the ids of its customers, orders and refundable charges. Run headless through load_run.py, or:

    RPS_LOAD_FIXTURE=out/load-fixture.json locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import random
import uuid

from locust import FastHttpUser, between, task

with open(os.environ.get("RPS_LOAD_FIXTURE", "out/load-fixture.json"), encoding="utf-8") as fh:
    FIXTURE = json.load(fh)


class PortalUser(FastHttpUser):
    """One portal user session: acts in one org (and so with that org's token) throughout."""

    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        self.org = random.choice(FIXTURE["orgs"])
        self.auth = {"Authorization": f"Bearer {self.org['token']}"}

    # reads dominate a portal: order lists and details, then customers and transactions
    @task(30)
    def list_orders(self) -> None:
        self.client.get("/orders?limit=20", headers=self.auth, name="GET /orders")

    @task(25)
    def order_detail(self) -> None:
        oid = random.choice(self.org["orders"])
        self.client.get(f"/orders/{oid}", headers=self.auth, name="GET /orders/{order_id}")

    @task(10)
    def list_customers(self) -> None:
        self.client.get("/customers?limit=20", headers=self.auth, name="GET /customers")

    @task(10)
    def customer_detail(self) -> None:
        cid = random.choice(self.org["customers"])
        self.client.get(f"/customers/{cid}", headers=self.auth, name="GET /customers/{customer_id}")

    @task(10)
    def list_transactions(self) -> None:
        self.client.get("/transactions?limit=20", headers=self.auth, name="GET /transactions")

    @task(8)
    def create_order(self) -> None:
        body = {
            "customer_id": random.choice(self.org["customers"]),
            "currency": "EUR",
            "items": [{"sku": "SKU-LOAD", "name": "Load item", "quantity": random.randint(1, 3),
                       "unit_price": "9.99", "tax_rate": "0.19"}],
        }
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        self.client.post("/orders", json=body, headers=headers, name="POST /orders")

    @task(4)
    def refund(self) -> None:
        charge = random.choice(self.org["charges"])
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(f"/transactions/{charge}/refund", json={"amount": "0.01"}, headers=headers,
                              name="POST /transactions/{transaction_id}/refund", catch_response=True) as r:
            # a charge refunded in full is a correct 422, not a failure of the service
            if r.status_code == 422:
                r.success()
