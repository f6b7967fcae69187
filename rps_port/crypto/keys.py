"""Field keys: `RPS_FIELD_KEYS="kid:base64key,kid2:base64key"` (or `RPS_FIELD_KEYS_FILE`); the first
is the active key new values are encrypted with, the others still decrypt. Keys are 32 bytes
(AES-256). The blind-index (HMAC) key is `RPS_FIELD_HMAC_KEY`, else derived from the active key.

With no key configured: on SQLite (the embedded default) a development key ring is generated once
into `.rps-port/dev-field-keys` under the working directory (mode 0600) and a warning is logged;
on PostgreSQL nothing is written and the first encrypted column refuses to bind, so production
never runs on a key that lives in some container's working directory.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("rps_port.crypto")

KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DEV_KEY_FILE = Path(".rps-port") / "dev-field-keys"


class KeyConfigError(ValueError):
    """The key configuration is unusable; the message names the setting, never a key."""


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    active: str
    hmac_key: bytes
    development: bool = False

    @classmethod
    def parse(cls, spec: str, hmac_key: str | None = None, *, development: bool = False) -> KeyRing:
        keys: dict[str, bytes] = {}
        for i, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
            kid, sep, b64 = part.partition(":")
            if not sep or not KID.match(kid):
                raise KeyConfigError(f"RPS_FIELD_KEYS entry {i + 1}: expected kid:base64key with kid [A-Za-z0-9_-]{{1,32}}")
            try:
                key = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise KeyConfigError(f"RPS_FIELD_KEYS key {kid!r}: not valid base64") from None
            if len(key) != 32:
                raise KeyConfigError(f"RPS_FIELD_KEYS key {kid!r}: must be 32 bytes (AES-256), got {len(key)}")
            if kid in keys:
                raise KeyConfigError(f"RPS_FIELD_KEYS: key id {kid!r} appears twice")
            keys[kid] = key
        if not keys:
            raise KeyConfigError("RPS_FIELD_KEYS: no keys")
        active = next(iter(keys))
        if hmac_key:
            try:
                mac = base64.b64decode(hmac_key, validate=True)
            except (binascii.Error, ValueError):
                raise KeyConfigError("RPS_FIELD_HMAC_KEY: not valid base64") from None
            if len(mac) < 32:
                raise KeyConfigError("RPS_FIELD_HMAC_KEY: must be at least 32 bytes")
        else:
            mac = HKDF(hashes.SHA256(), 32, salt=None, info=b"rps-port blind index").derive(keys[active])
        return cls(keys, active, mac, development)

    def key(self, kid: str) -> bytes:
        try:
            return self.keys[kid]
        except KeyError:
            raise KeyConfigError(f"no field key with id {kid!r} in RPS_FIELD_KEYS") from None


def new_key_spec(kid: str | None = None) -> str:
    """A fresh `kid:base64key` entry (what `rps-port crypto new-key` prints)."""
    kid = kid or f"k{secrets.token_hex(4)}"
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _dev_keyring(path: Path = DEV_KEY_FILE) -> KeyRing:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key_spec("dev1") + "\n")
        log.warning("no RPS_FIELD_KEYS: generated a development field key in %s (SQLite only)", path)
    return KeyRing.parse(path.read_text().strip(), development=True)


_lock = threading.Lock()
_configured: KeyRing | None = None
_dev: KeyRing | None = None


def set_keyring(ring: KeyRing | None) -> None:
    """Use this key ring (None: read settings again on next use)."""
    global _configured, _dev
    with _lock:
        _configured, _dev = ring, None


def get_keyring(dialect: str = "sqlite") -> KeyRing:
    """The configured key ring; without one, the development ring on SQLite, an error otherwise."""
    global _configured, _dev
    with _lock:
        if _configured is None:
            from rps_port.config import get_settings

            settings = get_settings()
            if settings.field_keys is not None:
                hmac_key = settings.field_hmac_key.get_secret_value() if settings.field_hmac_key else None
                _configured = KeyRing.parse(settings.field_keys.get_secret_value(), hmac_key)
        if _configured is not None:
            return _configured
        if dialect != "sqlite":
            raise KeyConfigError(
                "no field encryption key: set RPS_FIELD_KEYS (kid:base64key; `rps-port crypto new-key` makes one) "
                "or RPS_FIELD_KEYS_FILE; the generated development key is for SQLite only"
            )
        if _dev is None:
            _dev = _dev_keyring()
        return _dev
