"""Run plugins' ``infrastructure`` hooks under Pulumi mocks (no CLI, no cloud).

``run_infrastructure(names, config)`` builds the plugins, their checked
settings (``stack_settings``), a parent component and an
``infra.plugins.StackContext``, calls the hook and returns what it made:
the resources (type, name, inputs) and the context's env, IAM statements and
outputs with every ``Output`` resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi

from handlers import manager

ACCOUNT = "123456789012"
REGION = "us-east-1"
KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outputs = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        outputs.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{args.name}")
        outputs.setdefault("name", args.name)
        return [f"{args.name}-id", outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@dataclass
class Made:
    resources: list  # MockResourceArgs of the plugins' resources (not the parent)
    env: dict
    statements: dict
    outputs: dict

    def of_type(self, typ: str) -> list:
        return [r for r in self.resources if r.typ == typ]


def run_infrastructure(names, config: dict | None = None, kms_key_arn: str | None = KMS_KEY_ARN) -> Made:
    from infra.config import plugin_settings
    from infra.plugins import StackContext

    plugins = manager.build(names)
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="sendgrid-events", stack="test", preview=False)
    pulumi.runtime.set_all_config({f"sendgrid-events:{k}": v if isinstance(v, str) else json.dumps(v)
                                   for k, v in (config or {}).items()})
    captured = {}

    @pulumi.runtime.test
    def program():
        parent = pulumi.ComponentResource("test:index:Stack", "stack")
        config = pulumi.Config("sendgrid-events")
        stack = StackContext(config=config, prefix="sendgrid-events-test", parent=parent,
                             kms_key_arn=kms_key_arn, tables={}, settings=plugin_settings(config, plugins))
        plugins.hook.infrastructure(stack=stack)
        return pulumi.Output.from_input({"env": stack.env, "statements": stack.statements,
                                         "outputs": stack.outputs}).apply(captured.update)

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({})
    resources = [r for r in recorder.resources if r.typ != "test:index:Stack"]
    return Made(resources, captured["env"], captured["statements"], captured["outputs"])
