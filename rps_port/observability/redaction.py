"""Redaction: tokens, secrets and PII never leave the process through a log line.

Two layers: keys that name sensitive fields (in `extra=` dicts, nested dicts, lists) have their
values replaced wholesale; free text (messages, exception text, uvicorn's access line) is scrubbed
by patterns plus the literal secret values from settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Keys are compared lower-cased with "_" and "-" removed.
SENSITIVE_KEYS = frozenset(
    {
        # credentials
        "password", "passwd", "pwd", "secret", "clientsecret", "token", "accesstoken", "refreshtoken",
        "idtoken", "authorization", "auth", "apikey", "xapikey", "jwt", "bearer", "cookie", "setcookie",
        "authtoken", "jwtsecret", "legacysecret", "fieldkeys", "fieldhmackey", "sendgridapikey",
        "twilioauthtoken", "privatekey",
        # PII
        "email", "phone", "phonenumber", "mobile", "taxid", "last4", "cardnumber", "pan", "cvv", "cvc",
        "name", "firstname", "lastname", "fullname", "line1", "line2", "postalcode", "address",
        "addresses", "shippingaddress", "billingaddress", "recipient",
    }
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer <anything>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    # JWT-looking: three base64url segments, the first starting with a JSON object header.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # SendGrid keys
    (re.compile(r"\bSG\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), REDACTED),
    # key=value / key: value / "key": "value" for credential-like keys
    (
        re.compile(
            r"""(?ix)
            (["']?\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|x-api-key|apikey|
               access_token|refresh_token|id_token|auth_token|token|authorization|jwt|
               tax_?id|last4|email|phone)\b["']?
             \s*[=:]\s*["']?)
            (?!\[)([^\s&,;"'}\]]+)
            """
        ),
        r"\1" + REDACTED,
    ),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    # the legacy app's encrypted fields
    (re.compile(r"\benc:v1:[0-9a-fA-F]+:[0-9a-fA-F]+"), REDACTED),
    # e-mail addresses
    (re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[EMAIL]"),
    # international phone numbers (+ and 8..15 digits, spaces or dashes allowed)
    (re.compile(r"(?<![\w+])\+\d(?:[\s-]?\d){7,14}\b"), "[PHONE]"),
]


# Every pattern above needs one of these to match; text without any is only checked for secrets.
_TRIGGER = re.compile(r"[@+=:]|%40|eyJ|SG\.|bearer|basic", re.IGNORECASE)


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


_key_verdicts: dict[str, bool] = {}


def is_sensitive_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    verdict = _key_verdicts.get(key)
    if verdict is None:
        verdict = _norm(key) in SENSITIVE_KEYS
        if len(_key_verdicts) < 4096:  # keys come from code, but nested data could bring any
            _key_verdicts[key] = verdict
    return verdict


class Redactor:
    """Scrubs text and structures; `secrets` are literal values (from settings) removed wherever seen."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s and len(s) >= 4}
        # longest first so a secret containing another is removed whole
        self._secrets = sorted(set(self._secrets) | new, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if not _TRIGGER.search(value):
            return value
        for pattern, repl in _PATTERNS:
            value = pattern.sub(repl, value)
        return value

    def value(self, value: Any, _depth: int = 0) -> Any:
        """Redact any JSON-ish value: dict keys decide, strings get scrubbed, containers recurse."""
        if _depth > 8:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: (REDACTED if is_sensitive_key(k) and v not in (None, "") else self.value(v, _depth + 1))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(v, _depth + 1) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.text(str(value))


def settings_secrets(settings: Any) -> list[str]:
    """Every secret value a Settings object holds: SecretStr fields, their comma/colon parts, URL passwords."""
    from pydantic import SecretStr
    from sqlalchemy.engine import make_url

    out: list[str] = []
    if settings is None:
        return out
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            if raw:
                out.append(raw)
                # "kid:base64key,kid2:base64key" keyrings: each key on its own too
                for part in re.split(r"[,\s]+", raw):
                    out.append(part)
                    if ":" in part:
                        out.append(part.split(":", 1)[1])
        elif isinstance(value, str) and "://" in value and "@" in value:
            try:
                pw = make_url(value).password
            except Exception:  # noqa: BLE001 - not a URL after all
                pw = None
            if pw:
                out.append(str(pw))
    return [s for s in out if len(s) >= 4]


default_redactor = Redactor()
