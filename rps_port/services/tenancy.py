"""Tenancy in one place: every service query is scoped here, every new record is stamped here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, Update, false

from rps_port.auth.principal import Principal
from rps_port.services.errors import Forbidden, InvalidInput

S = TypeVar("S", Select[Any], Update)


@dataclass(frozen=True)
class TenantScope:
    """The caller's org and allowed clients/projects (None = all of the org's)."""

    org_id: str
    clients: frozenset[str] | None = None
    projects: frozenset[str] | None = None

    @classmethod
    def of(cls, principal: Principal) -> TenantScope:
        return cls(principal.org_id, principal.clients, principal.projects)

    def apply(self, stmt: S, model: Any, *, include_deleted: bool = False) -> S:
        """Restrict a SELECT or UPDATE on an attributed table to what the caller may see.

        A caller restricted to some clients (projects) does not see records without a client
        (project): unattributed records belong to the org as a whole.
        """
        stmt = stmt.where(model.org_id == self.org_id)
        if self.clients is not None:
            stmt = stmt.where(model.client_id.in_(self.clients)) if self.clients else stmt.where(false())
        if self.projects is not None:
            stmt = stmt.where(model.project_id.in_(self.projects)) if self.projects else stmt.where(false())
        if not include_deleted and hasattr(model, "deleted_at"):
            stmt = stmt.where(model.deleted_at.is_(None))
        return stmt

    def check_filter(self, client_id: str | None, project_id: str | None) -> None:
        """A list filter naming a client/project outside the caller's allowance is a 403."""
        if client_id is not None and self.clients is not None and client_id not in self.clients:
            raise Forbidden("client_id is outside the caller's allowed clients", field="client_id")
        if project_id is not None and self.projects is not None and project_id not in self.projects:
            raise Forbidden("project_id is outside the caller's allowed projects", field="project_id")

    def stamp(self, client_id: str | None, project_id: str | None) -> dict[str, str | None]:
        """The attribution for a new record: the requested client/project, checked against the
        allowance; a restricted caller that names none gets its only allowed one, if it has one."""
        client_id = self._pick(client_id, self.clients, "client_id")
        project_id = self._pick(project_id, self.projects, "project_id")
        return {"org_id": self.org_id, "client_id": client_id, "project_id": project_id}

    @staticmethod
    def _pick(value: str | None, allowed: frozenset[str] | None, field: str) -> str | None:
        if allowed is None:
            return value
        if value is None:
            if len(allowed) == 1:
                return next(iter(allowed))
            raise InvalidInput(f"{field} is required for a caller restricted to several {field[:-3]}s", field=field)
        if value not in allowed:
            raise Forbidden(f"{field} is outside the caller's allowed {field[:-3]}s", field=field)
        return value
