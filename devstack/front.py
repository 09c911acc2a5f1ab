"""The webhook's HTTP front: what API Gateway (REST, Lambda proxy) does, on 127.0.0.1.

Each POST to the webhook path becomes a REST proxy event (raw body, headers,
``isBase64Encoded``) for the webhook function; its answer becomes the HTTP
response. Like API Gateway: another path or method gets 403 ``Missing
Authentication Token``, and a function that raises or answers something that
is not a proxy response gets 502 ``Internal server error``.

``fail_next`` makes the front answer a status of its choice (a 500 by
default) before or after running the function: how tests make SendGrid post
a batch again.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from devstack.http import LoopbackServer
from devstack.lambdas import Function

log = logging.getLogger(__name__)

STAGE = "v1"


@dataclass(frozen=True)
class Failure:
    status: int = 500
    after_function: bool = False


def proxy_event(method: str, path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str,
                stage: str = STAGE) -> dict:
    """An API Gateway REST proxy event; the body as text when it is UTF-8, base64 otherwise."""
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    resource = path.removeprefix(f"/{stage}")
    return {
        "resource": resource,
        "path": resource,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "path": path,
            "httpMethod": method,
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": dict(headers).get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def http_answer(result) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy response -> (status, headers, body); ValueError when malformed."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise ValueError(f"not a proxy response: {result!r:.200}")
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("proxy response body is not a string")
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(str(v) for v in values)
    return result["statusCode"], headers, data


class WebhookFront(LoopbackServer):
    """The HTTP front of ``function``; ``url`` is the webhook URL once started."""

    def __init__(self, function: Function, stage: str = STAGE):
        self.function = function
        self.path = f"/{stage}/{secrets.token_urlsafe(24)}"
        self.stage = stage
        self.answers: list[int] = []
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()

    thread_name = "webhook-front"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def fail_next(self, times: int = 1, status: int = 500, after_function: bool = False) -> None:
        """Answer ``status`` to the next ``times`` requests (after running the function, if asked)."""
        with self._lock:
            self._failures.extend([Failure(status, after_function)] * times)

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length") or 0))
        if http.command != "POST" or http.path.split("?")[0] != self.path:
            return self._reply(http, 403, {}, json.dumps({"message": "Missing Authentication Token"}).encode())
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure and not failure.after_function:
            return self._reply(http, failure.status, {}, b'{"message": "Internal server error"}')
        event = proxy_event("POST", http.path.split("?")[0], list(http.headers.items()), body,
                            http.client_address[0], self.stage)
        try:
            status, headers, data = http_answer(self.function.invoke(event))
        except Exception:
            log.exception("webhook function failed")
            status, headers, data = 502, {}, b'{"message": "Internal server error"}'
        if failure:
            status, headers, data = failure.status, {}, b'{"message": "Internal server error"}'
        self._reply(http, status, headers, data)

    def _reply(self, http: BaseHTTPRequestHandler, status: int, headers: dict, data: bytes) -> None:
        with self._lock:
            self.answers.append(status)
        http.send_response(status)
        headers = {"Content-Type": "application/json", **headers}
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                http.send_header(name, value)
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)
