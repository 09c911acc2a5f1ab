"""The enabled plugins' deploy halves, found and registered (the Pulumi program only).

For a built-in plugin ``plugins.x`` the deploy half is the module
``plugins.x.deploy`` when there is one; for a third-party plugin, the module
its package names under the same name in the entry-point group
``sendgrid_events_deploy``. A plugin without one needs nothing from the
stack but its tables (``register_tables``, a runtime hook).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import pluggy

from handlers import manager
from infra import hookspecs

ENTRY_POINT_GROUP = "sendgrid_events_deploy"


def deploy_module(name: str):
    """The deploy module of plugin ``name``, or None."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    path = manager.BUILTIN_PLUGINS.get(name)
    if path is None:
        return None
    try:
        return importlib.import_module(f"{path}.deploy")
    except ModuleNotFoundError as exc:
        if exc.name in (f"{path}.deploy", path):  # no deploy half (or a plain module, not a package)
            return None
        raise


def build(enabled: manager.Plugins) -> pluggy.PluginManager:
    """A plugin manager with the deploy hooks and the deploy half of each of ``enabled``'s plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in enabled.names:
        module = deploy_module(name)
        if module is not None:
            pm.register(module, name=name)
    return pm


def integer_setting(plugin: str, key: str, var, functions: tuple[str, ...]) -> tuple:
    """The deploy half of a plugin whose one stack key, an integer (default: ``var``'s), becomes ``var`` on
    ``functions``: its ``(stack_settings, infrastructure)`` hook implementations.

        stack_settings, infrastructure = integer_setting("history", "historyTtlDays", HISTORY_TTL_DAYS,
                                                         ("sender", "webhook"))
    """
    @hookspecs.hookimpl
    def stack_settings(config):
        from infra.config import integer

        return integer(config, key, int(var.default))

    @hookspecs.hookimpl
    def infrastructure(stack):
        for function in functions:
            stack.add_env(function, var.name, str(stack.settings[plugin]))

    stack_settings.__doc__ = f"``{key}`` (an integer, default {var.default}), read before any resource."
    infrastructure.__doc__ = f"``{var.name}`` on {', '.join(functions)}, from ``{key}``."
    return stack_settings, infrastructure
