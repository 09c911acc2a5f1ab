"""The plugin manager factory: which plugins run, and what they registered.

``enabled_plugins()`` is the process-wide set, built once per cold start from
``ENABLED_PLUGINS``; tests call ``build(names)`` for a fresh one each time.
"""

from __future__ import annotations

import functools
import importlib
import os
from importlib.metadata import entry_points
from typing import Callable, Iterable, NamedTuple

import pluggy

from handlers import hookspecs, records
from handlers.tables import CORE_TABLES, Table, combine, declare

# Built-in plugins: name -> module path. Adding one is adding a line here.
BUILTIN_PLUGINS = {
    "bounce": "plugins.bounce",
    "dropped": "plugins.dropped",
    "dynamodb": "plugins.dynamodb",
    "processed": "plugins.processed",
    "deferred": "plugins.deferred",
    "delivered": "plugins.delivered",
    "open": "plugins.open",
    "click": "plugins.click",
    "spamreport": "plugins.spamreport",
    "unsubscribe": "plugins.unsubscribe",
    "group_unsubscribe": "plugins.group_unsubscribe",
    "group_resubscribe": "plugins.group_resubscribe",
    "history": "plugins.history",
    "sns": "plugins.sns",
    "suppression": "plugins.suppression",
    "inbound": "plugins.inbound",
    "inbound_log": "plugins.inbound_log",
}
DEFAULT_PLUGINS = ("bounce", "dropped", "dynamodb")
ENTRY_POINT_GROUP = hookspecs.PROJECT


class PluginError(ValueError):
    """The enabled-plugin list or a plugin's registrations are wrong."""


class EventType(NamedTuple):
    name: str
    fields: Callable[[dict], dict]
    plugin: str


class Sink(NamedTuple):
    name: str
    write: Callable[[list[dict]], None]
    idempotent: bool
    plugin: str


class Plugins:
    """A plugin manager and what its plugins registered (computed once)."""

    def __init__(self, names: tuple[str, ...], pm: pluggy.PluginManager):
        self.names = names
        self.pm = pm
        self.event_types: dict[str, EventType] = {}
        self.sinks: list[Sink] = []
        self.tables: dict[str, Table] = {}

    @property
    def hook(self):
        return self.pm.hook


def parse_names(value: str | None) -> tuple[str, ...]:
    """``ENABLED_PLUGINS`` -> names. Unset means the defaults; empty means none."""
    if value is None:
        return DEFAULT_PLUGINS
    names = [n.strip() for n in value.split(",")]
    return tuple(dict.fromkeys(n for n in names if n))


def known_plugins(installed: bool = True) -> dict[str, Callable[[], object]]:
    """Every plugin that could be enabled: name -> loader (nothing imported yet); the built-in ones only
    when not ``installed`` (no scan of the installed packages' entry points)."""
    known: dict[str, Callable[[], object]] = {
        name: functools.partial(importlib.import_module, path) for name, path in BUILTIN_PLUGINS.items()
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP) if installed else ():
        if ep.name in known:
            raise PluginError(f"plugin name {ep.name!r} from package entry point {ep.value!r} "
                              "is already taken by a built-in plugin")
        known[ep.name] = ep.load
    return known


def build(names: Iterable[str] | str | None = None, source: str = "ENABLED_PLUGINS", *,
          check_installed: bool = True) -> Plugins:
    """A fresh plugin manager with exactly ``names`` registered.

    ``names`` may be a comma-separated string (as in ``ENABLED_PLUGINS``), an
    iterable, or None for the defaults. Unknown names fail loudly, naming
    ``source`` (where the list came from) and the closest known names.
    ``check_installed``: read the installed packages' entry points even when
    every name is built in, to refuse a package that takes a built-in's name
    (the deploy side does; a Lambda cold start need not: ``enabled_plugins``).
    """
    if names is None or isinstance(names, str):
        names = parse_names(names)
    names = tuple(dict.fromkeys(names))
    known = known_plugins(check_installed or any(n not in BUILTIN_PLUGINS for n in names))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PluginError(unknown_message(unknown, sorted(known), source))
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in names:
        plugin = known[name]()
        if any(hasattr(value, f"{hookspecs.PROJECT}_spec") for value in vars(plugin).values()):
            pm.add_hookspecs(plugin)  # the hooks this plugin offers others (``inbound``'s ``inbound_mail``)
        pm.register(plugin, name=name)
    return _collect(Plugins(names=names, pm=pm))


def hook_specs(pm: pluggy.PluginManager) -> dict[str, Callable]:
    """Every hook ``pm`` can call (the core's and those its plugins offer): name -> the spec function."""
    return {name: caller.spec.function for name, caller in vars(pm.hook).items()
            if getattr(caller, "spec", None) is not None}


def unknown_message(unknown: list[str], known: list[str], source: str) -> str:
    """``unknown plugin 'bounc' in <source> (did you mean 'bounce'?); known plugins: ...``."""
    import difflib  # only for this message

    def named(name: str) -> str:
        close = difflib.get_close_matches(name, known, n=1)
        return f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")

    return (f"unknown plugin{'s' if len(unknown) > 1 else ''} {', '.join(named(n) for n in unknown)} in {source}; "
            f"known plugins: {', '.join(known)}")


def _collect(plugins: Plugins) -> Plugins:
    pm = plugins.pm

    def each(hook_name: str):
        """Call a registration hook plugin by plugin, knowing who registers what."""
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            yield impl.plugin_name, impl.function

    for plugin, register_event_types in each("register_event_types"):
        def add_type(name: str, fields: Callable[[dict], dict], _plugin=plugin):
            if name in plugins.event_types:
                raise PluginError(f"event type {name!r} is registered by both "
                                  f"{plugins.event_types[name].plugin!r} and {_plugin!r}")
            clash = records.clashes(fields({**records.PROBE, "event": name}))
            if clash:
                raise PluginError(f"plugin {_plugin!r}: event type {name!r} returns core record key(s) "
                                  f"{', '.join(clash)} (handlers.records.CORE_KEYS); name its fields otherwise")
            plugins.event_types[name] = EventType(name, fields, _plugin)
        register_event_types(register=add_type)

    for plugin, register_sinks in each("register_sinks"):
        def add_sink(name: str, write, idempotent: bool = True, _plugin=plugin):
            if any(s.name == name for s in plugins.sinks):
                raise PluginError(f"sink {name!r} is registered twice")
            plugins.sinks.append(Sink(name, write, idempotent, _plugin))
        register_sinks(register=add_sink)

    declared: list[Table] = list(CORE_TABLES)
    for _plugin, register_tables in each("register_tables"):
        register_tables(register=declared.append)
    try:
        plugins.tables = combine(declared)
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    declare(plugins.tables.values())  # writes are checked against every index any plugin declared
    return plugins


@functools.cache
def enabled_plugins() -> Plugins:
    """The process-wide plugins, from ``ENABLED_PLUGINS`` (built once per cold start).

    Installed packages' entry points are read only for a name that is not
    built in (1.5 ms of a cold start otherwise, bench/README.md): the program
    built the same list with the check (``pulumi up`` refuses a package
    taking a built-in's name), and the layer holds the packages it saw.
    """
    return build(os.environ.get("ENABLED_PLUGINS"), check_installed=False)
