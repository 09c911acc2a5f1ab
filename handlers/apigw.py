"""API Gateway (REST, Lambda proxy) for the functions behind it: the body, headers, answers and refusals.

Used by every function behind the REST API (the webhook, the inbound
receiver). A request the function will not take raises a ``Refused``
subclass, which carries its own status: ``refusal`` is the one place that
turns it into an answer and a log line.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Mapping


class Refused(Exception):
    """The request is not taken; ``status`` says how it is answered.

    The message is answered as is (it says what is wrong with the request),
    unless the class has an ``answer``: then that is answered and the message
    (the operator's: it may name a setting) only goes to the log.
    """

    status = 400
    answer: str | None = None


class BadRequest(Refused, ValueError):
    """The request is not what this function takes; answered 4xx, nothing written."""


class TooLarge(BadRequest):
    status = 413


def response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def refusal(what: str, exc: Refused, logger: logging.Logger) -> dict:
    """The answer to a refused request, logged (``what``: ``webhook``, ``inbound receiver``, ...)."""
    if exc.answer is None:
        logger.warning(json.dumps({"message": f"{what} request refused", "status": exc.status, "error": str(exc)}))
        return response(exc.status, {"error": str(exc)})
    logger.error(json.dumps({"message": f"{what} refused a request", "status": exc.status, "error": str(exc)}))
    return response(exc.status, {"error": exc.answer.format(what=what)})


def raw_body(event: dict, limit: int) -> bytes:
    """The request body exactly as received (API Gateway base64-encodes binary bodies), at most ``limit`` bytes."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadRequest("body is not text")
    if len(body) > 2 * limit:
        raise TooLarge(f"body is larger than {limit} bytes")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error):
            raise BadRequest("body is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("body is not UTF-8") from None
    if len(raw) > limit:
        raise TooLarge(f"body is larger than {limit} bytes")
    return raw


def header(headers: Mapping | None, name: str) -> str | None:
    """A header's value, whatever case the client (or API Gateway) gave its name."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None
