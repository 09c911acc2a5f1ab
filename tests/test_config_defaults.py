"""Pulumi.yaml's defaults are the program's own: one source of truth, checked.

The program reads the config twice: as a stack sets it (the program applies its
own defaults to what is unset) and as the CLI hands it (Pulumi.yaml's defaults
applied, ``infra.stackconfig``). The checked settings must be equal; every
built-in plugin is enabled, so every plugin's ``stack_settings`` hook reads its keys.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from handlers import manager
from infra import config, offline, stackconfig
from infra.configvalues import Value
from infra.stackconfig import SECRET_PLACEHOLDER
from tests.infra_program import PUBLIC_KEY

ROOT = Path(__file__).resolve().parent.parent
PROJECT = stackconfig.load_project(ROOT / stackconfig.PROJECT_FILE)
SECURE = {"secure": "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}


def as_stack_sets_it(values: dict) -> stackconfig.Stack:
    return stackconfig.Stack("test", {f"{config.NAMESPACE}:{k}": Value.from_yaml(v) for k, v in values.items()})


def settings(values: dict[str, str], secret_keys: tuple[str, ...]) -> config.Settings:
    """What the program makes of this config (the API key ``Output`` left out: it cannot be compared)."""
    with offline.runtime(values, offline.Engine(), stack="test", secret_keys=secret_keys):
        return dataclasses.replace(config.load(), api_key=None)


def without_defaults(stack: stackconfig.Stack) -> config.Settings:
    values = {key: value.plaintext(SECRET_PLACEHOLDER) for key, value in stack.config.items()}
    return settings(values, tuple(key for key, value in stack.config.items() if value.secure))


def with_defaults(stack: stackconfig.Stack, project: stackconfig.Project = PROJECT) -> config.Settings:
    handed = stackconfig.resolve(project, stack)
    assert set(handed.values) >= {f"{config.NAMESPACE}:{key}" for key in project.config}
    return settings(handed.values, handed.secret_keys)


@pytest.mark.parametrize("stack", [
    # every plugin's keys; the core's but webhookPublicKeys and plugins
    {"sendgridApiKey": SECURE, "webhookPublicKeys": [PUBLIC_KEY], "plugins": sorted(manager.BUILTIN_PLUGINS)},
    # webhookPublicKeys and plugins (allowUnsignedWebhooks set: a stack without a key needs it)
    {"sendgridApiKey": SECURE, "allowUnsignedWebhooks": True},
], ids=["all-plugins", "core-defaults"])
def test_pulumi_yaml_defaults_are_the_programs(stack):
    assert with_defaults(as_stack_sets_it(stack)) == without_defaults(as_stack_sets_it(stack))


def test_a_default_that_disagrees_is_caught():
    stack = as_stack_sets_it({"sendgridApiKey": SECURE, "webhookPublicKeys": [PUBLIC_KEY], "plugins": ["history"]})
    declared = PROJECT.config["historyTtlDays"]
    changed = dataclasses.replace(PROJECT, config={**PROJECT.config,
                                                   "historyTtlDays": dataclasses.replace(declared, default=401)})
    assert with_defaults(stack, changed) != without_defaults(stack)


def test_only_the_api_key_is_required_and_it_is_secret():
    assert [key for key, declared in PROJECT.config.items() if declared.default is None] == ["sendgridApiKey"]
    assert PROJECT.config["sendgridApiKey"].secret
    assert all(declared.type and declared.description for declared in PROJECT.config.values())


def test_the_table_prefix_names_project_and_stack_by_placeholders():
    values = {"sendgrid-events:sendgridApiKey": "x", "sendgrid-events:allowUnsignedWebhooks": "true"}
    assert settings(values, ()).table_prefix == "sendgrid-events-test-"
    values["sendgrid-events:tablePrefix"] = "{stack}.{project}_"
    assert settings(values, ()).table_prefix == "test.sendgrid-events_"
