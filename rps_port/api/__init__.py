"""The rps-port HTTP API: router factories the portal mounts, and a standalone app.

    from rps_port.api import build_router, get_principal, get_session
    app.include_router(build_router(settings), prefix="/rps")
    app.dependency_overrides[get_principal] = my_principal   # optional: the portal's own auth
    app.dependency_overrides[get_session] = my_session       # optional: the portal's own session

See docs/api.md.
"""

from rps_port.api.app import create_app
from rps_port.api.context import ApiContext
from rps_port.api.deps import PrincipalDep, SessionDep, TenantDep, get_principal, get_session, require
from rps_port.api.problems import install_problem_handlers
from rps_port.api.router import build_router
from rps_port.auth.principal import Principal

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
