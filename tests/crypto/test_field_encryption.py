"""PII encrypted at rest (AES-GCM, key id in the value), transparent to ORM/Core, rotation and
legacy conversion, and no plaintext PII in the database file or in logs."""

from __future__ import annotations

import base64
import logging
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Text, insert, select, text, type_coerce
from sqlalchemy.orm import Session

from rps_port.crypto.fields import FieldCryptoError, blind_index, decrypt_field, encrypt_field, key_id_of
from rps_port.crypto.keys import KeyConfigError, KeyRing, get_keyring, set_keyring
from rps_port.crypto.rotate import key_usage, rotate
from rps_port.db import make_engine, session_scope
from rps_port.domain.customers import Customer
from rps_port.domain.transactions import Transaction
from rps_port.ids import new_object_id
from rps_port.legacy.crypto import legacy_encrypt

ORG = "6b0000000000000000000001"
PHONE, TAX_ID, LAST4 = "+15557654321", "DE987654321", "4871"
K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()


@pytest.fixture
def ring():
    r = KeyRing.parse(K1)
    set_keyring(r)
    yield r
    set_keyring(None)


def add_rows(engine, n: int = 3) -> list[str]:
    ids = []
    with session_scope(engine) as s:
        for i in range(n):
            c = Customer(id=new_object_id(), org_id=ORG, name=f"C{i}", email=f"c{i}@example.com", phone=PHONE,
                         tax_id=f"{TAX_ID}{i}", status="active", marketing_opt_in=False, tags=[])
            s.add(c)
            s.add(Transaction(id=new_object_id(), org_id=ORG, customer_id=c.id, kind="charge", status="succeeded",
                              amount=Decimal("1.00"), currency="USD", provider="stripe", provider_ref=f"ch_{i}_{c.id}",
                              card_brand="visa", card_last4=LAST4))
            ids.append(c.id)
    return ids


def raw_values(engine, column) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(type_coerce(column, Text)).where(column.is_not(None))).scalars())


def test_values_are_encrypted_at_rest_and_read_back_plain(db_url, ring):
    engine = make_engine(db_url)
    ids = add_rows(engine)
    with Session(engine) as s:
        c = s.get(Customer, ids[0])
        assert (c.phone, c.tax_id) == (PHONE, TAX_ID + "0")
        assert s.scalars(select(Transaction.card_last4)).all() == [LAST4] * 3
    for value in raw_values(engine, Customer.__table__.c.phone):
        assert value.startswith("gcm:v1:k1:") and PHONE not in value
    assert len(set(raw_values(engine, Customer.__table__.c.phone))) == 3  # random nonces
    # Core inserts (the ETL loader's path) go through the column type too.
    with engine.begin() as conn:
        conn.execute(insert(Customer.__table__).values(id=new_object_id(), org_id=ORG, name="Core", phone=PHONE,
                                                       status="active", marketing_opt_in=False, tags=[],
                                                       created_at=text("CURRENT_TIMESTAMP"), updated_at=text("CURRENT_TIMESTAMP")))
    assert all(v.startswith("gcm:v1:") for v in raw_values(engine, Customer.__table__.c.phone))
    engine.dispose()


def test_no_plaintext_pii_in_the_sqlite_file(sqlite_db_url, ring):
    engine = make_engine(sqlite_db_url)
    add_rows(engine, 20)
    engine.dispose()  # checkpoint the WAL into the main file
    path = Path(sqlite_db_url.removeprefix("sqlite:///"))
    data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert b"c0@example.com" in data  # email is not encrypted (looked up by the worker): the check works
    for secret in (PHONE, TAX_ID, "5557654321"):
        assert secret.encode() not in data
    assert LAST4.encode() not in data


def test_ciphertext_moved_to_another_column_or_tampered_does_not_decrypt(ring):
    value = encrypt_field(PHONE, "customers.phone", ring)
    assert decrypt_field(value, "customers.phone", ring) == PHONE
    with pytest.raises(FieldCryptoError, match="customers.tax_id: value under key 'k1' does not authenticate"):
        decrypt_field(value, "customers.tax_id", ring)
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    with pytest.raises(FieldCryptoError) as info:
        decrypt_field(tampered, "customers.phone", ring)
    assert PHONE not in str(info.value)
    with pytest.raises(FieldCryptoError, match="key 'k9', which is not in RPS_FIELD_KEYS"):
        decrypt_field(value.replace(":k1:", ":k9:"), "customers.phone", ring)


