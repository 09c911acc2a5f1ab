"""What a plugin's ``infrastructure`` hook receives: ``StackContext``.

Before any resource, ``infra.config.load`` calls every enabled plugin's
``stack_settings(config)`` hook, which reads and checks the plugin's own
config keys; its result is ``stack.settings[<plugin name>]`` here.

The Pulumi program builds the shared pieces (KMS key, tables), then calls
every enabled plugin's ``infrastructure(stack)`` hook, then builds the
functions with the environment variables and IAM statements the plugins
added. A plugin creates its own resources with ``opts=stack.child_opts()``
so they sit under the stack's component.

A plugin that needs a function of its own (e.g. inbound mail) declares it
with ``stack.add_function(name, handler)``; it runs the same package and
layer as the core's, gets its own role, and takes ``add_env``/``allow`` like
the others. ``stack.add_route(name, path_part)`` puts it behind a POST route
of the webhook's REST API (Lambda proxy); its URL becomes the secret output
``<name>Url``.

Environment variables a plugin sets are declared in its module as
``handlers.env.Var`` values (module-level), so a test can check that the
program sets exactly what the code reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi

FUNCTIONS = ("sender", "webhook")
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function the stack builds (its env and statements live in the context)."""

    name: str
    handler: str
    timeout: int = 30
    memory: int = 256
    description: str = ""


@dataclass(frozen=True)
class Route:
    """POST ``/<path_part>`` on the REST API, proxied to ``function``."""

    function: str
    path_part: pulumi.Input[str]


@dataclass
class StackContext:
    config: pulumi.Config
    """The stack config (namespace ``sendgrid-events``); read keys in ``stack_settings``, not here."""
    prefix: str
    """Prefix for physical resource names, e.g. ``sendgrid-events-dev``."""
    parent: pulumi.Resource
    """The component plugin resources are parented to."""
    kms_key_arn: pulumi.Input[str] | None
    """The customer-managed KMS key, or None when AWS-owned keys are used."""
    tables: dict[str, Any]
    """Logical table name -> ``aws.dynamodb.Table`` (every declared table)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Plugin name -> what its ``stack_settings`` hook returned (its keys, already checked)."""
    env: dict[str, dict[str, pulumi.Input[str]]] = field(default_factory=lambda: {f: {} for f in FUNCTIONS})
    statements: dict[str, list[dict]] = field(default_factory=lambda: {f: [] for f in FUNCTIONS})
    outputs: dict[str, pulumi.Input[Any]] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    """Functions added by plugins (the core's two are built regardless)."""
    routes: list[Route] = field(default_factory=list)
    sendgrid: Any = None
    """``infra.sendgrid.Access`` (API key and base URL) when the program manages SendGrid's settings
    (``manageSendgridWebhook``, the default); None when SendGrid is configured by hand."""
    route_url: Callable[[pulumi.Input[str]], pulumi.Output[str]] | None = None
    """A route's URL (secret) from its path, before the route exists (``add_route`` answers it)."""

    def child_opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, **kwargs)

    def _check(self, function: str) -> None:
        if function not in self.env:
            raise ValueError(f"unknown function {function!r}; functions: {', '.join(self.env)}")

    def add_env(self, function: str, name: str, value: pulumi.Input[str]) -> None:
        """Set an environment variable on ``function`` ("sender", "webhook" or an added one)."""
        self._check(function)
        self.env[function][name] = value

    def allow(self, function: str, actions: list[str], resources: list[pulumi.Input[str]]) -> None:
        """Add an IAM Allow statement to ``function``'s role (resources: ARNs, never "*")."""
        self._check(function)
        self.statements[function].append({"Effect": "Allow", "Action": list(actions), "Resource": list(resources)})

    def allow_key(self, function: str, actions: tuple[str, ...] = KMS_ACTIONS) -> None:
        """Let ``function`` use the stack's customer-managed KMS key (no-op with AWS-owned keys)."""
        if self.kms_key_arn is not None:
            self.allow(function, list(actions), [self.kms_key_arn])

    def export(self, name: str, value: pulumi.Input[Any]) -> None:
        """A stack output."""
        self.outputs[name] = value

    def add_function(self, name: str, handler: str, timeout: int = 30, memory: int = 256,
                     description: str = "") -> None:
        """Declare another Lambda function (``handler``: ``module.function`` in the package)."""
        if name in self.env:
            raise ValueError(f"function {name!r} exists already")
        self.functions[name] = FunctionSpec(name, handler, timeout, memory, description)
        self.env[name] = {}
        self.statements[name] = []

    def add_route(self, function: str, path_part: pulumi.Input[str]) -> pulumi.Output[str] | None:
        """Expose ``function`` as POST ``/<path_part>`` on the REST API (stage ``v1``); its URL (secret)."""
        self._check(function)
        self.routes.append(Route(function, path_part))
        return self.route_url(path_part) if self.route_url else None
