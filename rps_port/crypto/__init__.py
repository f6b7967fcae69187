"""Field encryption at rest (AES-GCM with key ids), blind indexes, rotation, and PII masking."""

from rps_port.crypto.fields import FieldCryptoError, decrypt_field, encrypt_field, is_encrypted
from rps_port.crypto.keys import KeyRing, get_keyring, set_keyring

__all__ = [
    "FieldCryptoError",
    "KeyRing",
    "decrypt_field",
    "encrypt_field",
    "get_keyring",
    "is_encrypted",
    "set_keyring",
]
