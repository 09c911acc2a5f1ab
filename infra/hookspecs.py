"""The hooks of a plugin's deploy half: what it needs from the stack (never in Lambda).

A plugin with infrastructure is a small package: its runtime module (what
ships to Lambda; ``handlers/hookspecs.py``) and a ``deploy`` module with
these hooks (``plugins/<name>/deploy.py``, or for a third-party package the
module its entry point in the group ``sendgrid_events_deploy`` names). The
deploy module may import pulumi and ``infra`` at module level: it is loaded
only by the Pulumi program (``infra.deploy``) and is never packaged.
"""

from __future__ import annotations

import pluggy

from handlers.hookspecs import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def stack_settings(config):
    """Read and check this plugin's own stack config keys; return them parsed.

    Called only by the Pulumi program (``infra/config.load``), never in Lambda,
    once per enabled plugin, after the core's keys are checked and before any
    resource is declared. ``config`` is the stack's ``pulumi.Config``
    (namespace ``sendgrid-events``). Read every key with ``infra.config``'s
    helpers (``string``, ``integer``, ``boolean``, ``string_list``, ``public_keys``),
    imported inside the function body: a missing or invalid value raises
    ``infra.config.ConfigError`` naming the key, and nothing is made. The
    return value (any object; None is fine) is what the plugin's
    ``infrastructure`` hook finds in ``stack.settings[<plugin name>]``, so each
    key is read once, here. Describe every key in ``Pulumi.yaml``.
    """


@hookspec
def infrastructure(stack):
    """Add what this plugin needs to a Pulumi stack beyond its tables.

    Called only by the Pulumi program (``infra/``), never in Lambda: import
    pulumi inside the function body. ``stack`` is an ``infra.plugins.StackContext``:
    it gives the plugins' checked settings (``stack.settings[<plugin name>]``,
    from ``stack_settings``), the parent component, the KMS key and the
    tables, and lets the plugin add environment variables and IAM statements
    to a function (``stack.add_env``, ``stack.allow``). The local stack
    (``devstack``) runs the same hook and applies what it declares to moto:
    there is nothing else to write for local runs.
    """

