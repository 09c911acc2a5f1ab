"""The plugin test kit: the program offline and the local stack, for this repository's tests and plugins'.

A plugin package tests itself with two things, both here:

- ``run_program(config)``: the real Pulumi program (``__main__.py``) run
  offline with a stack config (keys without namespace, values as ``pulumi
  config set`` sets them), every resource answered by ``infra.preview.Engine``:
  what ``make preview`` runs. The ``Program`` it returns finds a function,
  its environment and IAM statements, a table, the outputs.
- ``local_stack`` (a pytest fixture) / ``running(...)``: the local stack, the
  program applied to moto with IAM enforced (``devstack.testing``).

``examples/sendgrid-events-jsonlog/tests/`` uses both.
"""

from __future__ import annotations

import json

from devstack.testing import local_stack, running  # noqa: F401  (the kit's local stack, for its users)
from infra import offline, preview

MAIN = offline.MAIN
PROJECT = offline.PROJECT
STACK = "test"
API_KEY = "SG.test-api-key.never-in-plaintext-anywhere"
# A real P-256 public key, base64 DER (SendGrid's "Verification Key" format).
PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgQBBYiauTIjeRmAY+ARo3NtShOz7kj1tB7DUobn1YvBNtPIBWaRT6"
              "+CqMzD5JEewQcdND21Hh7DGQbzsG9SnGA==")
OPERATIONS = "$sendgrid-events:infra:Operations::"  # in the URN of a resource under infra.operations.Operations
BASE_CONFIG = {"sendgridApiKey": API_KEY, "webhookPublicKeys": [PUBLIC_KEY]}


class Program(offline.Result):
    """An offline run's result, with lookups for the tests."""

    def one(self, typ: str, name: str) -> offline.Resource:
        found = [r for r in self.of_type(typ) if r.name == name]
        assert len(found) == 1, f"{typ} {name!r}: {[r.name for r in self.of_type(typ)]}"
        return found[0]

    def function(self, fn: str) -> offline.Resource:
        return self.one("aws:lambda/function:Function", f"{PROJECT}-{STACK}-{fn}")

    def environment(self, fn: str) -> dict:
        return (self.function(fn).inputs.get("environment") or {}).get("variables", {})

    def policies(self, fn: str) -> list[dict]:
        """Every statement of every inline policy on ``fn``'s role."""
        role = f"{PROJECT}-{STACK}-{fn}-role-id"
        return [s for r in self.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role
                for s in json.loads(r.inputs["policy"])["Statement"]]

    def besides_operations(self, typ: str) -> list[offline.Resource]:
        """The resources of ``typ`` but the operations component's (its alarm topic, e-mail subscriptions)."""
        return [r for r in self.of_type(typ) if OPERATIONS not in (r.parent or "")]

    def table(self, logical: str) -> offline.Resource:
        return self.one("aws:dynamodb/table:Table", logical.replace("_", "-"))


def config_values(config: dict) -> dict[str, str]:
    """``key`` -> value as the CLI hands it: ``sendgrid-events:key`` -> the string, or the list as JSON."""
    return {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items() if v is not None}


def run_program(config: dict | None = None, engine: preview.Engine | None = None) -> Program:
    """Run ``__main__.py`` with ``BASE_CONFIG`` updated by ``config`` (a value None removes the key)."""
    result = offline.run(config_values({**BASE_CONFIG, **(config or {})}), engine or preview.Engine(), stack=STACK,
                         secret_keys=(f"{PROJECT}:sendgridApiKey",))
    return Program(result.resources, result.outputs)
