"""The local AWS: moto in server mode on 127.0.0.1, and what plugins may add to it.

``LocalAWS`` runs the moto server (in a thread of this process) and builds
boto3 clients bound to it. ``Local`` is what a plugin's
``local_infrastructure(local)`` hook receives (see ``handlers/hookspecs.py``):
clients, resource names for this stack, and environment variables to add to a
function, the local twin of ``infra.plugins.StackContext``.
"""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass, field

import boto3
from moto.server import ThreadedMotoServer

from handlers.tables import SENDER, WEBHOOK

REGION = "us-east-1"
# moto accepts any credentials; these only keep boto3 from looking for real ones.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "devstack", "AWS_SECRET_ACCESS_KEY": "devstack"}
PREFIX = "sendgrid-events-local"
FUNCTIONS = (SENDER, WEBHOOK)


class LocalAWS:
    """moto on 127.0.0.1 (a free port), emptied when started."""

    def __init__(self, region: str = REGION):
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url: str | None = None

    def start(self) -> "LocalAWS":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per AWS request
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process: start from nothing (the documented reset API).
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"),
                    timeout=10).close()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use this endpoint with boto3 or the aws cli."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region, **CREDENTIALS}

    def client(self, service: str):
        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region,
        ).client(service, endpoint_url=self.endpoint_url)


@dataclass
class Local:
    """What ``local_infrastructure(local)`` receives."""

    aws: LocalAWS
    tables: dict[str, str]
    """Logical table name -> table name in this stack."""
    prefix: str = PREFIX
    env: dict[str, dict[str, str]] = field(default_factory=lambda: {f: {} for f in FUNCTIONS})
    public_key: str = ""
    """The SendGrid stand-in's verification key (base64 DER): what a local receiver of its posts verifies."""
    functions: dict[str, str] = field(default_factory=dict)
    """Functions plugins added (``add_function``): name -> handler."""
    routes: list[str] = field(default_factory=list)
    """Functions served over HTTP (``add_route``), each behind its own front."""

    @property
    def region(self) -> str:
        return self.aws.region

    def client(self, service: str):
        """A boto3 client for ``service`` bound to the local endpoint."""
        return self.aws.client(service)

    def name(self, suffix: str) -> str:
        """A resource name for this local stack, e.g. ``sendgrid-events-local-<suffix>``."""
        return f"{self.prefix}-{suffix}"

    def add_env(self, function: str, name: str, value: str) -> None:
        """Set an environment variable on ``function`` ("sender", "webhook" or an added one)."""
        if function not in self.env:
            raise ValueError(f"unknown function {function!r}; the functions are {', '.join(self.env)}")
        self.env[function][name] = str(value)

    def add_function(self, name: str, handler: str) -> None:
        """Run another function (``handler``: ``module.function``) in the local stack, as ``stack.add_function``."""
        if name in self.env:
            raise ValueError(f"function {name!r} exists already")
        self.functions[name] = handler
        self.env[name] = {}

    def add_route(self, function: str) -> None:
        """Serve ``function`` over HTTP: API Gateway's REST proxy at a random path (state ``urls``)."""
        if function not in self.functions:
            raise ValueError(f"{function!r} is not a function added with add_function")
        self.routes.append(function)
