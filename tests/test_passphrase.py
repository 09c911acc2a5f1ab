"""``infra.passphrase`` against test vectors from the Pulumi CLI's own tests."""

from __future__ import annotations

import base64
import functools

import pytest
from cryptography.exceptions import InvalidTag

from infra import passphrase

# The passphrase manager's tests: the state of passphrase "password" (its check value is "pulumi").
MANAGER_STATE = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
# The config round-trip test: a stack file's encryptionsalt and a secure value under this passphrase.
ROUNDTRIP_PASSPHRASE = "TestConfigRoundtripComments"
ROUNDTRIP_STATE = "v1:ThS5UPxP9qc=:v1:UZYAXF+ylaJ0rGhv:9OTvBnOEDFgxs7btjzSu+LZ470vLpg=="
ROUNDTRIP_SECURE = "v1:T1ftqhY0hqr+EJK6:+jvd5PMecFx80tcavzuZY4tLatgIfoe/xR72GA=="


@functools.cache
def key(phrase: str, state: str) -> bytes:
    return passphrase.key_from_state(phrase, state)  # 1,000,000 PBKDF2 rounds: once each


def test_encryption_reproduces_pulumis_ciphertext_byte_for_byte():
    _, nonce, sealed = MANAGER_STATE.split(":", 2)[2].split(":")
    assert passphrase.encrypt(key("password", MANAGER_STATE), "pulumi", nonce=base64.b64decode(nonce)) == f"v1:{nonce}:{sealed}"


def test_a_secure_value_written_by_the_cli_decrypts():
    assert passphrase.decrypt(key(ROUNDTRIP_PASSPHRASE, ROUNDTRIP_STATE), ROUNDTRIP_SECURE) == "secret-value"


def test_a_wrong_passphrase_or_a_changed_value_is_refused():
    with pytest.raises(passphrase.IncorrectPassphrase):
        passphrase.key_from_state("Password", MANAGER_STATE)
    tampered = ROUNDTRIP_SECURE[:-6] + ("A" if ROUNDTRIP_SECURE[-6] != "A" else "B") + ROUNDTRIP_SECURE[-5:]
    with pytest.raises(InvalidTag):
        passphrase.decrypt(key(ROUNDTRIP_PASSPHRASE, ROUNDTRIP_STATE), tampered)


def test_new_state_and_values_round_trip_with_fresh_nonces():
    state, new_key = passphrase.new_state("correct horse", salt=b"12345678")
    assert state.startswith("v1:MTIzNDU2Nzg=:v1:")
    assert passphrase.key_from_state("correct horse", state) == new_key
    first, second = passphrase.encrypt(new_key, "SG.x"), passphrase.encrypt(new_key, "SG.x")
    assert first != second and passphrase.decrypt(new_key, first) == passphrase.decrypt(new_key, second) == "SG.x"
