"""Run the real ``__main__.py`` under Pulumi mocks with an injected stack config.

``run_program(config)`` resets the Pulumi runtime, runs the program the way
``pulumi up`` would (no CLI, no cloud) and returns every resource it
registered (type, name, resolved inputs) and its exports (still ``Output``s,
so a test can ask whether they are secret).
"""

from __future__ import annotations

import json
import runpy
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

MAIN = Path(__file__).resolve().parent.parent / "__main__.py"
PROJECT = "sendgrid-events"
STACK = "test"
ACCOUNT = "123456789012"
REGION = "us-east-1"
API_KEY = "SG.test-api-key.never-in-plaintext-anywhere"
# A real P-256 public key, base64 DER (SendGrid's "Verification Key" format).
PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgQBBYiauTIjeRmAY+ARo3NtShOz7kj1tB7DUobn1YvBNtPIBWaRT6"
              "+CqMzD5JEewQcdND21Hh7DGQbzsG9SnGA==")
BASE_CONFIG = {"sendgridApiKey": API_KEY, "webhookPublicKeys": [PUBLIC_KEY]}


class Recorder(pulumi.runtime.Mocks):
    """Answers every resource with its inputs plus the outputs AWS would compute."""

    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []  # each with ``.state``, its outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        state = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        kind = args.typ.split(":")[-1].lower()
        arn = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{kind}/{args.name}"
        state.setdefault("arn", arn)
        state.setdefault("name", args.name)
        if args.typ == "aws:dynamodb/table:Table" and args.inputs.get("streamEnabled"):
            state["streamArn"] = f"{arn}/stream/2026-01-01T00:00:00.000"
        elif args.typ == "aws:lambda/function:Function":
            state["invokeArn"] = f"arn:aws:apigateway:{REGION}:lambda:path/functions/{arn}/invocations"
        elif args.typ == "aws:apigateway/restApi:RestApi":
            state.update(rootResourceId="root-id", executionArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:api-id")
        elif args.typ == "aws:apigateway/stage:Stage":
            state["invokeUrl"] = f"https://api-id.execute-api.{REGION}.amazonaws.com/{args.inputs['stageName']}"
        elif args.typ == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{args.name}"
        elif args.typ == "aws:kms/key:Key":
            state["keyId"] = "key-id"
        elif args.typ == "random:index/randomString:RandomString":
            state["result"] = ("r4nd0m" * 20)[: int(args.inputs["length"])]
        elif args.typ == "aws:lambda/layerVersion:LayerVersion":
            state["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{args.inputs['layerName']}:1"
        args.state = state
        return [f"{args.name}-id", state]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@dataclass
class Program:
    resources: list
    exports: dict

    def of_type(self, typ: str) -> list:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str):
        found = [r for r in self.of_type(typ) if r.name == name]
        assert len(found) == 1, f"{typ} {name!r}: {[r.name for r in self.of_type(typ)]}"
        return found[0]

    def function(self, fn: str):
        return self.one("aws:lambda/function:Function", f"{PROJECT}-{STACK}-{fn}")

    def environment(self, fn: str) -> dict:
        return (self.function(fn).inputs.get("environment") or {}).get("variables", {})

    def policies(self, fn: str) -> list[dict]:
        """Every statement of every inline policy on ``fn``'s role."""
        role = f"{PROJECT}-{STACK}-{fn}-role-id"
        return [s for r in self.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role
                for s in json.loads(r.inputs["policy"])["Statement"]]

    def table(self, logical: str):
        return self.one("aws:dynamodb/table:Table", logical.replace("_", "-"))

    def resolved_exports(self) -> dict:
        return {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in self.exports.items()}

    def secret(self, name: str) -> bool:
        return _sync_await(pulumi.Output.from_input(self.exports[name]).is_secret())


def run_program(config: dict | None = None, monkeypatch=None, recorder: Recorder | None = None) -> Program:
    """Run ``__main__.py`` with ``BASE_CONFIG`` updated by ``config`` (a value None removes the key)."""
    merged = {**BASE_CONFIG, **(config or {})}
    values = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v)
              for k, v in merged.items() if v is not None}
    recorder = recorder or Recorder()
    exports = {}
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(values, secret_keys=[f"{PROJECT}:sendgridApiKey"])
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack=STACK, preview=False)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    monkeypatch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(MAIN), run_name="__main__")))
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])
    return Program(recorder.resources, exports)
