"""Lambda's API for the local stack: Invoke runs the local function, everything else is moto's.

moto keeps the functions the program made but does not run their code; the
local stack runs them (``devstack.lambdas``). This server sits in front of
moto for the Lambda API (the state file's ``aws_env`` names it as
``AWS_ENDPOINT_URL_LAMBDA``, which boto3 and the aws cli read, so ``devstack
env`` points them here):

- ``POST /2015-03-31/functions/<name>/invocations`` (Invoke,
  RequestResponse) runs that function with the payload and answers as Lambda
  does: 200 and the result; a handler that raised: 200 with
  ``X-Amz-Function-Error: Unhandled`` and ``errorMessage``/``errorType``; a
  timeout: the same, ``Task timed out``; an unknown function: 404
  ``ResourceNotFoundException``.
- any other request goes to moto unchanged (signed for this host, which moto
  checks as it would its own), so ``GetFunctionConfiguration`` and the rest
  answer as before, under IAM.

Locally, anyone who can reach 127.0.0.1 may invoke (no IAM check on Invoke).
"""

from __future__ import annotations

from http.client import HTTPConnection
import json
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler

from devstack.http import LoopbackServer, reply
from devstack.lambdas import FunctionError, FunctionTimeout

INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class LambdaApi(LoopbackServer):
    thread_name = "lambda-api"

    def __init__(self, moto_url: str):
        self.moto = urllib.parse.urlsplit(moto_url)
        self.functions: dict = {}

    def serve(self, functions) -> None:
        """``functions``: Lambda's function name -> ``devstack.lambdas.Function``."""
        self.functions = dict(functions)

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length") or 0))
        found = INVOKE.match(urllib.parse.urlsplit(http.path).path)
        if found and http.command == "POST":
            return reply(http, *self._invoke(urllib.parse.unquote(found["name"]), body))
        connection = HTTPConnection(self.moto.hostname, self.moto.port, timeout=60)
        try:
            connection.request(http.command, http.path, body=body, headers=dict(http.headers.items()))
            answer = connection.getresponse()
            reply(http, answer.status, dict(answer.getheaders()), answer.read())
        finally:
            connection.close()

    def _invoke(self, name: str, payload: bytes) -> tuple[int, dict, bytes]:
        function = self.functions.get(name.rsplit(":", 1)[-1])  # a name or an ARN
        if function is None:
            return 404, {"x-amzn-ErrorType": "ResourceNotFoundException"}, json.dumps(
                {"Type": "User", "message": f"Function not found: {name}"}).encode()
        try:
            result = function.invoke(json.loads(payload or b"{}"))
        except FunctionTimeout as exc:
            return self._failed("TimeoutError", f"Task timed out: {exc}")
        except FunctionError as exc:
            return self._failed(exc.type, str(exc))
        return 200, {}, json.dumps(result).encode()

    @staticmethod
    def _failed(kind: str, message: str) -> tuple[int, dict, bytes]:
        return 200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(
            {"errorType": kind, "errorMessage": message}).encode()