def test_rotation_is_resumable_and_converts_plaintext_and_legacy(db_url, ring):
    engine = make_engine(db_url)
    ids = add_rows(engine, 5)
    secret = "legacy-secret"
    with engine.begin() as conn:  # rows written before encryption, and a legacy enc:v1 value
        conn.execute(text("UPDATE customers SET tax_id = :v WHERE id = :id"), {"v": "PLAIN-1", "id": ids[0]})
        conn.execute(text("UPDATE customers SET tax_id = :v WHERE id = :id"),
                     {"v": legacy_encrypt("LEGACY-2", secret), "id": ids[1]})
    new = KeyRing.parse(f"{K2},{K1}")
    set_keyring(new)
    first = rotate(engine, new, legacy_secret=secret, batch_size=2, max_batches=1)  # stopped early
    assert sum(s.changed for s in first) == 2
    rest = rotate(engine, new, legacy_secret=secret, batch_size=2)
    by_col = {s.column: s for s in rest}
    assert sum(s.changed for s in first + rest) == 15 and all(not s.failed for s in rest)
    assert by_col["customers.tax_id"].converted_legacy == 1
    usage = key_usage(engine)  # other components' encrypted columns (e.g. ETL rejects) are empty here
    assert {c: usage[c] for c in ("customers.phone", "customers.tax_id", "transactions.card_last4")} == {
        "customers.phone": {"key:k2": 5}, "customers.tax_id": {"key:k2": 5}, "transactions.card_last4": {"key:k2": 5}}
    set_keyring(KeyRing.parse(K2))  # the old key can go now
    with Session(engine) as s:
        assert s.get(Customer, ids[0]).tax_id == "PLAIN-1"
        assert s.get(Customer, ids[1]).tax_id == "LEGACY-2"
        assert s.get(Customer, ids[2]).phone == PHONE
    assert rotate(engine, KeyRing.parse(K2))[0].changed == 0  # nothing left to do
    engine.dispose()


def test_unreadable_value_is_reported_by_row_id_and_left_alone(sqlite_db_url, ring):
    engine = make_engine(sqlite_db_url)
    [cid] = add_rows(engine, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE customers SET phone = 'gcm:v1:k1:AAAA:BBBB' WHERE id = :id"), {"id": cid})
    [phone, *_] = rotate(engine, KeyRing.parse(f"{K2},{K1}"))
    assert len(phone.failed) == 1 and phone.failed[0].startswith(cid)
    assert raw_values(engine, Customer.__table__.c.phone) == ["gcm:v1:k1:AAAA:BBBB"]
    engine.dispose()


def test_postgres_without_a_key_refuses_sqlite_gets_a_dev_key(monkeypatch, tmp_path):
    monkeypatch.delenv("RPS_FIELD_KEYS", raising=False)
    from rps_port.config import get_settings

    get_settings.cache_clear()
    set_keyring(None)
    try:
        with pytest.raises(KeyConfigError, match="set RPS_FIELD_KEYS"):
            get_keyring("postgresql")
        monkeypatch.chdir(tmp_path)
        dev = get_keyring("sqlite")
        key_file = tmp_path / ".rps-port" / "dev-field-keys"
        assert dev.development and key_file.exists()
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        set_keyring(None)
        assert get_keyring("sqlite").keys == dev.keys  # the same key next time
    finally:
        get_settings.cache_clear()
        set_keyring(None)


def test_key_configuration_errors_never_echo_keys():
    for spec, msg in [("nokid", "expected kid:base64key"), ("k1:notbase64!", "not valid base64"),
                      ("k1:" + base64.b64encode(b"short").decode(), "must be 32 bytes"), (f"{K1},{K1}", "appears twice")]:
        with pytest.raises(KeyConfigError, match=msg) as info:
            KeyRing.parse(spec)
        assert spec.partition(":")[2][:8] not in str(info.value) or not spec.partition(":")[2]


def test_blind_index_for_exact_lookup(ring):
    assert blind_index(" DE123 ", "customers.tax_id", ring) == blind_index("de123", "customers.tax_id", ring)
    assert blind_index("DE123", "customers.tax_id", ring) != blind_index("DE124", "customers.tax_id", ring)
    assert blind_index("DE123", "customers.tax_id", ring) != blind_index("DE123", "customers.phone", ring)
    assert key_id_of(encrypt_field("x", "c", ring)) == "k1"


def test_no_pii_in_logs_when_a_send_fails(db_url, ring, caplog):
    """The worker logs a provider failure for a customer without the phone number or tax id."""
    from rps_port.integrations.http import RetryPolicy
    from rps_port.integrations.twilio import TwilioClient
    from rps_port.outbox.brokers.inprocess import InProcessBroker
    from rps_port.outbox.handlers import Context, default_handlers
    from rps_port.outbox.models import emit
    from rps_port.outbox.relay import Relay
    from rps_port.outbox.worker import Worker
    from rps_port.usage.pricing import load_catalog

    engine = make_engine(db_url)
    add_rows(engine, 1)
    with session_scope(engine) as s:
        emit(s, aggregate_type="transaction", aggregate_id=s.scalars(select(Transaction.id)).first(),
             event_type="transaction.failed", payload={}, org_id=ORG)
    broker = InProcessBroker()
    twilio = TwilioClient("AC" + "0" * 32, "tok", base_url="http://127.0.0.1:9",
                          policy=RetryPolicy(attempts=2, initial=0.01, deadline=1, timeout=0.2))
    worker = Worker(Context(engine, None, twilio, load_catalog()), broker, default_handlers(), max_deliveries=1)
    caplog.set_level(logging.DEBUG)
    Relay(engine, broker).drain()
    worker.run_once(wait_seconds=0.1)
    assert worker.stats.dead_lettered == 1
    logged = caplog.text
    assert "dead-lettered" in logged
    for secret in (PHONE, "5557654321", TAX_ID, LAST4):
        assert secret not in logged
    engine.dispose()
