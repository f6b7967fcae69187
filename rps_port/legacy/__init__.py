"""The legacy RPS as data: a synthetic MongoDB dataset with every contract quirk, and the legacy crypto."""

from rps_port.legacy.crypto import LegacyCryptoError, is_legacy_encrypted, legacy_decrypt, legacy_encrypt
from rps_port.legacy.generate import DEFAULT_SECRET, GenerateError, generate
from rps_port.legacy.manifest import Manifest, load_ids

__all__ = [
    "DEFAULT_SECRET",
    "GenerateError",
    "LegacyCryptoError",
    "Manifest",
    "generate",
    "is_legacy_encrypted",
    "legacy_decrypt",
    "legacy_encrypt",
    "load_ids",
]
