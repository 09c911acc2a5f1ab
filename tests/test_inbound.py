"""Inbound Parse into S3 (plugins.inbound, plugins.inbound_handler) under in-process moto."""

from __future__ import annotations

import json
import logging
import re
import sys
import types

import boto3
import pytest

from devstack.eventwebhook import WebhookKey
from handlers import manager
from handlers.hookspecs import hookimpl
from plugins import inbound_handler
from tests.support import proxy_event

BUCKET = "inbound-test"
KEY = WebhookKey()
# A small PNG-like attachment: bytes that are not UTF-8, so API Gateway must pass them base64-encoded.
ATTACHMENT = bytes(range(256)) * 4
MIME = (b"Received: by mx.sendgrid.net\r\nFrom: Alice <alice@example.com>\r\nTo: help@parse.example.com\r\n"
        b"Subject: =?UTF-8?B?5ZWP44GE5ZCI44KP44Gb?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"\r\nHello\r\n")


def form_body(fields: dict[str, str | tuple[str, bytes]], boundary: str = "xYzZY") -> tuple[bytes, str]:
    """A multipart/form-data body as SendGrid Inbound Parse posts it, and its Content-Type."""
    out = b""
    for name, value in fields.items():
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data = value
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def parsed_mail() -> tuple[bytes, str]:
    """Inbound Parse's default (parsed) post: fields, and an attachment as a file."""
    return form_body(parsed_form())


def parsed_form() -> dict:
    return {
        "headers": MIME.split(b"\r\n\r\n")[0].decode(),
        "to": "help@parse.example.com", "from": "Alice <alice@example.com>", "subject": "問い合わせ",
        "text": "Hello\r\n", "sender_ip": "192.0.2.1", "SPF": "pass", "spam_score": "0.1",
        "envelope": json.dumps({"to": ["help@parse.example.com"], "from": "alice@example.com"}),
        "attachments": "1", "attachment-info": json.dumps({"attachment1": {"filename": "a.bin"}}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": "UTF-8"}),
        "attachment1": ("a.bin", ATTACHMENT),
    }


def raw_mail() -> tuple[bytes, str]:
    """Inbound Parse with "send_raw": the whole MIME message in the ``email`` field."""
    return form_body({
        "email": MIME.decode(), "to": "help@parse.example.com", "from": "Alice <alice@example.com>",
        "subject": "問い合わせ", "sender_ip": "192.0.2.1", "SPF": "pass",
        "envelope": json.dumps({"to": ["help@parse.example.com"], "from": "alice@example.com"}),
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}),
    })


def request(body: bytes, content_type: str, *, signed: bool = True, base64_encoded: bool = True,
            key: WebhookKey = KEY, request_id: str = "c0ffee-1234", epoch_ms: int = 1767323045678) -> dict:
    headers = {"Content-Type": content_type, **(key.headers(body) if signed else {})}
    event = proxy_event(body if base64_encoded else body.decode(), headers, base64_encoded=base64_encoded)
    event["requestContext"].update(requestId=request_id, requestTimeEpoch=epoch_ms)
    return event


@pytest.fixture
def s3(aws, monkeypatch):
    """A bucket in moto and the inbound function's settings pointing at it, signed by ``KEY``."""
    inbound_handler.client.cache_clear()
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("INBOUND_BUCKET", BUCKET)
    monkeypatch.setenv("INBOUND_PUBLIC_KEYS", KEY.public_key_b64)
    monkeypatch.delenv("INBOUND_ALLOW_UNSIGNED_INSECURE", raising=False)
    monkeypatch.delenv("INBOUND_MAX_AGE_SECONDS", raising=False)
    yield client
    inbound_handler.client.cache_clear()


