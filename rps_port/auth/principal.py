"""The authenticated caller: who it is, which org it acts in, which clients/projects it may touch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rps_port.ids import is_object_id

WILDCARD = "*"


class ClaimError(ValueError):
    """A claim is present but malformed."""


def _id_list(claims: dict[str, Any], name: str) -> frozenset[str] | None:
    """`["*"]` (or an absent claim) means every id in the org: None; otherwise the set of ids."""
    value = claims.get(name, [WILDCARD])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClaimError(name)
    if WILDCARD in value:
        return None
    ids = {v.lower() for v in value}
    if not all(is_object_id(v) for v in ids):
        raise ClaimError(name)
    return frozenset(ids)


@dataclass(frozen=True)
class Principal:
    sub: str
    org_id: str
    # None = every client (project) of the org; a set = only those.
    clients: frozenset[str] | None = None
    projects: frozenset[str] | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        sub, org = claims.get("sub"), claims.get("org")
        if not isinstance(sub, str) or not sub or len(sub) > 256:
            raise ClaimError("sub")
        if not is_object_id(org):
            raise ClaimError("org")
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ClaimError("roles")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise ClaimError("scope")
        return cls(
            sub=sub,
            org_id=org,
            clients=_id_list(claims, "clients"),
            projects=_id_list(claims, "projects"),
            roles=frozenset(roles),
            scopes=frozenset(scope.split()),
        )

    def may_use_client(self, client_id: str | None) -> bool:
        return self.clients is None or client_id in self.clients

    def may_use_project(self, project_id: str | None) -> bool:
        return self.projects is None or project_id in self.projects
