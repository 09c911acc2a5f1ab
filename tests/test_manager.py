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


def test_each_core_function_is_described_once_and_its_handler_exists():
    import importlib

    from handlers import functions, tables

    assert [f.name for f in functions.CORE] == [tables.SENDER, tables.WEBHOOK]
    for function in functions.CORE:
        module, _, name = function.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
        assert function.reads and function.timeout <= 900


def test_an_event_type_returning_a_core_record_key_is_an_error_at_start(monkeypatch):
    import types as pytypes

    from handlers import reconcile
    from handlers.hookspecs import hookimpl

    @hookimpl
    def register_event_types(register):
        register("custom", lambda event: {"eventId": "mine", "note": event.get("note")})

    module = pytypes.ModuleType("overwriter")
    module.register_event_types = register_event_types
    monkeypatch.setitem(manager.BUILTIN_PLUGINS, "overwriter", "overwriter")
    monkeypatch.setitem(__import__("sys").modules, "overwriter", module)
    with pytest.raises(manager.PluginError, match=r"plugin 'overwriter': event type 'custom' returns core record "
                                                  r"key\(s\) eventId"):
        manager.build("overwriter")
    # And were one to slip through (a key only some events get), the core's value stands.
    event_type = manager.EventType("custom", lambda event: {"eventId": "mine", "note": 1}, "overwriter")
    event = {"event": "custom", "email": "a@example.com", "timestamp": 1, "sg_event_id": "real"}
    record = reconcile.build_record(event, event_type, {})
    assert record["eventId"] == "real" and record["note"] == 1


def test_a_cold_start_reads_installed_packages_only_for_a_name_not_built_in(monkeypatch):
    """``enabled_plugins`` (Lambda) skips the entry-point scan for built-in names; ``build`` (deploy) never does."""
    scans = []
    monkeypatch.setattr(manager, "entry_points", lambda **kwargs: scans.append(kwargs) or [])
    monkeypatch.setenv("ENABLED_PLUGINS", "bounce,dropped,dynamodb")
    manager.enabled_plugins.cache_clear()
    try:
        assert manager.enabled_plugins().names == ("bounce", "dropped", "dynamodb") and scans == []
    finally:
        manager.enabled_plugins.cache_clear()
    manager.build("bounce")
    assert scans == [{"group": manager.ENTRY_POINT_GROUP}]  # the deploy side refuses a package shadowing one
    with pytest.raises(manager.PluginError, match="unknown plugin 'jsonlog'"):
        manager.build("bounce,jsonlog", check_installed=False)
    assert len(scans) == 2  # a name not built in: the installed packages are read
