"""Identity: portal JWT verification, the principal it yields, and the RBAC policy."""

from rps_port.auth.principal import Principal
from rps_port.auth.rbac import Policy, load_policy
from rps_port.auth.tokens import AuthError, TokenVerifier

__all__ = ["AuthError", "Policy", "Principal", "TokenVerifier", "load_policy"]
