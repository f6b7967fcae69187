"""`EncryptedString`: a column type that encrypts on the way in and decrypts on the way out, so
the ORM, the API and the ETL loader (which binds through column types) never handle ciphertext.

The DDL is unchanged (TEXT / VARCHAR(n)); a stored value without the `gcm:v1:` prefix (written
before encryption was switched on) is returned as is, and `rps-port crypto rotate` encrypts it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from rps_port.crypto.fields import decrypt_field, encrypt_field, is_encrypted
from rps_port.crypto.keys import get_keyring


class EncryptedString(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def __init__(self, context: str, length: int | None = None) -> None:
        super().__init__()
        self.context = context  # "table.column": the AES-GCM associated data
        self.length = length
        self.impl = String(length) if length else Text()

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{self.context}: expected a string, got {type(value).__name__}")
        return encrypt_field(value, self.context, get_keyring(dialect.name))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or not is_encrypted(value):
            return value
        return decrypt_field(value, self.context, get_keyring(dialect.name))

    def copy(self, **kw: Any) -> EncryptedString:
        return EncryptedString(self.context, self.length)
