"""Run plugins' ``infrastructure`` hooks offline (``infra.offline``, answered by ``infra.preview.Engine``).

``run_infrastructure(names, config)`` builds the plugins, their checked
settings (``stack_settings``), a parent component and an
``infra.plugins.StackContext``, calls the hook and returns what it made:
the resources (type, name, inputs) and the context's env, IAM statements and
outputs with every ``Output`` resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from handlers import manager
from infra import offline, preview
from tests.infra_program import config_values

KMS_KEY_ARN = f"arn:aws:kms:{preview.DEFAULT_REGION}:{preview.ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
PARENT_TYPE = "test:index:Stack"


@dataclass
class Made:
    resources: list[offline.Resource]  # the plugins' resources (not the parent)
    env: dict
    statements: dict
    outputs: dict

    def of_type(self, typ: str) -> list[offline.Resource]:
        return [r for r in self.resources if r.type == typ]


def run_infrastructure(names, config: dict | None = None, kms_key_arn: str | None = KMS_KEY_ARN) -> Made:
    from infra import deploy
    from infra.config import plugin_settings
    from infra.plugins import StackContext

    plugins = deploy.build(manager.build(names))  # their deploy halves

    def program():
        parent = pulumi.ComponentResource(PARENT_TYPE, "stack")
        config = pulumi.Config("sendgrid-events")
        stack = StackContext(prefix="sendgrid-events-test", parent=parent,
                             kms_key_arn=kms_key_arn, tables={}, settings=plugin_settings(config, plugins))
        plugins.hook.infrastructure(stack=stack)
        pulumi.export("made", {"env": stack.env, "statements": stack.statements, "outputs": stack.outputs})

    result = offline.run(config_values(config or {}), preview.Engine(), stack="test", main=program)
    return Made([r for r in result.resources if r.type != PARENT_TYPE], **result.resolved_outputs()["made"])
