"""The two Lambda functions, run in this process the way Lambda runs them.

Each ``Function`` has the environment the Pulumi program would give it
(``env``). Both run in threads of one process and ``os.environ`` is process
wide, so ``process_env`` sets the union of the functions' environments once
(refusing two different values for one name) and gives back a way to restore
what was there. ``cold_start`` drops what the handler modules cached per
process (boto3 clients, the plugin manager, ...), as a new Lambda container
would, so they are rebuilt from the new environment.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

# Prefixes of the modules that run inside Lambda (their per-process caches are dropped on a cold start).
RUNTIME_MODULES = ("handlers", "plugins")
# Process settings that would stop boto3 talking to the local endpoint (a user's profile, session).
HIDDEN = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE",
          "AWS_SHARED_CREDENTIALS_FILE")
# Loopback traffic never goes through a proxy a user may have configured.
NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@dataclass
class Context:
    """The parts of Lambda's context object a handler may use."""

    function_name: str
    timeout_ms: int = 60_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


@dataclass
class Function:
    """A handler (``"module.function"``, or the function itself) and the environment it runs with."""

    name: str
    handler: str | Callable
    env: dict[str, str] = field(default_factory=dict)
    timeout_ms: int = 60_000

    def invoke(self, event: dict):
        handler = self.handler
        if isinstance(handler, str):
            module, _, attr = handler.rpartition(".")
            handler = getattr(importlib.import_module(module), attr)
        return handler(event, Context(self.name, self.timeout_ms))


def merged_env(envs: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The union of several environments; a name with two different values is an error."""
    union: dict[str, str] = {}
    for env in envs:
        for name, value in env.items():
            if union.setdefault(name, value) != value:
                raise ValueError(f"{name} differs between the functions ({union[name]!r} vs {value!r}); "
                                 "they share one process here")
    return union


def process_env(functions: Iterable[Function]) -> Callable[[], None]:
    """Set the functions' environments on this process; returns ``restore()``."""
    wanted = {**merged_env(f.env for f in functions), **NO_PROXY}
    saved = {name: os.environ.get(name) for name in (*wanted, *HIDDEN)}
    for name in HIDDEN:
        os.environ.pop(name, None)
    os.environ.update(wanted)
    cold_start()

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        cold_start()

    return restore


def cold_start() -> None:
    """Forget every per-process cache (``functools.cache``) of the handler and plugin modules."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in RUNTIME_MODULES or module is None:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()
