"""The REST API's HTTP front: what API Gateway (Lambda proxy) does, on 127.0.0.1.

It serves the routes the program applied (``devstack.applied.routes``):
``/<stage>/<path>`` with the method, proxied to the integration's function.
Each request becomes a REST proxy event (raw body, headers,
``isBase64Encoded``: base64 for the API's binary media types and for bodies
that are not UTF-8); the function's answer becomes the HTTP response. Like API
Gateway: an unknown path or method gets 403 ``Missing Authentication Token``;
a route whose function does not permit API Gateway to invoke it gets 500; a
function that raises or answers something that is not a proxy response gets
502; one that outlives its timeout, 504.

A route with an AWS service integration (``ingest: queue``: SQS
``SendMessage``) is served from what API Gateway holds of it
(``devstack.applied.ServiceIntegration``): the request template of the
request's content type (none and passthrough ``NEVER``: 415) is rendered
(``devstack.vtl``), sent to the service the URI names, signed with the
credentials of the integration's role (``Services``), and the service's
status picks the integration response (its selection pattern, else the
default), whose template is the answer.

``fail_next`` makes the front answer a status of its choice (a 500 by
default) before or after running the function: how tests make SendGrid post
a batch again.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from devstack import vtl
from devstack.http import LoopbackServer, post, reply
from devstack.lambdas import FunctionTimeout

log = logging.getLogger(__name__)

STAGE = "v1"
INTERNAL_ERROR = b'{"message": "Internal server error"}'
DEFAULT_CONTENT_TYPE = "application/json"  # API Gateway's, for a request without one


@dataclass(frozen=True)
class Failure:
    status: int = 500
    after_function: bool = False


def is_binary(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    """Whether API Gateway hands a body of ``content_type`` to the function base64-encoded."""
    media = (content_type or "").split(";")[0].strip().lower()
    return any(fnmatch.fnmatchcase(media, t.lower()) for t in binary_media_types)


def proxy_event(method: str, path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str,
                stage: str = STAGE, binary: bool = False) -> dict:
    """An API Gateway REST proxy event; the body as text when it is UTF-8 (and not ``binary``), else base64."""
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    try:
        if binary:
            raise UnicodeDecodeError("utf-8", b"", 0, 0, "a binary media type")
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


@dataclass
class Services:
    """How the front reaches the local AWS as an integration's role: the endpoint, the region, and each
    role ARN's credentials (``devstack.applied.credentials_for``)."""

    endpoint_url: str
    region: str
    credentials: dict[str, object]

    def call(self, integration, body: bytes, content_type: str) -> tuple[int, bytes]:
        """The integration request, signed as the role: (the service's status, its answer)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        _arn, _partition, _apigateway, _region, service, action = integration.uri.split(":", 5)
        kind, _, path = action.partition("/")
        if kind != "path":
            raise ValueError(f"the local front serves path URIs only, not {integration.uri}")
        role = self.credentials[integration.credentials]
        request = AWSRequest("POST", f"{self.endpoint_url}/{path}", data=body,
                             headers={"Content-Type": content_type, **integration.request_headers})
        SigV4Auth(Credentials(role.access_key_id, role.secret_access_key), service, self.region).add_auth(request)
        return post(request.url, body, dict(request.headers), timeout=30)


def integration_response(responses, status: int):
    """The integration response whose selection pattern matches the service's status, else the default."""
    for pattern, answer, templates in responses:
        if pattern is not None and re.fullmatch(pattern, str(status)):
            return answer, templates
    for pattern, answer, templates in responses:
        if pattern is None:
            return answer, templates
    raise ValueError(f"no integration response for the service's status {status}")


class ApiFront(LoopbackServer):
    """The HTTP front; ``base_url`` is known once started, the routes once ``serve`` is called."""

    thread_name = "api-front"

    def __init__(self):
        self.routes: dict[tuple[str, str], tuple] = {}
        self.services: Services | None = None
        self.answers: list[int] = []
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()

    def serve(self, routes, functions, services: Services | None = None) -> None:
        """``routes`` (``devstack.applied.Route``), each to ``functions[route.function]`` or its service."""
        self.services = services
        self.routes = {(r.method, f"/{r.stage}{r.path}"): (r, functions.get(r.function)) for r in routes}

    def url(self, route) -> str:
        return f"{self.base_url}/{route.stage}{route.path}"

    def fail_next(self, times: int = 1, status: int = 500, after_function: bool = False) -> None:
        """Answer ``status`` to the next ``times`` requests (after running the function, if asked)."""
        with self._lock:
            self._failures.extend([Failure(status, after_function)] * times)

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length") or 0))
        path = http.path.split("?")[0]
        found = self.routes.get((http.command, path))
        if found is None:
            return self._reply(http, 403, {}, json.dumps({"message": "Missing Authentication Token"}).encode())
        route, function = found
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure and not failure.after_function:
            return self._reply(http, failure.status, {}, INTERNAL_ERROR)
        if route.service is not None:
            status, headers, data = self._service(route.service, http, body)
        elif not route.permitted:
            log.error("API Gateway may not invoke %s (no lambda:InvokeFunction permission for this route)",
                      route.function)
            return self._reply(http, 500, {}, INTERNAL_ERROR)
        else:
            status, headers, data = self._function(route, function, http, path, body)
        if failure:
            status, headers, data = failure.status, {}, INTERNAL_ERROR
        self._reply(http, status, headers, data)

    def _function(self, route, function, http: BaseHTTPRequestHandler, path: str,
                  body: bytes) -> tuple[int, dict, bytes]:
        """A Lambda proxy integration: the request as a proxy event to ``function``, its answer as HTTP."""
        event = proxy_event(http.command, path, list(http.headers.items()), body, http.client_address[0],
                            route.stage, is_binary(http.headers.get("Content-Type"), route.binary_media_types))
        try:
            return http_answer(function.invoke(event))
        except FunctionTimeout as exc:
            log.error("%s", exc)
            return 504, {}, b'{"message": "Endpoint request timed out"}'
        except Exception as exc:
            log.error("%s failed: %s", route.function, exc)
            return 502, {}, INTERNAL_ERROR

    def _service(self, integration, http: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, bytes]:
        """An AWS service integration, as API Gateway runs it (see the module docstring)."""
        media = (http.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE).split(";")[0].strip().lower()
        template = integration.request_templates.get(media)
        if template is None and integration.passthrough != "WHEN_NO_MATCH":
            return 415, {}, json.dumps({"message": "Unsupported Media Type"}).encode()
        context = {"requestTimeEpoch": int(time.time() * 1000), "requestId": str(uuid.uuid4())}
        text = body.decode("utf-8", errors="replace")
        request = body if template is None else vtl.render(
            template, vtl.Scope(text, dict(http.headers.items()), context)).encode()
        try:
            status, answer = self.services.call(integration, request, media)
        except Exception as exc:
            log.error("the integration request failed: %s", exc)
            return 500, {}, INTERNAL_ERROR
        status, templates = integration_response(integration.responses, status)
        template = templates.get(DEFAULT_CONTENT_TYPE) or next(iter(templates.values()), None)
        if template is None:
            return status, {}, answer
        scope = vtl.Scope(answer.decode("utf-8", errors="replace"), {}, context)
        data = vtl.render(template, scope).encode()
        return scope.status or status, {}, data

    def _reply(self, http: BaseHTTPRequestHandler, status: int, headers: dict, data: bytes) -> None:
        with self._lock:
            self.answers.append(status)
        reply(http, status, headers, data)
