"""The hooks a sendgrid-events plugin may implement.

A plugin is a plain module (or any object) with functions decorated by
``@hookimpl`` whose names are the hook names below. Built-in plugins live in
``plugins/``; third-party ones are installed packages that declare an entry
point in the group ``sendgrid_events``. Only the plugins named in the stack's
allow-list (``ENABLED_PLUGINS``) are registered.

Registration hooks (``register_*``) are called once per process, when the
plugin manager is built (a Lambda cold start); their results are kept. The
other hooks are called per batch or per mail.

The deploy side (``stack_settings``, ``infrastructure``: what a plugin
needs from the stack) has its own hooks, in ``infra/hookspecs.py``, and
lives in a plugin's ``deploy`` module, which never ships to Lambda.

A plugin may declare hooks of its own for other plugins to implement: its
module's ``@hookspec`` functions are added when it is enabled (the
``inbound`` plugin's ``inbound_mail``).

This module is imported by the Lambda handlers: it must never import pulumi.
"""

from __future__ import annotations

import pluggy

PROJECT = "sendgrid_events"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_event_types(register):
    """Declare the SendGrid event types (the ``event`` field) this plugin accepts.

    Call ``register(name, fields)`` once per type. ``fields(event) -> dict``
    receives the raw SendGrid event (a dict that has passed the core's checks:
    ``event``, ``email`` and an integer ``timestamp`` are there) and returns the
    event-specific fields to add to its record, under record keys (camelCase),
    e.g. bounce: ``{"type": ..., "bounceClassification": ..., "status": ...,
    "reason": ...}``. It must not raise for a missing optional field; if it
    raises, the event is stored as a reject and the rest of the batch goes on.

    Events of a type no enabled plugin registered are ignored and counted.
    Registering a type another enabled plugin registered already is an error,
    and so is ``fields`` returning a core record key (``handlers.records``):
    it is tried once, on a sample event, when the plugin is registered.
    """


@hookspec
def register_sinks(register):
    """Declare where reconciled records go.

    Call ``register(name, write, idempotent=True)``. ``write(records)`` receives
    the list of records of one webhook batch (every accepted, not yet processed
    event, in the order received; ``handlers.records`` names the core's keys) and
    stores them. What it may say (``handlers.delivery``):

    - return: every record is stored.
    - raise ``Rejected(reasons)`` (eventId -> why; or ``Rejected(ids, why)``):
      every record is stored except those, which it can never store (a key
      over DynamoDB's size limit, a message over SNS's): the core keeps them
      in the ``rejects`` table (one row per event and sink, with the reason
      and the raw event) and marks them processed, and the batch is answered
      2xx. Name the field or limit in the reason, never the value (reasons are
      logged); ``details=`` (eventId -> the service's words) is kept with the
      reject, not logged. A sink writing one row per record into a DynamoDB
      table gets this from ``handlers.delivery.put_rows``: it checks every key
      the table declarations name (other plugins' indexes included) before
      writing and isolates any other item DynamoDB refuses.
    - raise anything else: "not stored, for now" (throttling, timeouts, a
      service down): the webhook answers 5xx and SendGrid posts the batch
      again, so ``write`` must make a repeated write of the same record
      harmless.

    A sink that cannot repeat a write harmlessly (a notification) registers
    with ``idempotent=False``; the core then hands it only records it has
    claimed for that sink, so no record reaches it twice; if it stored only
    some, it raises ``handlers.delivery.PartiallyWritten(written,
    rejected=...)`` and only the others are offered again. Every wait inside
    ``write`` should go through ``handlers.retry.pause`` (the time budget).
    """


@hookspec
def register_tables(register):
    """Declare the DynamoDB tables this plugin reads or writes.

    Call ``register(table)`` with a ``handlers.tables.Table``: its keys,
    indexes, TTL attribute and which function may call which actions on it.
    The Pulumi program creates each declared table (and its IAM statements and
    the ``TABLE_<NAME>`` environment variable of the functions that use it);
    the local stack is that program, applied to moto. A plugin may also declare
    an index on a table another plugin or the core declares, by registering a
    ``Table`` with the same name and only ``indexes`` (and ``access``) set.
    """


@hookspec
def before_send(mail):
    """Inspect a mail before the sender hands it to SendGrid.

    ``mail`` is a ``handlers.mail.Mail``; ``mail.recipients`` lists every
    address still to be sent to (to, cc and bcc). Call ``mail.drop(address,
    reason)`` to remove a recipient (from to, cc and bcc) or
    ``mail.veto(reason)`` to stop the whole mail. The sender writes who was
    dropped and why (``suppressed``) or the veto (``error``) on the mail sender
    item; a mail left with no ``to`` recipient is ``rejected``. Raising is a
    transient failure: the item is marked ``failed`` and the record retried.
    """


@hookspec
def after_send(mail, message_id):
    """Act on a mail SendGrid accepted (``message_id`` is its X-Message-Id).

    Called after the sent log was written. Failures are logged, never undo the
    send and never cause a resend.
    """

