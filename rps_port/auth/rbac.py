"""RBAC: a policy file maps portal roles (and, for service users, token scopes) to permissions."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from rps_port.auth.principal import Principal

DEFAULT_POLICY = Path(__file__).with_name("default_policy.yaml")
ALL = "*"


class PolicyError(ValueError):
    """The policy file is unreadable or inconsistent; the message names the file and the entry."""


@dataclass(frozen=True)
class Policy:
    permissions: frozenset[str]
    roles: dict[str, frozenset[str]]
    scope_roles: frozenset[str]
    scopes: dict[str, frozenset[str]]
    source: str = "<memory>"

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<memory>") -> Policy:
        def fail(msg: str) -> PolicyError:
            return PolicyError(f"{source}: {msg}")

        if not isinstance(data, dict):
            raise fail("must be a mapping")
        perms = data.get("permissions")
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise fail("`permissions` must be a list of strings")
        known = frozenset(perms)

        def grants(section: str, name: str, value: Any) -> frozenset[str]:
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise fail(f"{section}.{name} must be a list of permissions")
            unknown = [p for p in value if p != ALL and p not in known]
            if unknown:
                raise fail(f"{section}.{name}: unknown permission {unknown[0]!r}")
            return known if ALL in value else frozenset(value)

        roles = {name: grants("roles", name, v) for name, v in (data.get("roles") or {}).items()}
        scopes = {name: grants("scopes", name, v) for name, v in (data.get("scopes") or {}).items()}
        scope_roles = data.get("scope_roles") or []
        if not isinstance(scope_roles, list):
            raise fail("`scope_roles` must be a list of role names")
        return cls(known, roles, frozenset(scope_roles), scopes, source)

    def permissions_for(self, principal: Principal) -> frozenset[str]:
        granted: set[str] = set()
        for role in principal.roles:
            granted |= self.roles.get(role, frozenset())
        if principal.roles & self.scope_roles:
            for scope in principal.scopes:
                if scope in self.permissions:
                    granted.add(scope)
                else:
                    granted |= self.scopes.get(scope, frozenset())
        return frozenset(granted)

    def allows(self, principal: Principal, permission: str) -> bool:
        return permission in self.permissions_for(principal)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read RBAC policy: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {exc}") from None


@lru_cache(maxsize=8)
def load_policy(path: Path | str | None = None) -> Policy:
    """The policy from `path` (YAML or TOML), or the shipped default."""
    p = Path(path) if path else DEFAULT_POLICY
    return Policy.from_mapping(_read(p), source=str(p))
