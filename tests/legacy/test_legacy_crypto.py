"""The legacy enc:v1 scheme: round trip, a vector made with OpenSSL, and clear errors."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from rps_port.legacy import LegacyCryptoError, is_legacy_encrypted, legacy_decrypt, legacy_encrypt

SECRET = "rps-legacy-test-secret"
IV = bytes(range(16))
# `printf 'DE123456789' | openssl enc -aes-256-cbc -K $(printf rps-legacy-test-secret | sha256sum) -iv 000102..0f | xxd -p`
VECTOR = "enc:v1:000102030405060708090a0b0c0d0e0f:54c2d1ba81afaf0466e40a4886dcf450"


def test_round_trip_including_unicode_and_empty():
    for text in ["DE123456789", "4242", "", "Zoë · 東京 · 🎁", "x" * 33]:
        value = legacy_encrypt(text, SECRET)
        assert is_legacy_encrypted(value)
        assert legacy_decrypt(value, SECRET) == text


def test_random_iv_unless_given():
    assert legacy_encrypt("4242", SECRET) != legacy_encrypt("4242", SECRET)
    assert legacy_encrypt("4242", SECRET, iv=IV) == legacy_encrypt("4242", SECRET, iv=IV)


def test_known_vector():
    assert legacy_encrypt("DE123456789", SECRET, iv=IV) == VECTOR
    assert legacy_decrypt(VECTOR, SECRET) == "DE123456789"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_matches_openssl():
    key = hashlib.sha256(SECRET.encode()).hexdigest()
    out = subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-K", key, "-iv", IV.hex()],
        input=b"card 4242 \xe2\x9c\x93", capture_output=True, check=True,
    ).stdout
    assert legacy_encrypt("card 4242 ✓", SECRET, iv=IV) == f"enc:v1:{IV.hex()}:{out.hex()}"


@pytest.mark.parametrize(
    "value,message",
    [
        ("DE123456789", "prefix"),
        ("enc:v1:zz0102030405060708090a0b0c0d0e0f:00", "malformed"),
        ("enc:v1:000102030405060708090a0b0c0d0e0f:0011", "malformed"),
        ("enc:v1:0001:00112233445566778899aabbccddeeff", "malformed"),
        (12, "expected an enc:v1 string"),
    ],
)
def test_bad_input_raises_a_clear_error(value, message):
    with pytest.raises(LegacyCryptoError, match=message):
        legacy_decrypt(value, SECRET)


def test_wrong_secret_or_corrupt_value_is_an_error_without_leaking():
    with pytest.raises(LegacyCryptoError) as caught:
        legacy_decrypt(VECTOR, "not-the-secret")
    assert "DE123456789" not in str(caught.value) and "not-the-secret" not in str(caught.value)
    corrupt = VECTOR[:-2] + ("00" if not VECTOR.endswith("00") else "11")
    with pytest.raises(LegacyCryptoError):
        legacy_decrypt(corrupt, SECRET)


def test_is_legacy_encrypted_checks_shape_only():
    assert is_legacy_encrypted(VECTOR)
    assert not is_legacy_encrypted("DE123456789")
    assert not is_legacy_encrypted(None)
    assert not is_legacy_encrypted("enc:v1:00:00")
