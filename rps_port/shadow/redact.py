"""Personal data never reaches a shadow report in clear: PII fields are replaced by a keyed digest.

The PII fields are the API's own list (`rps_port.api.serializers.PII_FIELDS`: customer `tax_id`,
`phone`, card `last4`) plus the customer's `email`. A redacted value reads `<redacted #1a2b3c>`:
equal values get equal digests within one run (so a report still shows whether the two sides
agree), but the digest is keyed by a random per-run key, so it cannot be reversed by guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache
from typing import Any

EXTRA_PII = {"customers": ("email",)}


@cache
def pii_paths(resource: str) -> frozenset[str]:
    from rps_port.shadow.canonical import SCHEMAS

    paths: set[str] = set(EXTRA_PII.get(resource, ()))
    try:
        from rps_port.api.serializers import PII_FIELDS
    except ImportError:  # pragma: no cover - the API is part of the package
        PII_FIELDS = {}
    schema = SCHEMAS.get(resource)
    for model, fields in PII_FIELDS.items():
        if model is schema:
            paths.update(fields)
    return frozenset(paths)


class Redactor:
    def __init__(self) -> None:
        self._key = os.urandom(32)

    def token(self, value: Any) -> Any:
        if value is None:
            return None
        digest = hmac.new(self._key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:6]
        return f"<redacted #{digest}>"

    def value(self, resource: str, template: str, value: Any) -> Any:
        """`value` at record path `template` (list prefix `data[*].` allowed), redacted when PII."""
        path = template.removeprefix("data[*].")
        return self.token(value) if path in pii_paths(resource) else value

    def record(self, resource: str, record: Any) -> Any:
        """A canonical record with every PII field redacted (nested ones such as `card.last4` too)."""
        if not isinstance(record, dict):
            return record
        out = dict(record)
        for path in pii_paths(resource):
            head, _, rest = path.partition(".")
            if head not in out:
                continue
            if rest and isinstance(out[head], dict):
                inner = dict(out[head])
                if rest in inner:
                    inner[rest] = self.token(inner[rest])
                out[head] = inner
            elif not rest:
                out[head] = self.token(out[head])
        return out


def resource_of(endpoint: str) -> str:
    """`GET /api/orders/:id` -> `orders`."""
    parts = endpoint.split(" ", 1)[-1].split("/")
    return parts[2] if len(parts) > 2 else ""
