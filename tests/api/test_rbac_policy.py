"""RBAC policies from files: the shipped default, a portal's own (YAML or TOML), and bad files."""

from __future__ import annotations

import httpx
import pytest

from rps_port.api.app import create_app
from rps_port.auth.principal import Principal
from rps_port.auth.rbac import PolicyError, load_policy

from .conftest import auth, make_token

ORG = "65a1f0c2e4b0a1b2c3d4e5f6"


def who(*roles: str, scope: str = "") -> Principal:
    return Principal(sub="u", org_id=ORG, roles=frozenset(roles), scopes=frozenset(scope.split()))


def test_shipped_default_follows_the_contract():
    policy = load_policy()
    assert {"customers:read", "orders:read"} <= policy.permissions_for(who("viewer"))
    assert not {p for p in policy.permissions_for(who("viewer", "support")) if p.startswith("transactions:")}
    assert {"transactions:read", "transactions:refund"} <= policy.permissions_for(who("finance"))
    assert "orders:write" not in policy.permissions_for(who("finance"))
    assert policy.permissions_for(who("admin")) == policy.permissions == policy.permissions_for(who("owner"))
    assert policy.permissions_for(who("service")) == frozenset()
    assert policy.permissions_for(who("service", scope="read orders:write")) == {
        "customers:read", "orders:read", "transactions:read", "orders:write"}
    assert policy.permissions_for(who("service", scope="everything please")) == frozenset()
    assert policy.permissions_for(who("intern")) == frozenset()


async def test_rps_rbac_policy_replaces_the_default(tmp_path, api_settings, tenants):
    a, _ = tenants
    path = tmp_path / "policy.toml"
    path.write_text(
        'version = 1\npermissions = ["customers:read", "customers:write", "orders:read"]\n'
        '[roles]\nsupport = ["customers:read", "customers:write"]\n'
    )
    app = create_app(api_settings.model_copy(update={"rbac_policy": path}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        support = auth(make_token(a.org, ["support"]))
        assert (await c.post("/customers", json={"name": "New"}, headers=support)).status_code == 201
        r = await c.get("/orders", headers=support)
        assert r.status_code == 403 and r.json()["missing_permission"] == "orders:read"
        r = await c.get("/orders", headers=auth(make_token(a.org, ["admin"])))
        assert r.status_code == 403  # admin is not in this policy at all
    await app.state.rps_context.aclose()


def test_bad_policy_files_name_the_problem(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("permissions: [orders:read]\nroles:\n  viewer: [order:read]\n")
    with pytest.raises(PolicyError, match=r"typo.yaml: roles.viewer: unknown permission 'order:read'"):
        load_policy(typo)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("permissions: [a\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(broken)
