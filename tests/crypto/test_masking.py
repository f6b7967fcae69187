"""PII masked by role: `mask_pii` on its own, and wired into the API's serializer."""

from __future__ import annotations

import httpx
from api.conftest import AUDIENCE, ISSUER, SECRET, auth, make_token, seed_tenant

from rps_port.api.app import create_app
from rps_port.config import load_settings
from rps_port.crypto.masking import mask_pii


def test_mask_pii_keeps_shape_and_hides_values():
    resource = {"id": "x", "phone": "+15557654321", "tax_id": "DE987654321", "card": {"brand": "visa", "last4": "4871"}}
    masked = mask_pii(resource, {"customers:read"})
    assert masked["phone"] == "••••••••••21" and masked["tax_id"] == "•••••••••21"
    assert masked["card"] == {"brand": "visa", "last4": "••••"}
    assert resource["phone"] == "+15557654321"  # the input is not changed
    assert mask_pii(resource, {"pii:read"}) == resource
    assert mask_pii({"phone": None}, set()) == {"phone": None}


async def test_api_masks_pii_for_roles_without_pii_read(db_url):
    api_settings = load_settings(database_url=db_url, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    tenant = seed_tenant(db_url, customers=1, orders_per_customer=1)
    app = create_app(api_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        cid = tenant.customers[0]
        viewer = (await client.get(f"/customers/{cid}", headers=auth(make_token(tenant.org, ["viewer"])))).json()
        finance = (await client.get(f"/customers/{cid}", headers=auth(make_token(tenant.org, ["finance"])))).json()
        tx_fin = (await client.get(f"/transactions/{tenant.charges[0]}", headers=auth(make_token(tenant.org, ["finance"])))).json()
        tx_svc = (await client.get(f"/transactions/{tenant.charges[0]}",
                                   headers=auth(make_token(tenant.org, ["service"], scope="transactions:read")))).json()
    await app.state.rps_context.aclose()
    assert finance["phone"] == "+15551234567" and finance["tax_id"] == "DE123"
    assert viewer["phone"] == "••••••••••67" and viewer["tax_id"] == "••••23"
    assert tx_fin["card"]["last4"] == "4242" and tx_svc["card"]["last4"] == "••••"
