"""Signed Event Webhook: only what a configured key signed gets in, byte for byte."""

import base64
import json
import logging
import time
from pathlib import Path

import pytest

from devstack.eventwebhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookKey
from handlers import env, signature, webhook
from tests.support import proxy_event, scan
from tests.webhook_support import Calls, bounce, endpoint  # noqa: F401 (fixture)

# SendGrid's own published test vector (sendgrid-python test/unit/test_eventwebhook.py),
# with the trailing CRLF that is part of the signed body.
SENDGRID_PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe"
                       "62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
SENDGRID_SIGNATURE = ("MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluL"
                      "tEZtM=")
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)
OTHER_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo"
             "7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==")
VECTOR_HEADERS = {SIGNATURE_HEADER: SENDGRID_SIGNATURE, TIMESTAMP_HEADER: SENDGRID_TIMESTAMP}


def vector_settings(keys=SENDGRID_PUBLIC_KEY):
    return signature.parse_settings(keys, "0", None)  # the vector is from 2020: no age check


def test_sendgrids_test_vector_verifies():
    assert signature.verify(SENDGRID_PAYLOAD, VECTOR_HEADERS, vector_settings(), time.time()) is True


@pytest.mark.parametrize("position", [0, 40, len(SENDGRID_PAYLOAD) - 3, len(SENDGRID_PAYLOAD) - 1])
def test_a_tampered_byte_fails(position):
    tampered = bytearray(SENDGRID_PAYLOAD)
    tampered[position] ^= 0x01
    with pytest.raises(signature.Forbidden, match="does not match"):
        signature.verify(bytes(tampered), VECTOR_HEADERS, vector_settings(), time.time())


def test_the_trailing_crlf_is_part_of_what_is_signed():
    with pytest.raises(signature.Forbidden):
        signature.verify(SENDGRID_PAYLOAD.rstrip(), VECTOR_HEADERS, vector_settings(), time.time())


def test_a_changed_timestamp_fails():
    headers = {**VECTOR_HEADERS, TIMESTAMP_HEADER: str(int(SENDGRID_TIMESTAMP) + 1)}
    with pytest.raises(signature.Forbidden, match="does not match"):
        signature.verify(SENDGRID_PAYLOAD, headers, vector_settings(), time.time())


def test_any_configured_key_may_match_and_an_unknown_key_fails():
    both = f"{OTHER_KEY}, {SENDGRID_PUBLIC_KEY}"
    assert signature.verify(SENDGRID_PAYLOAD, VECTOR_HEADERS, vector_settings(both), time.time())
    with pytest.raises(signature.Forbidden):
        signature.verify(SENDGRID_PAYLOAD, VECTOR_HEADERS, vector_settings(OTHER_KEY), time.time())


def test_header_names_are_matched_whatever_their_case():
    lower = {k.lower(): v for k, v in VECTOR_HEADERS.items()}
    assert signature.verify(SENDGRID_PAYLOAD, lower, vector_settings(), time.time())


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_the_vector_through_the_lambda_handler(stack, monkeypatch, base64_encoded):
    plugins = stack()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEYS", SENDGRID_PUBLIC_KEY)
    monkeypatch.setenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", "0")
    event = proxy_event(SENDGRID_PAYLOAD, VECTOR_HEADERS, base64_encoded=base64_encoded)
    answer = webhook.handle(event, lambda: plugins)
    assert answer["statusCode"] == 200, answer
    [row] = scan("TABLE_BOUNCE")
    assert (row["event"], row["reason"], row["matched"]) == ("dropped", "Bounced Address", False)


def forbidden(endpoint, **post):
    calls = Calls()
    status, answer = endpoint.post([bounce(1)], **post)
    assert status == 403 and answer["error"]
    assert calls.total == 0 and scan("TABLE_BOUNCE") == [] and scan("TABLE_PROCESSED_EVENTS") == []
    return answer["error"]


def test_missing_signature_is_403_and_nothing_is_written(endpoint):
    assert "missing" in forbidden(endpoint(), sign=False)


def test_signature_by_another_key_is_403(endpoint):
    intruder = WebhookKey()
    body = b'[{"email":"a@b.c","event":"bounce","timestamp":1}]'
    assert "does not match" in forbidden(endpoint(), body=body, headers=intruder.headers(body))


def test_malformed_base64_signature_is_403(endpoint):
    assert "base64" in forbidden(endpoint(), headers={SIGNATURE_HEADER: "not base64!!"})


def test_a_signature_that_is_base64_but_not_der_is_403(endpoint):
    garbage = base64.b64encode(b"\x30\x03\x02\x01").decode()
    assert "does not match" in forbidden(endpoint(), headers={SIGNATURE_HEADER: garbage})


def test_non_numeric_timestamp_is_403(endpoint):
    assert "Unix time" in forbidden(endpoint(), headers={TIMESTAMP_HEADER: "yesterday"})


