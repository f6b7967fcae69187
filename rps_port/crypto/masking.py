"""PII shown only to callers allowed to see it: `mask_pii(resource, permissions)`.

Permission `pii:read` (granted to admin/owner by "*", to finance, and to service tokens whose
scope names it) shows the stored values; everyone else gets masked ones that keep the shape
(last two characters of a phone or tax id, nothing of a card's last4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PII_PERMISSION = "pii:read"
PII_PATHS = ("tax_id", "taxId", "phone", "card.last4", "card_last4")


def mask_value(value: Any, keep: int = 2) -> Any:
    if value is None or not isinstance(value, str) or value == "":
        return value
    visible = value[-keep:] if keep and len(value) > keep + 2 else ""
    return "•" * max(4, len(value) - len(visible)) + visible


def may_see_pii(permissions: Iterable[str]) -> bool:
    perms = set(permissions)
    return PII_PERMISSION in perms or "*" in perms


def mask_pii(resource: dict[str, Any], permissions: Iterable[str], paths: Iterable[str] = PII_PATHS) -> dict[str, Any]:
    """A copy of `resource` with the PII fields masked unless `permissions` allow them."""
    if may_see_pii(permissions):
        return resource
    out = dict(resource)
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if rest:
            if isinstance(out[head], dict) and rest in out[head]:
                out[head] = {**out[head], rest: mask_value(out[head][rest], keep=0)}
        else:
            out[head] = mask_value(out[head])
    return out


def principal_permissions(principal: Any) -> frozenset[str]:
    """The caller's permissions under the configured RBAC policy."""
    from rps_port.auth.rbac import load_policy
    from rps_port.config import get_settings

    return load_policy(get_settings().rbac_policy).permissions_for(principal)


def mask_model(resource: Any, paths: Iterable[str], permissions: Iterable[str]) -> Any:
    """`mask_pii` for a Pydantic resource: a copy with the PII fields masked (no re-validation)."""
    if may_see_pii(permissions):
        return resource
    masked = mask_pii(resource.model_dump(), (), paths)
    update: dict[str, Any] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        current = getattr(resource, head, None)
        if rest and current is not None:
            update[head] = current.model_copy(update={rest: masked[head][rest]})
        elif not rest:
            update[head] = masked[head]
    return resource.model_copy(update=update)
