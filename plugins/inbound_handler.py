"""The inbound function: one SendGrid Inbound Parse POST (API Gateway proxy) -> one S3 object.

A request goes through: its size and body (API Gateway base64-encodes a
multipart body; ``handlers.apigw.raw_body`` decodes it), its signature
(``handlers.signature``, with the ``INBOUND_*`` settings), its form (parsed
and checked before anything is stored: a post that is not SendGrid's form is
a 400, never stored, so no hook fails on it and no retry stores it again),
then S3: the body
exactly as received, under ``<YYYY>/<MM>/<DD>/<HHMMSS>.<mmm>Z-<request id>``
(the request's time, UTC, and API Gateway's request id), with metadata
``form-content-type`` (the request's Content-Type: the form's boundary) and
``signed``. Then the
enabled plugins' ``inbound_mail`` hook. What it answers (SendGrid posts again
after a 5xx, for up to 3 days, and drops the mail after a 4xx):

- 200 ``{"stored": key}``: the object is stored and every hook returned.
- 400 empty or malformed body (not a multipart form, ``attachments`` not a
  count, ``charsets`` not an object of names), 413 over ``MAX_BODY_BYTES``,
  403 not signed by a configured key: nothing stored.
- 503: storing failed, a hook raised, or the settings are wrong: the retry is
  stored anew (so a hook failure leaves two objects of one mail).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP

from handlers import aws, metrics, signature
from handlers.manager import enabled_plugins
from handlers.apigw import BadRequest, Refused, header, raw_body, refusal, response
from plugins.inbound import (INBOUND_ALLOW_UNSIGNED_INSECURE, INBOUND_BUCKET, INBOUND_MAX_AGE_SECONDS,
                             INBOUND_PUBLIC_KEYS)

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

# Lambda takes at most 6 MB of request event, and API Gateway base64-encodes the body (4/3).
MAX_BODY_BYTES = 4 * 1024 * 1024
_NOT_ID = re.compile(r"[^A-Za-z0-9-]")
_CONTENT_TYPE = re.compile(r"^[\x20-\x7e]{1,1024}$")
# The request's Content-Type (the form's boundary) goes in the metadata: moto's server (the local
# stack) parses a PUT whose Content-Type is multipart/form-data as a form and stores something else.
OBJECT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredMail:
    """What ``inbound_mail`` hooks receive: one Inbound Parse request, as stored."""

    bucket: str
    key: str
    body: bytes
    content_type: str
    received_at: datetime
    signed: bool
    parsed: dict = field(default=None, compare=False, repr=False)

    def form(self) -> dict[str, str | bytes]:
        """The multipart form SendGrid posted: text fields as ``str`` (in the charsets its ``charsets``
        field names), uploaded files (attachments) as ``bytes``. Raises ValueError when it is not one
        (never for a mail the function stored: it checked the form first)."""
        return dict(self.parsed) if self.parsed is not None else parse_form(self.body, self.content_type)


def parse_form(body: bytes, content_type: str) -> dict[str, str | bytes]:
    """SendGrid's form, checked: multipart with named fields, ``charsets`` a JSON object of names,
    ``attachments`` a count. Raises ValueError saying which (never quoting a value)."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise ValueError("not a multipart form")
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is not None:
            parts[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    if not parts:
        raise ValueError("a form without fields")
    charsets = _charsets(parts["charsets"][1]) if "charsets" in parts else {}
    form = {}
    for name, (filename, data) in parts.items():
        if filename is not None:
            form[name] = data
            continue
        try:
            form[name] = data.decode(charsets.get(name) or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            form[name] = data.decode("utf-8", errors="replace")
    if "attachments" in form and not _is_count(form["attachments"]):
        raise ValueError("'attachments' is not a count")
    return form


def _charsets(data: bytes) -> dict[str, str]:
    try:
        charsets = json.loads(data)
    except ValueError:
        charsets = None
    if not (isinstance(charsets, dict) and all(isinstance(v, str) for v in charsets.values())):
        raise ValueError("'charsets' is not a JSON object of charset names")
    return charsets


def _is_count(value: str | bytes) -> bool:
    value = value.strip()
    return value.isascii() and value.isdigit() and len(value) <= 9


@functools.cache
def client():
    return aws.client("s3")


def settings() -> signature.Settings:
    return signature.settings(INBOUND_PUBLIC_KEYS, INBOUND_MAX_AGE_SECONDS, INBOUND_ALLOW_UNSIGNED_INSECURE)


def object_key(event: dict, context) -> tuple[str, datetime]:
    """``<YYYY>/<MM>/<DD>/<HHMMSS>.<mmm>Z-<request id>`` from the request's time (UTC) and id."""
    request = event.get("requestContext") or {}
    epoch_ms = request.get("requestTimeEpoch")
    at = (datetime.fromtimestamp(epoch_ms / 1000, timezone.utc) if isinstance(epoch_ms, (int, float))
          else datetime.now(timezone.utc))
    request_id = (_NOT_ID.sub("", str(request.get("requestId") or ""))[:64]
                  or _NOT_ID.sub("", str(getattr(context, "aws_request_id", "") or ""))[:64] or str(uuid.uuid4()))
    return f"{at:%Y/%m/%d/%H%M%S}.{at.microsecond // 1000:03d}Z-{request_id}", at


def _failed(what: str, exc: Exception, **extra) -> dict:
    log.error(json.dumps({"message": f"inbound mail not {what}", "status": 503, "error": type(exc).__name__,
                          "detail": str(exc)[:300], **extra}))
    return response(503, {"error": f"the mail could not be {what}; it will be accepted on retry"})


def lambda_handler(event, context):
    return handle(event, context)


def handle(event: dict, context=None, plugins=enabled_plugins) -> dict:
    """Answer one API Gateway proxy event (``plugins`` gives the plugin set; tests pass their own), then
    write the invocation's metrics line (``handlers.metrics.INBOUND``)."""
    metrics.INBOUND.start()
    answer = _answer(event, context, plugins)
    status = answer["statusCode"]
    metrics.INBOUND.add("InboundStored" if status == 200 else "InboundFailed" if status >= 500 else "InboundRefused")
    metrics.INBOUND.note(status=status)
    metrics.INBOUND.emit()
    return answer


def _answer(event: dict, context, plugins) -> dict:
    try:
        body = raw_body(event, MAX_BODY_BYTES)
        if not body:
            raise BadRequest("body is empty")
        signed = signature.verify(body, event.get("headers"), settings(), time.time())
        content_type = header(event.get("headers"), "Content-Type") or ""
        if not _CONTENT_TYPE.match(content_type):
            content_type = "application/octet-stream"
        try:
            form = parse_form(body, content_type)
        except ValueError as exc:  # not stored: no hook can fail on it, no retry stores it again
            raise BadRequest(f"body is not an Inbound Parse form: {exc}") from None
    except Refused as exc:  # a bad request, a bad signature, a broken setting
        return refusal("inbound receiver", exc, log)

    key, at = object_key(event, context)
    try:
        bucket = os.environ[INBOUND_BUCKET.name]
        client().put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=OBJECT_CONTENT_TYPE,
            ContentMD5=base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
            Metadata={"form-content-type": content_type, "signed": "true" if signed else "false"})
    except Exception as exc:  # S3, a missing setting: not stored, SendGrid posts it again
        return _failed("stored", exc)
    mail = StoredMail(bucket, key, body, content_type, at, signed, form)
    try:
        plugins().hook.inbound_mail(mail=mail)
    except Exception as exc:
        return _failed("handled", exc, key=key)
    log.info(json.dumps({"message": "inbound mail stored", "key": key, "bytes": len(body), "signed": signed}))
    return response(200, {"stored": key})
