"""The legacy emulator answers like the Mongoose app of CONTRACT.md, from a mongodump directory."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import bson
import jwt
import pytest
from bson import Decimal128, ObjectId
from starlette.testclient import TestClient

from rps_port.legacy.emulator import create_legacy_app

SECRET = "emulator-test-secret-0123456789abcdef"
ORG = "65a1f0c2e4b0a1b2c3d4e5f6"
OTHER_ORG = "65a1f0c2e4b0a1b2c3d4e5f7"
CUST = "65a1f0c2e4b0a1b2c3d40001"


def token(org: str = ORG) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "u1", "org": org, "clients": ["*"], "projects": ["*"], "roles": ["admin"],
              "iss": "portal", "aud": "rps", "iat": now, "exp": now + 600}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


def write_dump(root: Path) -> Path:
    (root / "rps").mkdir(parents=True)
    def d(*a):
        return datetime(*a, tzinfo=UTC)
    customers = [
        {"_id": ObjectId(CUST), "org": ObjectId(ORG), "name": "Ada", "status": "active",
         "taxId": "enc:v1:00112233445566778899aabbccddeeff:00112233445566778899aabbccddeeff",
         "createdAt": d(2023, 1, 2, 3, 4, 5, 678000), "updatedAt": d(2023, 1, 2, 3, 4, 5, 678000), "__v": 0},
        # pre-2021 document: org as a string, firstName/lastName, createdAt as a string
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d40002"), "org": ORG, "firstName": "Bo", "lastName": "Li",
         "status": "blocked", "marketingOptIn": "true", "createdAt": "2019-05-01T10:00:00Z", "__v": 3},
        # epoch millis as a number
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d40003"), "org": ObjectId(ORG), "name": "Cy", "status": "active",
         "createdAt": 1546300800000},
        # soft-deleted
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d40004"), "org": ObjectId(ORG), "name": "Del", "status": "active",
         "createdAt": d(2024, 1, 1), "deletedAt": d(2024, 2, 1)},
        # another org
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d40005"), "org": ObjectId(OTHER_ORG), "name": "Eve",
         "status": "active", "createdAt": d(2024, 1, 1)},
    ]
    orders = [
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d41001"), "org": ObjectId(ORG), "number": "RPS-2023-000001",
         "customer": ObjectId(CUST), "status": "paid", "currency": "eur",
         "items": [{"sku": "A", "name": "Ä", "quantity": 2, "unitPrice": Decimal128("9.95")},
                   {"sku": "B", "name": "B", "quantity": "1", "unitPrice": 5.0}],
         "subtotal": 24.900000000000002, "tax": "0", "total": Decimal128("24.90"),
         "placedAt": d(2023, 1, 3), "createdAt": d(2023, 1, 3), "updatedAt": d(2023, 1, 3), "__v": 1},
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d41002"), "org": ObjectId(ORG), "number": "RPS-2018-000002",
         "customer": CUST, "status": "placed", "currency": "USD", "items": [], "totalCents": 1250,
         "createdAt": d(2018, 1, 1)},
    ]
    transactions = [
        {"_id": ObjectId("65a1f0c2e4b0a1b2c3d42001"), "org": ObjectId(ORG), "order": ObjectId(orders[0]["_id"]),
         "customer": ObjectId(CUST), "kind": "charge", "status": "succeeded", "amount": Decimal128("24.90"),
         "currency": "EUR", "provider": "stripe", "providerRef": "ch_1", "card": None,
         "processedAt": d(2023, 1, 3), "createdAt": d(2023, 1, 3)},
    ]
    for name, docs in (("customers", customers), ("orders", orders), ("transactions", transactions)):
        (root / "rps" / f"{name}.bson").write_bytes(b"".join(bson.encode(doc) for doc in docs))
    return root


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app = create_legacy_app(write_dump(tmp_path), jwt_secret=SECRET, allow_writes=True)
    return TestClient(app)


def test_list_envelope_sort_and_soft_delete(client: TestClient) -> None:
    r = client.get("/api/customers", params={"page": 1, "limit": 50}, headers=token())
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "page", "limit", "total"}
    assert body["total"] == 3 and body["page"] == 1 and body["limit"] == 50
    # MongoDB sorts createdAt -1 by type: Dates, then strings, then numbers
    assert [c["_id"] for c in body["data"]] == [CUST, "65a1f0c2e4b0a1b2c3d40002", "65a1f0c2e4b0a1b2c3d40003"]
    first = body["data"][0]
    assert first["createdAt"] == "2023-01-02T03:04:05.678Z"
    assert first["org"] == ORG and first["__v"] == 0
    assert first["taxId"].startswith("enc:v1:")
    # stored forms served as stored
    assert body["data"][1]["createdAt"] == "2019-05-01T10:00:00Z"
    assert body["data"][1]["marketingOptIn"] == "true"
    assert body["data"][2]["createdAt"] == 1546300800000


def test_pagination_and_filters(client: TestClient) -> None:
    r = client.get("/api/customers", params={"page": 2, "limit": 2}, headers=token())
    assert [c["name"] for c in r.json()["data"]] == ["Cy"]
    r = client.get("/api/customers", params={"status": "blocked"}, headers=token())
    assert r.json()["total"] == 1
    # a reference stored as a string matches as well as one stored as an ObjectId
    r = client.get("/api/orders", params={"customer": CUST}, headers=token())
    assert r.json()["total"] == 2


def test_detail_serialises_like_mongoose(client: TestClient) -> None:
    r = client.get("/api/orders/65a1f0c2e4b0a1b2c3d41001", headers=token())
    assert r.status_code == 200
    doc = r.json()
    assert doc["items"][0]["unitPrice"] == {"$numberDecimal": "9.95"}
    assert doc["items"][1]["unitPrice"] == 5 and doc["items"][1]["quantity"] == "1"
    assert doc["subtotal"] == 24.900000000000002 and doc["tax"] == "0"
    assert doc["total"] == {"$numberDecimal": "24.90"}
    assert doc["customer"] == CUST and doc["currency"] == "eur"
    assert doc["items"][0]["name"] == "Ä"
    assert '"__v":1' in r.text


def test_not_found_other_org_and_soft_deleted(client: TestClient) -> None:
    for path in ("/api/customers/65a1f0c2e4b0a1b2c3d40005", "/api/customers/65a1f0c2e4b0a1b2c3d40004",
                 "/api/customers/nope", "/api/orders/65a1f0c2e4b0a1b2c3d49999"):
        r = client.get(path, headers=token())
        assert r.status_code == 404 and r.json() == {"error": "not_found"}, path
    assert client.get("/api/customers/65a1f0c2e4b0a1b2c3d40005", headers=token(OTHER_ORG)).status_code == 200


def test_auth_is_required_and_verified(client: TestClient) -> None:
    assert client.get("/api/customers").status_code == 401
    forged = jwt.encode({"org": ORG, "exp": int(time.time()) + 60}, "wrong-secret-0123456789abcdef0123456789", algorithm="HS256")
    assert client.get("/api/customers", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_writes_in_memory(client: TestClient) -> None:
    r = client.post("/api/orders", headers=token(), json={
        "customer": CUST, "currency": "eur", "notes": "hi",
        "items": [{"sku": "X", "name": "X", "quantity": 3, "unitPrice": "1.10", "taxRate": "0.2"}]})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["total"] == {"$numberDecimal": "3.96"} and order["currency"] == "EUR"
    assert client.get(f"/api/orders/{order['_id']}", headers=token()).status_code == 200
    assert client.get("/api/orders", headers=token()).json()["data"][0]["_id"] == order["_id"]

    charge = "65a1f0c2e4b0a1b2c3d42001"
    r = client.post(f"/api/transactions/{charge}/refund", headers=token(), json={"amount": "20.00"})
    assert r.status_code == 201 and r.json()["amount"] == {"$numberDecimal": "20.00"}
    r = client.post(f"/api/transactions/{charge}/refund", headers=token(), json={"amount": "5.00"})
    assert r.status_code == 422  # only 4.90 left
    r = client.post(f"/api/transactions/{charge}/refund", headers=token())
    assert r.status_code == 201 and r.json()["amount"] == {"$numberDecimal": "4.90"}


def test_read_only_by_default(tmp_path: Path) -> None:
    app = create_legacy_app(write_dump(tmp_path), jwt_secret=SECRET)
    r = TestClient(app).post("/api/orders", headers=token(), json={})
    assert r.status_code == 405


def test_noise_and_faults(tmp_path: Path) -> None:
    root = write_dump(tmp_path)
    noisy = TestClient(create_legacy_app(root, jwt_secret=SECRET, noise=True, noise_touch=["updatedAt"], seed=1))
    a = noisy.get(f"/api/customers/{CUST}", headers=token())
    b = noisy.get(f"/api/customers/{CUST}", headers=token())
    assert a.json()["requestId"] != b.json()["requestId"] and "X-Request-Id" in a.headers
    assert a.json()["updatedAt"] != "2023-01-02T03:04:05.678Z"
    assert a.json()["name"] == b.json()["name"] == "Ada"

    failing = TestClient(create_legacy_app(root, jwt_secret=SECRET, error_rate=1.0))
    r = failing.get(f"/api/customers/{CUST}", headers=token())
    assert r.status_code == 500
    assert failing.get("/health").status_code == 200