def keys(client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def handle(event, names="inbound"):
    return inbound_handler.handle(event, plugins=lambda: manager.build(names))


def test_a_signed_parsed_mail_is_stored_byte_for_byte_under_its_time_and_request_id(s3):
    body, content_type = parsed_mail()
    answer = handle(request(body, content_type))
    assert answer["statusCode"] == 200
    key = "2026/01/02/030405.678Z-c0ffee-1234"  # 1767323045.678 = 2026-01-02T03:04:05.678Z
    assert json.loads(answer["body"]) == {"stored": key}
    assert keys(s3) == [key]
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == body
    assert stored["Metadata"] == {"form-content-type": content_type, "signed": "true"}  # the boundary, to parse it


def test_a_raw_mail_posted_as_text_is_stored_byte_for_byte(s3):
    body, content_type = raw_mail()
    assert handle(request(body, content_type, base64_encoded=False))["statusCode"] == 200
    [key] = keys(s3)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body


def test_the_stored_form_parses_back_to_sendgrids_fields():
    body, content_type = parsed_mail()
    form = inbound_handler.parse_form(body, content_type)
    assert form["attachment1"] == ATTACHMENT
    assert form["subject"] == "問い合わせ" and form["text"] == "Hello\r\n"
    assert json.loads(form["envelope"])["from"] == "alice@example.com"
    body, content_type = raw_mail()
    assert inbound_handler.parse_form(body, content_type)["email"].encode() == MIME
    with pytest.raises(ValueError, match="not a multipart form"):
        inbound_handler.parse_form(b"hello", "text/plain")


def test_a_request_id_cannot_steer_the_key(s3):
    body, content_type = raw_mail()
    assert handle(request(body, content_type, request_id="../../etc/passwd x"))["statusCode"] == 200
    assert keys(s3) == ["2026/01/02/030405.678Z-etcpasswdx"]


@pytest.mark.parametrize("event, status, error", [
    (lambda: request(b"", "multipart/form-data; boundary=x", signed=False), 400, "empty"),
    (lambda: {**request(*raw_mail()), "body": "not base64!"}, 400, "base64"),
    (lambda: request(b"x" * (inbound_handler.MAX_BODY_BYTES + 1), "multipart/form-data; boundary=x"), 413,
     "larger"),
], ids=["empty", "bad-base64", "oversized"])
def test_bad_requests_get_4xx_and_store_nothing(s3, event, status, error):
    answer = handle(event())
    assert answer["statusCode"] == status and error in json.loads(answer["body"])["error"]
    assert keys(s3) == []


def test_a_body_just_under_the_limit_is_stored(s3):
    def body_of(size: int) -> tuple[bytes, str]:
        return form_body({"to": "help@parse.example.com", "attachments": "1", "attachment1": ("a", b"y" * size)})

    body, content_type = body_of(inbound_handler.MAX_BODY_BYTES - len(body_of(0)[0]))
    assert len(body) == inbound_handler.MAX_BODY_BYTES
    assert handle(request(body, content_type))["statusCode"] == 200
    assert len(keys(s3)) == 1


@pytest.mark.parametrize("make", [
    lambda: (b"hello", "text/plain"),
    lambda: (b"y" * 100, "multipart/form-data; boundary=x"),
    lambda: form_body({**parsed_form(), "attachments": "\u00b2"}),  # a digit to str.isdigit, not to int()
    lambda: form_body({**parsed_form(), "attachments": "two"}),
    lambda: form_body({**parsed_form(), "charsets": '["UTF-8"]'}),
    lambda: form_body({**parsed_form(), "charsets": "{"}),
], ids=["not-multipart", "no-parts", "superscript-count", "word-count", "charsets-list", "charsets-not-json"])
def test_a_signed_post_that_is_not_sendgrids_form_is_400_and_not_stored(s3, hook_plugin, make):
    """Before, it was stored, then a hook failed on it: 503, and every retry stored another copy."""
    body, content_type = make()
    answer = handle(request(body, content_type), "inbound,inbound_log,hooktest")
    assert answer["statusCode"] == 400 and "not an Inbound Parse form" in json.loads(answer["body"])["error"]
    assert keys(s3) == [] and hook_plugin.seen == []


def test_hooks_get_the_form_parsed_once_before_storing(s3, hook_plugin, monkeypatch):
    calls = []
    real = inbound_handler.parse_form
    monkeypatch.setattr(inbound_handler, "parse_form", lambda *a: calls.append(1) or real(*a))
    assert handle(request(*parsed_mail()), "inbound,inbound_log,hooktest")["statusCode"] == 200
    [mail] = hook_plugin.seen
    assert mail.form()["attachment1"] == ATTACHMENT and calls == [1]


@pytest.mark.parametrize("make", [
    lambda body, ct: request(body, ct, signed=False),
    lambda body, ct: request(body, ct, key=WebhookKey()),  # another policy's key
    lambda body, ct: {**request(body, ct), "body": request(body + b"x", ct)["body"]},  # tampered after signing
], ids=["unsigned", "other-key", "tampered"])
def test_what_a_configured_key_did_not_sign_gets_403_and_is_not_stored(s3, make):
    answer = handle(make(*raw_mail()))
    assert answer["statusCode"] == 403
    assert keys(s3) == []


def test_unsigned_only_when_explicitly_allowed(s3, monkeypatch):
    body, content_type = raw_mail()
    monkeypatch.setenv("INBOUND_PUBLIC_KEYS", "")
    assert handle(request(body, content_type, signed=False))["statusCode"] == 403  # no key, not allowed
    monkeypatch.setenv("INBOUND_ALLOW_UNSIGNED_INSECURE", "true")
    assert handle(request(body, content_type, signed=False))["statusCode"] == 200
    [key] = keys(s3)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Metadata"]["signed"] == "false"


def test_an_old_signature_is_refused_and_the_age_window_is_the_inbound_ones(s3, monkeypatch):
    body, content_type = raw_mail()
    event = request(body, content_type)
    event["headers"].update(KEY.headers(body, timestamp=1_000_000_000))
    assert handle(event)["statusCode"] == 403
    monkeypatch.setenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", "0")  # the Event Webhook's setting changes nothing
    assert handle(event)["statusCode"] == 403
    monkeypatch.setenv("INBOUND_MAX_AGE_SECONDS", "0")
    assert handle(event)["statusCode"] == 200


def test_a_bad_key_setting_is_a_503_naming_the_inbound_variable_in_the_log_only(s3, monkeypatch, caplog):
    monkeypatch.setenv("INBOUND_PUBLIC_KEYS", "QUJDRA==")
    with caplog.at_level(logging.INFO):
        answer = handle(request(*raw_mail()))
    assert answer["statusCode"] == 503 and "misconfigured" in answer["body"] and "INBOUND" not in answer["body"]
    assert "INBOUND_PUBLIC_KEYS" in caplog.text


def test_s3_failure_is_a_503_and_the_retry_stores_the_mail(s3, monkeypatch):
    body, content_type = parsed_mail()
    monkeypatch.setenv("INBOUND_BUCKET", "no-such-bucket")
    answer = handle(request(body, content_type))
    assert answer["statusCode"] == 503
    assert "retry" in json.loads(answer["body"])["error"]
    monkeypatch.setenv("INBOUND_BUCKET", BUCKET)
    assert handle(request(body, content_type, request_id="retry-1"))["statusCode"] == 200
    assert s3.get_object(Bucket=BUCKET, Key=keys(s3)[0])["Body"].read() == body


def test_a_put_that_raises_is_a_503(s3, monkeypatch):
    def broken(**kwargs):
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(inbound_handler.client(), "put_object", broken)
    assert handle(request(*raw_mail()))["statusCode"] == 503


HOOK_PLUGIN = types.ModuleType("inbound_hook_test")
HOOK_PLUGIN.seen = []


@hookimpl
def _inbound_mail(mail):
    HOOK_PLUGIN.seen.append(mail)
    if HOOK_PLUGIN.fail:
        raise RuntimeError("ticket system down")


HOOK_PLUGIN.inbound_mail = _inbound_mail


@pytest.fixture
def hook_plugin(monkeypatch):
    monkeypatch.setitem(sys.modules, "inbound_hook_test", HOOK_PLUGIN)
    monkeypatch.setitem(manager.BUILTIN_PLUGINS, "hooktest", "inbound_hook_test")
    HOOK_PLUGIN.seen, HOOK_PLUGIN.fail = [], False
    return HOOK_PLUGIN


def test_inbound_mail_hooks_get_the_stored_mail(s3, hook_plugin):
    body, content_type = parsed_mail()
    assert handle(request(body, content_type), "inbound,hooktest")["statusCode"] == 200
    [mail] = hook_plugin.seen
    assert (mail.bucket, mail.key, mail.body, mail.content_type, mail.signed) == \
        (BUCKET, keys(s3)[0], body, content_type, True)
    assert mail.received_at.isoformat() == "2026-01-02T03:04:05.678000+00:00"
    assert mail.form()["attachment1"] == ATTACHMENT


def test_a_failing_hook_is_a_503_after_the_mail_is_stored(s3, hook_plugin):
    hook_plugin.fail = True
    answer = handle(request(*raw_mail()), "inbound,hooktest")
    assert answer["statusCode"] == 503
    assert len(keys(s3)) == 1  # stored; SendGrid's retry stores it again and calls the hooks again


def test_the_example_hook_logs_a_summary_without_addresses_or_content(s3, caplog):
    body, content_type = parsed_mail()
    with caplog.at_level(logging.INFO, logger="plugins.inbound_log"):
        assert handle(request(body, content_type), "inbound,inbound_log")["statusCode"] == 200
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "plugins.inbound_log"]
    assert line["key"] == keys(s3)[0]
    assert (line["recipients"], line["attachments"], line["raw"], line["spf"]) == (1, 1, False, "pass")
    assert "attachment1" in line["fields"]
    assert not re.search(r"@|問い合わせ|Hello", json.dumps(line, ensure_ascii=False))
