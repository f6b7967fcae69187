"""The legacy app's field encryption: `enc:v1:<iv hex>:<ciphertext hex>`.

AES-256-CBC with PKCS#7 padding; the key is SHA-256 of the legacy secret (`RPS_LEGACY_SECRET`),
the IV is 16 random bytes stored in front of the ciphertext. Plaintext is UTF-8.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PREFIX = "enc:v1:"
_FORMAT = re.compile(r"^enc:v1:([0-9a-fA-F]{32}):((?:[0-9a-fA-F]{32})+)$")
_BLOCK_BITS = 128


class LegacyCryptoError(ValueError):
    """An `enc:v1` value that cannot be decrypted: malformed, wrong secret, or corrupt.

    The message names what is wrong but never includes the value, the plaintext or the secret.
    """


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not raw:
        raise LegacyCryptoError("the legacy secret is empty")
    return hashlib.sha256(raw).digest()


@functools.lru_cache(maxsize=8)
def _aes(secret: str | bytes) -> algorithms.AES:
    """The cipher key for a secret, derived once: a bulk load decrypts millions of values."""
    return algorithms.AES(_key(secret))


def is_legacy_encrypted(value: object) -> bool:
    """True for a string in the `enc:v1:<32 hex>:<hex, whole AES blocks>` shape (not a decryption check)."""
    return isinstance(value, str) and bool(_FORMAT.match(value))


def legacy_encrypt(plaintext: str, secret: str | bytes, iv: bytes | None = None) -> str:
    """Encrypt `plaintext` the way the legacy app does; `iv` (16 bytes) is random unless given."""
    if iv is None:
        iv = os.urandom(16)
    if len(iv) != 16:
        raise LegacyCryptoError(f"the IV must be 16 bytes, got {len(iv)}")
    padder = padding.PKCS7(_BLOCK_BITS).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(_aes(secret), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return f"{PREFIX}{iv.hex()}:{ciphertext.hex()}"


def legacy_decrypt(value: str, secret: str | bytes) -> str:
    """Decrypt an `enc:v1` value; raises LegacyCryptoError on a bad format, wrong secret or corrupt data."""
    if not isinstance(value, str):
        raise LegacyCryptoError(f"expected an enc:v1 string, got {type(value).__name__}")
    match = _FORMAT.match(value)
    if not match:
        if not value.startswith(PREFIX):
            raise LegacyCryptoError("not an enc:v1 value (missing the 'enc:v1:' prefix)")
        raise LegacyCryptoError(
            "malformed enc:v1 value (expected a 32-hex IV and hex ciphertext of whole 16-byte blocks)"
        )
    iv = bytes.fromhex(match.group(1))
    ciphertext = bytes.fromhex(match.group(2))
    decryptor = Cipher(_aes(secret), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]  # PKCS#7: 1-16 bytes, each holding the count (checked here: 3x cheaper than an unpadder)
    if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
        raise LegacyCryptoError("bad PKCS#7 padding after decryption (wrong secret or corrupt value)")
    plain = padded[:-pad]
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise LegacyCryptoError("decrypted bytes are not UTF-8 (wrong secret or corrupt value)") from None
