"""Plain service functions over an AsyncSession: usable from the routers, the CLI or tests, no HTTP.

Every query goes through `TenantScope` (tenancy.py); services flush but never commit, so the
caller decides the transaction boundary (the routers commit once, with the idempotency record).
"""

from rps_port.services.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from rps_port.services.tenancy import TenantScope

__all__ = ["Conflict", "Forbidden", "InvalidInput", "NotFound", "ServiceError", "TenantScope"]
