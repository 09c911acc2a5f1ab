"""Every hook (the core's, and those plugins offer): implemented by a built-in plugin, exercised here.

Each is documented in docs/plugins.md (tests/test_docs.py).
"""


import boto3
import pytest

from handlers import manager, sender
from handlers.tables import CORE_TABLES
from tests.infra_program import run_program
from tests.support import put_item, seed_item, stream_record

REGISTRATION = {"register_event_types", "register_sinks", "register_tables"}
ALL = sorted(manager.BUILTIN_PLUGINS)
HOOKS = sorted(manager.hook_specs(manager.build(ALL)))  # the core's, and those plugins offer (inbound_mail)


def test_the_hook_list_is_what_the_specs_declare():
    assert REGISTRATION <= set(HOOKS) and len(HOOKS) >= 7


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_is_implemented_by_a_builtin_plugin(hook):
    plugins = manager.build(ALL)
    assert getattr(plugins.hook, hook).get_hookimpls(), f"no built-in plugin implements {hook}"


@pytest.fixture
def called(monkeypatch):
    """Names of the hooks called on any plugin manager built during the test."""
    names = set()
    build = manager.build

    def monitored(*args, **kwargs):
        plugins = build(*args, **kwargs)
        plugins.pm.add_hookcall_monitoring(lambda hook_name, impls, kw: names.add(hook_name),
                                           lambda outcome, hook_name, impls, kw: None)
        return plugins

    monkeypatch.setattr(manager, "build", monitored)
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

