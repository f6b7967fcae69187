"""`gcm:v1:<kid>:<nonce>:<ciphertext+tag>` (base64url, no padding): AES-256-GCM with a random
96-bit nonce; the column's name is the associated data, so a value copied into another column
does not decrypt."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rps_port.crypto.keys import KeyRing

PREFIX = "gcm:v1:"


class FieldCryptoError(ValueError):
    """A stored value that does not decrypt; names the column and key id, never the value."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id_of(value: str) -> str | None:
    return value[len(PREFIX) :].split(":", 1)[0] if is_encrypted(value) else None


@functools.lru_cache(maxsize=64)
def _aead(key: bytes) -> AESGCM:
    """One cipher object per key: building it costs twice the encryption of a short field."""
    return AESGCM(key)


def encrypt_field(plaintext: str, context: str, ring: KeyRing) -> str:
    nonce = os.urandom(12)
    ct = _aead(ring.key(ring.active)).encrypt(nonce, plaintext.encode("utf-8"), context.encode())
    return f"{PREFIX}{ring.active}:{_b64(nonce)}:{_b64(ct)}"


def decrypt_field(value: str, context: str, ring: KeyRing) -> str:
    parts = value[len(PREFIX) :].split(":") if is_encrypted(value) else []
    if len(parts) != 3:
        raise FieldCryptoError(f"{context}: malformed encrypted value (expected gcm:v1:<kid>:<nonce>:<data>)")
    kid, nonce, ct = parts
    if kid not in ring.keys:
        raise FieldCryptoError(f"{context}: encrypted with key {kid!r}, which is not in RPS_FIELD_KEYS")
    try:
        return _aead(ring.keys[kid]).decrypt(_unb64(nonce), _unb64(ct), context.encode()).decode("utf-8")
    except (InvalidTag, ValueError):
        raise FieldCryptoError(f"{context}: value under key {kid!r} does not authenticate (corrupt or moved)") from None


def normalise_for_index(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def blind_index(value: str, context: str, ring: KeyRing) -> str:
    """HMAC-SHA256 of the normalised value: equal values give equal hashes, for exact lookups."""
    msg = f"{context}\x00{normalise_for_index(value)}".encode()
    return hmac.new(ring.hmac_key, msg, hashlib.sha256).hexdigest()
