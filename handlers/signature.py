"""SendGrid request signature verification: the Signed Event Webhook, and Inbound Parse.

Inbound Parse signs with the same scheme and headers when its webhook has a
security policy with signature verification (``plugins.inbound``); it only
reads its keys and settings from other variables (``settings(...)``).

SendGrid signs ``timestamp + body`` with ECDSA P-256 / SHA-256 and sends the
base64 DER signature and the timestamp in two headers. We verify the bytes as
received (the caller decodes API Gateway's base64; nothing is re-serialized,
so a trailing CRLF stays part of what is verified) against every configured
key: any one may match (key rotation, several webhooks).

Why ``cryptography`` and not the ``sendgrid`` package's ``EventWebhook``: that
helper takes one key and a ``str`` body (so it re-encodes what it was given),
and raises on a malformed signature instead of answering False.

The age window (``SENDGRID_WEBHOOK_MAX_AGE_SECONDS``, default 3 days): SendGrid
retries a failed POST for 24 hours and does not say whether a retry is signed
afresh, so any window under a day could refuse a genuine retry; 3 days leaves
room for delays and clock skew. It stays below the 7 days the webhook
remembers processed events (``handlers.delivery``), so a replay old enough to
pass the age check is still recognised as a duplicate.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Mapping, NamedTuple

from handlers import env
from handlers.apigw import Refused, header

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
FUTURE_SKEW_SECONDS = 600  # a timestamp this far ahead of our clock is still fine
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_TRUE = {"1", "true", "yes", "on"}
# A P-256 public key as SendGrid shows it: base64 of a DER SubjectPublicKeyInfo, always this
# header (id-ecPublicKey, prime256v1, a 66-byte BIT STRING) and the 65-byte uncompressed point.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
P256_SPKI_LENGTH = len(P256_SPKI_PREFIX) + 65


class Forbidden(Refused):
    """The request is not signed by a configured key (answered 403)."""

    status = 403


class ConfigurationError(Refused, RuntimeError):
    """The verification settings themselves are wrong (a key is not a P-256 public key, ...): 503, and
    the answer does not say which setting (the log does)."""

    status = 503
    answer = "the {what} is misconfigured; it will accept the request once fixed"


class Settings(NamedTuple):
    keys: tuple  # cryptography EllipticCurvePublicKey objects
    max_age: int
    allow_unsigned: bool


def p256_point(der: bytes) -> bytes | None:
    """The point of a P-256 public key in SendGrid's form (``P256_SPKI_PREFIX`` + point), or None."""
    if len(der) != P256_SPKI_LENGTH or not der.startswith(P256_SPKI_PREFIX):
        return None
    return der[len(P256_SPKI_PREFIX):]


def load_key(text: str, source: str = env.SENDGRID_WEBHOOK_PUBLIC_KEYS.name):
    """A verification key as SendGrid shows it (base64 DER SubjectPublicKeyInfo) -> public key.

    ``source`` names the variable the key came from, in error messages. The
    point is read from the DER here rather than by ``load_der_public_key``:
    importing ``cryptography``'s serialization package loads its SSH module
    (ciphers, RSA, padding), about 10 ms of every cold start, for a format
    that never changes (``pulumi up`` accepts only keys of this form).
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigurationError(f"{source}: a key is not base64 DER "
                                 f"({type(exc).__name__})") from None
    point = p256_point(der)
    if point is None:
        raise ConfigurationError(f"{source}: a key is not an ECDSA P-256 key")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ConfigurationError(f"{source}: a key is not a point on P-256") from None


@functools.lru_cache(maxsize=8)
def parse_settings(keys: str | None, max_age: str | None, allow_unsigned: str | None,
                   keys_var: str = env.SENDGRID_WEBHOOK_PUBLIC_KEYS.name,
                   max_age_var: str = env.SENDGRID_WEBHOOK_MAX_AGE_SECONDS.name) -> Settings:
    """Settings from the variables' values (``*_var``: their names, for error messages)."""
    try:
        age = int(max_age or 0)
    except ValueError:
        raise ConfigurationError(f"{max_age_var} is not an integer") from None
    if age < 0:
        raise ConfigurationError(f"{max_age_var} is negative")
    return Settings(
        keys=tuple(load_key(k, keys_var) for k in (keys or "").split(",") if k.strip()),
        max_age=age,
        allow_unsigned=(allow_unsigned or "").strip().lower() in _TRUE,
    )


def settings(keys: env.Var = env.SENDGRID_WEBHOOK_PUBLIC_KEYS, max_age: env.Var = env.SENDGRID_WEBHOOK_MAX_AGE_SECONDS,
             allow_unsigned: env.Var = env.SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE) -> Settings:
    """The settings in the environment (keys are parsed once per distinct value).

    The Event Webhook's variables by default; another receiver (Inbound Parse) passes its own.
    """
    return parse_settings(keys.get(), max_age.get(), allow_unsigned.get(), keys.name, max_age.name)


def verify(body: bytes, headers: Mapping | None, config: Settings, now: float) -> bool:
    """Check the request's signature; returns whether it was signed (False: unsigned and allowed).

    Raises ``Forbidden`` naming the problem otherwise.
    """
    if not config.keys:
        if config.allow_unsigned:
            return False
        raise Forbidden("signature verification is not configured (no public key); request refused")
    signature, timestamp = header(headers, SIGNATURE_HEADER), header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise Forbidden(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    if not _TIMESTAMP.match(timestamp):
        raise Forbidden(f"{TIMESTAMP_HEADER} is not a Unix time")
    if config.max_age:
        age = now - int(timestamp)
        if age > config.max_age:
            raise Forbidden(f"signature timestamp is older than {config.max_age} seconds")
        if age < -FUTURE_SKEW_SECONDS:
            raise Forbidden("signature timestamp is in the future")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise Forbidden(f"{SIGNATURE_HEADER} is not valid base64") from None

    from cryptography.exceptions import InvalidSignature

    signed = timestamp.encode("ascii") + body
    for key in config.keys:
        try:
            key.verify(der, signed, _ecdsa_sha256())
            return True
        except (InvalidSignature, ValueError):
            continue
    raise Forbidden("signature does not match the body under any configured key")


@functools.cache
def _ecdsa_sha256():
    """ECDSA with SHA-256, for verifying: what ``ec.ECDSA(hashes.SHA256())`` gives, minus an import.

    ``ECDSA.__init__`` imports ``cryptography``'s OpenSSL backend module (its
    ciphers, padding: about 6 ms of a cold start) only to check that
    deterministic *signing* is supported. Verification reads the public
    ``algorithm`` (and the type: an ``ECDSA``), so this subclass answers that
    without running ``__init__``.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    class VerifyingECDSA(ec.ECDSA):
        def __init__(self, algorithm):  # no super().__init__(): that is the import avoided
            self._hash = algorithm

        @property
        def algorithm(self):
            return self._hash

        @property
        def deterministic_signing(self) -> bool:
            return False

    return VerifyingECDSA(hashes.SHA256())
