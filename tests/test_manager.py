"""The plugin-manager factory: the allow-list and what plugins register."""

import pytest

from handlers import manager


def test_unset_means_the_defaults(monkeypatch):
    monkeypatch.delenv("ENABLED_PLUGINS", raising=False)
    manager.enabled_plugins.cache_clear()
    try:
        plugins = manager.enabled_plugins()
    finally:
        manager.enabled_plugins.cache_clear()
    assert plugins.names == ("bounce", "dropped", "dynamodb")
    assert set(plugins.event_types) == {"bounce", "dropped"}
    assert [s.name for s in plugins.sinks] == ["dynamodb"]
    assert set(plugins.tables) == {"mail_sender", "sent_log", "processed_events", "rejects", "bounce"}


def test_explicit_list_registers_only_those():
    plugins = manager.build(" bounce , dynamodb,bounce")
    assert plugins.names == ("bounce", "dynamodb")
    assert set(plugins.event_types) == {"bounce"}
    assert sorted(name for name, _ in plugins.pm.list_name_plugin()) == ["bounce", "dynamodb"]


def test_empty_list_enables_nothing():
    plugins = manager.build("")
    assert plugins.names == ()
    assert plugins.event_types == {} and plugins.sinks == []
    assert set(plugins.tables) == {"mail_sender", "sent_log", "processed_events", "rejects"}


def test_unknown_name_fails_loudly_naming_the_known_ones():
    with pytest.raises(manager.PluginError) as info:
        manager.build("bounce,bounced")
    message = str(info.value)
    assert message.startswith("unknown plugin 'bounced' (did you mean 'bounce'?) in ENABLED_PLUGINS;")
    for known in ("bounce", "dropped", "dynamodb"):
        assert known in message
    with pytest.raises(manager.PluginError, match=r"'xyzzy' in --plugins; known plugins: bounce, click"):
        manager.build("xyzzy", source="--plugins")  # nothing close: no guess


def test_devstack_says_which_plugin_name_is_wrong_without_a_traceback(capsys):
    from devstack.__main__ import main

    assert main(["up", "--plugins", "bounce,dynamo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("devstack: unknown plugin 'dynamo' (did you mean 'dynamodb'?) in --plugins")
    assert "Traceback" not in err


def test_enabled_plugins_is_built_once_per_process(monkeypatch):
    monkeypatch.setenv("ENABLED_PLUGINS", "bounce")
    manager.enabled_plugins.cache_clear()
    try:
        first = manager.enabled_plugins()
        monkeypatch.setenv("ENABLED_PLUGINS", "dropped")
        assert manager.enabled_plugins() is first
    finally:
        manager.enabled_plugins.cache_clear()


def test_two_plugins_registering_one_event_type_is_an_error(monkeypatch):
    monkeypatch.setitem(manager.BUILTIN_PLUGINS, "copycat", "tests.copycat_plugin")
    with pytest.raises(manager.PluginError, match="both 'bounce' and 'copycat'"):
        manager.build("bounce,copycat")


def test_each_core_function_has_its_variable_inventory():
    from handlers import env, tables

    assert env.READ_BY == {tables.SENDER: env.SENDER, tables.WEBHOOK: env.WEBHOOK}
