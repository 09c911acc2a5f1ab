"""Pulumi's passphrase secrets provider, in Python: to write and check ``secure:`` values of a stack file.

As the CLI's passphrase secrets manager and its ``config.symmetricCrypter``: the key is
PBKDF2-HMAC-SHA256(passphrase, salt, 1,000,000 iterations, 32 bytes); a value
is ``v1:<nonce>:<ciphertext>`` (base64), AES-256-GCM with a 12-byte random
nonce and no associated data (the ciphertext ends with the 16-byte tag). The
stack file's ``encryptionsalt`` is ``v1:<salt>:`` followed by ``"pulumi"``
encrypted under the key: how the CLI tells a wrong passphrase.

    state, key = new_state("my passphrase")      # encryptionsalt: <state>
    encrypt(key, "SG.replace-me")                # secure: <this>
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

ITERATIONS = 1_000_000
KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 8
CHECK = "pulumi"  # what the state encrypts


class IncorrectPassphrase(ValueError):
    """The state's check value does not decrypt to ``pulumi`` under this passphrase."""


def derive_key(passphrase: str, salt: bytes) -> bytes:
    """``NewSymmetricCrypterFromPassphrase``'s key."""
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, iterations=ITERATIONS)
    return kdf.derive(passphrase.encode())


def encrypt(key: bytes, plaintext: str, nonce: bytes | None = None) -> str:
    """``symmetricCrypter.EncryptValue``: ``v1:<nonce b64>:<ciphertext b64>``."""
    nonce = nonce or os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
    return f"v1:{_b64(nonce)}:{_b64(sealed)}"


def decrypt(key: bytes, value: str) -> str:
    """``symmetricCrypter.DecryptValue``; a wrong key or a changed value raises ``InvalidTag``."""
    version, nonce, sealed = _split(value, 3)
    if version != "v1":
        raise ValueError("unknown value version")
    return AESGCM(key).decrypt(base64.b64decode(nonce, validate=True),
                               base64.b64decode(sealed, validate=True), None).decode()


def new_state(passphrase: str, salt: bytes | None = None) -> tuple[str, bytes]:
    """A new ``encryptionsalt`` (``NewPassphraseSecretsManager``) and the key it stands for."""
    salt = salt or os.urandom(SALT_BYTES)
    key = derive_key(passphrase, salt)
    return f"v1:{_b64(salt)}:{encrypt(key, CHECK)}", key


def key_from_state(passphrase: str, state: str) -> bytes:
    """The key of an ``encryptionsalt`` (``symmetricCrypterFromPhraseAndState``), checked."""
    version, salt, _ = _split(state, 3)
    if version != "v1":
        raise ValueError("unknown state version")
    key = derive_key(passphrase, base64.b64decode(salt, validate=True))
    try:
        if decrypt(key, state.split(":", 2)[2]) == CHECK:
            return key
    except InvalidTag:
        pass
    raise IncorrectPassphrase("incorrect passphrase")


def _split(value: str, parts: int) -> list[str]:
    fields = value.split(":", parts - 1)
    if len(fields) != parts:
        raise ValueError("bad value")
    return fields


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
