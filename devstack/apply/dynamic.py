"""Pulumi dynamic resources (the program's SendGrid settings, ``infra.sendgrid``), made by their own provider.

Under mocks a dynamic resource registers as ``pulumi-python:dynamic:Resource``
with its provider serialized (dill, base64) in the ``__provider`` input. It is
deserialized as the Pulumi Python SDK's dynamic provider host does
(``pulumi.dynamic.__main__.get_provider``, without its process-wide settings)
and its ``create`` is called with the other inputs: locally the provider
calls the SendGrid stand-in (the stack's ``sendgridApiBaseUrl``), exactly as
``pulumi up`` calls SendGrid.
"""

from __future__ import annotations

import base64

import dill
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime._serialization import _deserialize

from devstack.apply import Applier, ApplyError, applies

DYNAMIC = "pulumi-python:dynamic:Resource"


def provider_of(inputs: dict) -> ResourceProvider:
    """The resource's provider, from its ``__provider`` input."""
    serialized = inputs[PROVIDER_KEY]
    return _deserialize(lambda: dill.loads(base64.b64decode(serialized)))


@applies(DYNAMIC)
def dynamic_resource(aws: Applier, name: str, inputs: dict):
    props = {k: v for k, v in inputs.items() if k != PROVIDER_KEY}
    try:
        made = provider_of(inputs).create(props)
    except Exception as exc:  # noqa: BLE001 (any provider failure stops `up`, naming the resource)
        raise ApplyError(f"{type(exc).__name__}: {exc}") from None
    return made.id, made.outs or {}
