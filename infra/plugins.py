"""What a plugin's ``infrastructure`` hook receives: ``StackContext``.

The Pulumi program builds the shared pieces (KMS key, tables), then calls
every enabled plugin's ``infrastructure(stack)`` hook, then builds the
functions with the environment variables and IAM statements the plugins
added. A plugin creates its own resources with ``opts=stack.child_opts()``
so they sit under the stack's component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

FUNCTIONS = ("sender", "webhook")


@dataclass
class StackContext:
    config: pulumi.Config
    """The stack config (namespace ``sendgrid-events``)."""
    prefix: str
    """Prefix for physical resource names, e.g. ``sendgrid-events-dev``."""
    parent: pulumi.Resource
    """The component plugin resources are parented to."""
    kms_key_arn: pulumi.Input[str] | None
    """The customer-managed KMS key, or None when AWS-owned keys are used."""
    tables: dict[str, Any]
    """Logical table name -> ``aws.dynamodb.Table`` (every declared table)."""
    env: dict[str, dict[str, pulumi.Input[str]]] = field(default_factory=lambda: {f: {} for f in FUNCTIONS})
    statements: dict[str, list[dict]] = field(default_factory=lambda: {f: [] for f in FUNCTIONS})
    outputs: dict[str, pulumi.Input[Any]] = field(default_factory=dict)

    def child_opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, **kwargs)

    def add_env(self, function: str, name: str, value: pulumi.Input[str]) -> None:
        """Set an environment variable on ``function`` ("sender" or "webhook")."""
        self.env[function][name] = value

    def allow(self, function: str, actions: list[str], resources: list[pulumi.Input[str]]) -> None:
        """Add an IAM Allow statement to ``function``'s role (resources: ARNs, never "*")."""
        self.statements[function].append({"Effect": "Allow", "Action": list(actions), "Resource": list(resources)})

    def export(self, name: str, value: pulumi.Input[Any]) -> None:
        """A stack output."""
        self.outputs[name] = value
