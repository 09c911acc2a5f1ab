"""Run the Pulumi program (``__main__.py``) without the Pulumi CLI, under ``pulumi.runtime`` mocks.

``run(config, engine)`` resets the Pulumi runtime, hands the program the stack
config the way the CLI does (namespaced keys, every value a string, secret keys
named) and runs it. Each resource the program registers reaches
``engine.create(resource)`` once its inputs are known (so a resource comes
after every resource it waits for, as in the engine), possibly from several
threads at once; the engine answers the resource's id and outputs. What it
answers is what the program sees: ``make preview`` fabricates plausible values
(``infra.preview``), the local stack applies the resource to moto and answers
what moto made (``devstack.apply``).
"""

from __future__ import annotations

import asyncio
import logging
import runpy
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

MAIN = Path(__file__).resolve().parent.parent / "__main__.py"
PROJECT = "sendgrid-events"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Resource:
    """One registered resource: what the program asked for and what the engine answered."""

    type: str
    name: str
    urn: str
    parent: str | None
    """The parent's URN (None: the stack itself)."""
    custom: bool
    """False for a component (``ComponentResource``): it is only a node in the tree."""
    inputs: dict[str, Any]
    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Answers resources; ``create`` is called once per resource, maybe from several threads."""

    def create(self, resource: Resource) -> tuple[str | None, dict[str, Any]]:
        raise NotImplementedError

    def call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        """A provider function (``aws.get_caller_identity`` ...); the program calls none today."""
        raise NotImplementedError(f"offline run: no answer for the function {token}")


@dataclass
class Result:
    resources: list[Resource]
    """In the order they were created."""
    outputs: dict[str, Any]
    """The stack's exports (``Output`` values: a caller may ask ``is_secret``)."""

    def resolved_outputs(self) -> dict[str, Any]:
        return {k: resolve(v) for k, v in self.outputs.items()}

    def is_secret(self, name: str) -> bool:
        return _sync_await(pulumi.Output.from_input(self.outputs[name]).is_secret())

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]


def resolve(value: Any) -> Any:
    """The plain value of an output (secret or not)."""
    return _sync_await(pulumi.Output.from_input(value).future())


class _Monitor(mocks.MockMonitor):
    """The SDK's mock monitor, telling the engine each resource's parent too."""

    def __init__(self, engine: Engine):
        super().__init__(_Mocks(engine))
        self.engine = engine
        self.created: list[Resource] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return mocks.resource_pb2.RegisterResourceResponse(urn=urn)
        mocks._ensure_event_loop()
        resource = Resource(type=request.type, name=request.name, urn=urn, parent=request.parent or None,
                            custom=bool(request.custom), inputs=rpc.deserialize_properties(request.object))
        try:
            resource.id, resource.outputs = self.engine.create(resource)
        except Exception as exc:
            _REPORTED.add(id(exc))
            raise
        with self._lock:
            self.created.append(resource)
        state = _sync_await(rpc.serialize_properties(resource.outputs, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, resource.id, resource.outputs)
        return mocks.resource_pb2.RegisterResourceResponse(urn=urn, id=resource.id or "", object=state)


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, engine: Engine):
        self.engine = engine

    def new_resource(self, args):  # reads (``get``): not used by the program
        raise NotImplementedError(f"offline run: cannot read an existing {args.typ} {args.name!r}")

    def call(self, args):
        return self.engine.call(args.token, dict(args.args))


_REPORTED: set[int] = set()
"""Ids of the engine's exceptions: the run raises the first; their copies in the SDK's futures are noise."""


def _quiet(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The loop's exception handler: an engine error the run has raised already is not printed again
    ("Future exception was never retrieved", once per output that waited on the resource)."""
    if id(context.get("exception")) not in _REPORTED:
        loop.default_exception_handler(context)


@contextmanager
def runtime(config: dict[str, str], engine: Engine, *, stack: str, secret_keys: tuple[str, ...] = (),
            project: str = PROJECT, preview: bool = False, logger: logging.Logger | None = None):
    """The Pulumi runtime set up for ``stack`` as the CLI would (``config``: ``namespace:key`` -> string),
    resources answered by ``engine``, the program's log messages (``pulumi.log``) to ``logger``
    (default: the root logger); yields the monitor (``created``: the resources). Config cleared after."""
    monitor = _Monitor(engine)
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), secret_keys=list(secret_keys))
    pulumi.runtime.set_mocks(_Mocks(engine), project=project, stack=stack, preview=preview, monitor=monitor,
                             logger=logger)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    try:
        yield monitor
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])


def run(config: dict[str, str], engine: Engine, *, stack: str, secret_keys: tuple[str, ...] = (),
        project: str = PROJECT, preview: bool = False, main: Path | Callable[[], object] = MAIN,
        logger: logging.Logger | None = None) -> Result:
    """Run ``main`` (``__main__.py``, or a function) with ``config`` (``namespace:key`` -> string, as the CLI
    hands it) in ``runtime``."""
    program = main if callable(main) else lambda: runpy.run_path(str(main), run_name="__main__")
    asyncio.get_event_loop().set_exception_handler(_quiet)
    with runtime(config, engine, stack=stack, secret_keys=secret_keys, project=project, preview=preview,
                 logger=logger) as monitor:
        root = settings.get_root_resource()
        _sync_await(run_pulumi_func(program))
        return Result(list(monitor.created), dict(root.outputs))
