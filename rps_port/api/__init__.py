"""The rps-port HTTP API: router factories the portal mounts, and a standalone app.

    from rps_port.api import build_router, get_principal, get_session
    app.include_router(build_router(settings), prefix="/rps")
    app.dependency_overrides[get_principal] = my_principal   # optional: the portal's own auth
    app.dependency_overrides[get_session] = my_session       # optional: the portal's own session

See docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rps_port.api.app import create_app
    from rps_port.api.context import ApiContext
    from rps_port.api.deps import PrincipalDep, SessionDep, TenantDep, get_principal, get_session, require
    from rps_port.api.problems import install_problem_handlers
    from rps_port.api.router import build_router
    from rps_port.auth.principal import Principal

# Imported on first use (PEP 562), so importing a submodule such as `rps_port.api.idempotency_models`
# (the ETL and Alembic load every table) does not import FastAPI and every router.
_EXPORTS = {
    "ApiContext": "rps_port.api.context",
    "Principal": "rps_port.auth.principal",
    "PrincipalDep": "rps_port.api.deps",
    "SessionDep": "rps_port.api.deps",
    "TenantDep": "rps_port.api.deps",
    "build_router": "rps_port.api.router",
    "create_app": "rps_port.api.app",
    "get_principal": "rps_port.api.deps",
    "get_session": "rps_port.api.deps",
    "install_problem_handlers": "rps_port.api.problems",
    "require": "rps_port.api.deps",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

__all__ = [
    "ApiContext",
    "Principal",
    "PrincipalDep",
    "SessionDep",
    "TenantDep",
    "build_router",
    "create_app",
    "get_principal",
    "get_session",
    "install_problem_handlers",
    "require",
]
