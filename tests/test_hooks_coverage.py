"""Every hook (the core's, and those plugins offer): implemented by a built-in plugin, exercised here.

Each is documented in docs/plugins.md (tests/test_docs.py).
"""


import boto3
import pytest

from handlers import manager, sender
from infra import deploy
from handlers.tables import CORE_TABLES
from tests.infra_program import run_program
from tests.support import put_item, seed_item, stream_record

REGISTRATION = {"register_event_types", "register_sinks", "register_tables"}
ALL = sorted(manager.BUILTIN_PLUGINS)


def managers() -> tuple:
    """The runtime plugin manager with every built-in, and their deploy halves' (``infra.deploy``)."""
    runtime = manager.build(ALL)
    return runtime.pm, deploy.build(runtime)


# The core's, those plugins offer (inbound_mail), and the deploy side's (stack_settings, infrastructure).
HOOKS = sorted(name for pm in managers() for name in manager.hook_specs(pm))


def test_the_hook_list_is_what_the_specs_declare():
    assert REGISTRATION <= set(HOOKS) and {"inbound_mail", "stack_settings", "infrastructure"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_is_implemented_by_a_builtin_plugin(hook):
    [caller] = [getattr(pm.hook, hook) for pm in managers() if hook in manager.hook_specs(pm)]
    assert caller.get_hookimpls(), f"no built-in plugin implements {hook}"


@pytest.fixture
def called(monkeypatch):
    """Names of the hooks called on any plugin manager built during the test."""
    names = set()
    build, build_deploy = manager.build, deploy.build

    def monitor(pm):
        pm.add_hookcall_monitoring(lambda hook_name, impls, kw: names.add(hook_name),
                                   lambda outcome, hook_name, impls, kw: None)

    def monitored(*args, **kwargs):
        plugins = build(*args, **kwargs)
        monitor(plugins.pm)
        return plugins

    def monitored_deploy(*args, **kwargs):
        pm = build_deploy(*args, **kwargs)
        monitor(pm)
        return pm

    monkeypatch.setattr(manager, "build", monitored)
    monkeypatch.setattr(deploy, "build", monitored_deploy)
    return names


def test_registration_hooks_register_with_every_builtin_enabled(stack):
    plugins = stack(ALL)  # the registration hooks are called impl by impl, while building
    for hook, registrants in (("register_event_types", {t.plugin for t in plugins.event_types.values()}),
                              ("register_sinks", {s.plugin for s in plugins.sinks})):
        assert {i.plugin_name for i in getattr(plugins.hook, hook).get_hookimpls()} == registrants
    assert {"bounce", "event_history"} <= set(plugins.tables) - {t.name for t in CORE_TABLES}


def send_a_mail(stack, monkeypatch):
    plugins = stack(ALL)
    item = seed_item("hooks", [("someone@example.com", "Someone")])
    put_item("TABLE_MAIL_SENDER", item)
    assert sender.handle([stream_record(item)], plugins) == {"batchItemFailures": []}


def build_the_stack(stack, monkeypatch):
    assert run_program({"plugins": ALL}).resources  # the real __main__.py, mocked


def receive_a_mail(stack, monkeypatch):
    from plugins import inbound_handler
    from tests.test_inbound import raw_mail, request

    stack(ALL)
    boto3.client("s3").create_bucket(Bucket="hooks-inbound")
    monkeypatch.setenv("INBOUND_BUCKET", "hooks-inbound")
    monkeypatch.setenv("INBOUND_ALLOW_UNSIGNED_INSECURE", "true")
    monkeypatch.delenv("INBOUND_PUBLIC_KEYS", raising=False)
    inbound_handler.client.cache_clear()
    answer = inbound_handler.handle(request(*raw_mail(), signed=False), plugins=lambda: manager.build(ALL))
    assert answer["statusCode"] == 200


# Each non-registration hook -> a scenario (every built-in enabled) that must call it.
# A new hook needs a line here, a built-in implementing it, and a section in docs/plugins.md.
EXERCISE = {
    "before_send": send_a_mail,
    "after_send": send_a_mail,
    "stack_settings": build_the_stack,
    "infrastructure": build_the_stack,
    "inbound_mail": receive_a_mail,
}


def test_every_hook_has_a_scenario_exercising_it():
    assert set(EXERCISE) == set(HOOKS) - REGISTRATION


@pytest.mark.parametrize("hook", sorted(EXERCISE))
def test_each_hook_is_called_in_its_scenario(hook, stack, sendgrid, called, monkeypatch):
    EXERCISE[hook](stack, monkeypatch)
    assert hook in called