def test_timestamp_older_than_the_window_is_403(endpoint, monkeypatch):
    monkeypatch.setenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", "3600")
    assert "older" in forbidden(endpoint(), timestamp=int(time.time()) - 7200)


def test_timestamp_far_in_the_future_is_403(endpoint):
    assert "future" in forbidden(endpoint(), timestamp=int(time.time()) + 3600)


def test_the_default_window_accepts_a_retry_signed_at_the_first_attempt_a_day_ago(endpoint):
    assert int(env.SENDGRID_WEBHOOK_MAX_AGE_SECONDS.default) > 24 * 3600 + 3600
    status, _ = endpoint().post([bounce(1)], timestamp=int(time.time()) - 25 * 3600)
    assert status == 200


def test_max_age_zero_turns_the_age_check_off(endpoint, monkeypatch):
    monkeypatch.setenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", "0")
    status, _ = endpoint().post([bounce(1)], timestamp=1600000000)
    assert status == 200


def test_no_key_configured_refuses_everything(endpoint, monkeypatch):
    web = endpoint()
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEYS")
    assert "not configured" in forbidden(web)
    assert "not configured" in forbidden(web, sign=False)


def test_unsigned_posts_only_when_allowed_explicitly(endpoint, monkeypatch):
    web = endpoint()
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEYS")
    monkeypatch.setenv("SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE", "true")
    assert web.post([bounce(1)], sign=False)[0] == 200
    assert len(scan("TABLE_BOUNCE")) == 1


def test_allowing_unsigned_posts_does_not_weaken_a_configured_key(endpoint, monkeypatch):
    monkeypatch.setenv("SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE", "true")
    forbidden(endpoint(), sign=False)


def test_a_broken_key_setting_is_a_503_so_sendgrid_keeps_the_batch(endpoint, monkeypatch, caplog):
    web = endpoint()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEYS", "bm90IGEga2V5")
    with caplog.at_level(logging.INFO):
        status, answer = web.post([bounce(1)])
    assert status == 503 and "misconfigured" in answer["error"]
    assert "SENDGRID" not in json.dumps(answer) and "KEYS" not in json.dumps(answer)  # a stranger may ask
    assert "SENDGRID_WEBHOOK_PUBLIC_KEYS" in caplog.text  # the operator's log says which setting
    assert scan("TABLE_BOUNCE") == []


def der_b64(public_key) -> str:
    from cryptography.hazmat.primitives import serialization

    return base64.b64encode(public_key.public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def test_a_key_is_read_as_cryptography_reads_its_der():
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    for text in (SENDGRID_PUBLIC_KEY, OTHER_KEY, WebhookKey().public_key_b64):
        expected = load_der_public_key(base64.b64decode(text))
        assert signature.load_key(text).public_numbers() == expected.public_numbers()
    p384 = der_b64(ec.generate_private_key(ec.SECP384R1()).public_key())
    prefix = base64.b64decode(SENDGRID_PUBLIC_KEY)[:len(signature.P256_SPKI_PREFIX)]
    problems = {p384: "not an ECDSA P-256 key", SENDGRID_PUBLIC_KEY[:-8]: "not an ECDSA P-256 key",
                base64.b64encode(prefix + b"\x04" + b"\x00" * 64).decode(): "not a point on P-256",
                "not base64!": "not base64 DER"}
    for text, problem in problems.items():
        with pytest.raises(signature.ConfigurationError, match=problem):
            signature.load_key(text)


def test_the_first_request_does_not_load_cryptographys_serialization_package():
    """Its SSH module (ciphers, RSA, padding) is about 10 ms of a cold start the webhook does not need."""
    import subprocess
    import sys

    key, body = WebhookKey(), b"[]\r\n"
    code = ("import sys, handlers.webhook, handlers.signature as s; "
            f"assert s.verify({body!r}, {key.headers(body)!r}, s.parse_settings({key.public_key_b64!r}, '0', ''), 0); "
            "print(sorted(m for m in sys.modules if m.startswith('cryptography.hazmat.primitives')))")
    root = Path(__file__).resolve().parent.parent
    loaded = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    assert "cryptography.hazmat.primitives.asymmetric.ec" in loaded
    assert "'cryptography.hazmat.primitives.serialization'" not in loaded
    assert "serialization.ssh" not in loaded
    assert "cryptography.hazmat.primitives.ciphers" not in loaded  # ECDSA.__init__'s OpenSSL backend import


def test_the_verifying_ecdsa_is_sha256_ecdsa():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    algorithm = signature._ecdsa_sha256()
    assert isinstance(algorithm, ec.ECDSA) and isinstance(algorithm.algorithm, hashes.SHA256)
    assert algorithm.deterministic_signing is False
    key = WebhookKey()
    signed = key.private_key.sign(b"1600112502[]", ec.ECDSA(hashes.SHA256()))
    key.private_key.public_key().verify(signed, b"1600112502[]", algorithm)
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        key.private_key.public_key().verify(signed, b"1600112502[ ]", algorithm)
