"""`rps-port crypto rotate`: re-encrypt every encrypted column under the active key, in batches.

Resumable by construction: each batch selects only values not yet under the active key, and
commits, so a stopped run continues where it was. Values under an older key are re-encrypted;
plaintext (written before encryption) and legacy `enc:v1:` values (decrypted with the legacy
secret) are encrypted; a value that cannot be read is counted and named by row id, and left as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Column, Engine, Table, Text, and_, not_, select, type_coerce, update

from rps_port.crypto.fields import PREFIX, FieldCryptoError, decrypt_field, encrypt_field, is_encrypted
from rps_port.crypto.keys import KeyRing
from rps_port.crypto.types import EncryptedString


@dataclass
class ColumnStats:
    column: str
    reencrypted: int = 0
    encrypted_plaintext: int = 0
    converted_legacy: int = 0
    failed: list[str] = field(default_factory=list)  # row ids, never values

    @property
    def changed(self) -> int:
        return self.reencrypted + self.encrypted_plaintext + self.converted_legacy


def encrypted_columns() -> list[tuple[Table, Column, EncryptedString]]:
    from rps_port.domain.registry import load_metadata

    out = []
    for table in load_metadata().sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedString):
                out.append((table, column, column.type))
    return out


def _plain(raw: str, ctype: EncryptedString, ring: KeyRing, legacy_secret: str | None, stats: ColumnStats) -> str:
    from rps_port.legacy.crypto import is_legacy_encrypted, legacy_decrypt

    if is_encrypted(raw):
        stats.reencrypted += 1
        return decrypt_field(raw, ctype.context, ring)
    if is_legacy_encrypted(raw):
        if not legacy_secret:
            raise FieldCryptoError(f"{ctype.context}: legacy enc:v1 value and no legacy secret")
        stats.converted_legacy += 1
        return legacy_decrypt(raw, legacy_secret)
    stats.encrypted_plaintext += 1
    return raw


def rotate(
    engine: Engine,
    ring: KeyRing,
    *,
    legacy_secret: str | None = None,
    batch_size: int = 500,
    max_batches: int | None = None,
    progress: Callable[[ColumnStats], None] | None = None,
) -> list[ColumnStats]:
    """Bring every encrypted column under `ring.active`; returns per-column counts."""
    results = []
    batches = 0
    current = f"{PREFIX}{ring.active}:%"
    for table, column, ctype in encrypted_columns():
        stats = ColumnStats(f"{table.name}.{column.name}")
        results.append(stats)
        if len(table.primary_key.columns) != 1:
            stats.failed.append(f"{table.name}: composite primary key, not rotated by this command")
            continue
        [pk] = table.primary_key.columns
        raw = type_coerce(column, Text)
        last = None
        while max_batches is None or batches < max_batches:
            query = (
                select(pk, raw)
                .where(column.is_not(None), not_(raw.like(current)))
                .order_by(pk)
                .limit(batch_size)
            )
            if last is not None:
                query = query.where(pk > last)
            with engine.begin() as conn:
                rows = conn.execute(query).all()
                if not rows:
                    break
                for row_id, value in rows:
                    last = row_id
                    try:
                        plain = _plain(value, ctype, ring, legacy_secret, stats)
                    except (FieldCryptoError, ValueError) as exc:
                        stats.failed.append(f"{row_id}: {type(exc).__name__}: {exc}")
                        continue
                    # Only if nobody changed the value meanwhile (the API may be writing).
                    conn.execute(
                        update(table)
                        .where(and_(pk == row_id, raw == value))
                        .values({column.name: type_coerce(encrypt_field(plain, ctype.context, ring), Text)})
                    )
            batches += 1
            if progress:
                progress(stats)
    return results


def key_usage(engine: Engine) -> dict[str, dict[str, int]]:
    """Per encrypted column: how many values are under each key id, plaintext, or legacy."""
    from rps_port.legacy.crypto import PREFIX as LEGACY

    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for table, column, _ in encrypted_columns():
            counts: dict[str, int] = {}
            raw = type_coerce(column, Text)
            for (value,) in conn.execute(select(raw).where(column.is_not(None))):
                if is_encrypted(value):
                    label = "key:" + value[len(PREFIX) :].split(":", 1)[0]
                elif value.startswith(LEGACY):
                    label = "legacy enc:v1"
                else:
                    label = "plaintext"
                counts[label] = counts.get(label, 0) + 1
            out[f"{table.name}.{column.name}"] = counts
    return out


__all__ = ["ColumnStats", "encrypted_columns", "key_usage", "rotate"]
