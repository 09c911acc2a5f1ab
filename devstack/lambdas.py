"""The functions, run the way Lambda runs them: instances in processes of their own.

A ``Function`` holds what was applied for one Lambda function (its handler,
timeout, memory and environment) plus the local endpoint, credentials and
package folder, and runs instances of it (``devstack.runtime``): each a fresh
process with exactly that environment (a cold start), serving one invocation
at a time. A call that finds every instance busy starts another, up to
``concurrency``, as Lambda scales out. An invocation that outlives the
function's timeout is killed (``FunctionTimeout``), as Lambda does; one that
raises comes back as ``FunctionError``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from devstack.aws import Credentials

# Process settings a function never sees (Lambda gives it none of the caller's).
RUNTIME_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
# Loopback traffic never goes through a proxy a user may have configured.
NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
START_TIMEOUT = 60
LOG_LINES = 2000
RUNTIME = Path(__file__).resolve().parent / "runtime.py"
BOOT = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


class FunctionError(RuntimeError):
    """The handler raised; ``type`` and ``trace`` are the instance's."""

    def __init__(self, function: str, error: dict):
        super().__init__(f"{function}: {error['type']}: {error['message']}")
        self.type = error["type"]
        self.trace = error.get("trace", "")


class FunctionTimeout(RuntimeError):
    """The invocation outlived the function's timeout; the instance was stopped."""


@dataclass
class Function:
    name: str
    """The logical name (sender, webhook, a plugin's)."""
    handler: str
    env: dict[str, str]
    """Exactly what the instance's process gets (the applied variables, the runtime's, the local endpoint)."""
    package: Path
    """The unpacked code archive: first on ``sys.path``, as ``/var/task`` in Lambda."""
    timeout: float = 30.0
    lambda_name: str = ""
    """Its name in Lambda."""
    credentials: Credentials | None = None
    """The IAM user standing in for its role (``devstack.applied.credentials_for``)."""
    extra_paths: tuple[str, ...] = ()
    """More folders on its path after the package, as layers (plugins under development)."""
    concurrency: int = 4
    logs: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    """Its latest log lines (what it printed or logged), also echoed to this process's standard error."""
    _idle: list["_Instance"] = field(default_factory=list)
    _all: list["_Instance"] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stopped: bool = False

    def start(self) -> "Function":
        """Start one instance now (its cold start happens before the first request)."""
        with self._changed:
            instance = _Instance(self)
            self._all.append(instance)
        instance.wait_ready()
        with self._changed:
            self._idle.append(instance)
            self._changed.notify()
        return self

    def invoke(self, event: dict):
        instance = self._acquire()
        try:
            result = instance.invoke(event, self.timeout)
        except BaseException:
            self._retire(instance)
            raise
        self._release(instance)
        if "error" in result:
            raise FunctionError(self.name, result["error"])
        return result["result"]

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            instances, self._all, self._idle = list(self._all), [], []
            self._changed.notify_all()
        for instance in instances:
            instance.stop()

    def _acquire(self) -> "_Instance":
        with self._changed:
            while True:
                if self._stopped:
                    raise RuntimeError(f"function {self.name} is stopped")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.concurrency:
                    instance = _Instance(self)
                    self._all.append(instance)
                    break
                self._changed.wait()
        try:
            instance.wait_ready()
        except BaseException:
            self._retire(instance)
            raise
        return instance

    def _release(self, instance: "_Instance") -> None:
        with self._changed:
            if instance in self._all:
                self._idle.append(instance)
            self._changed.notify()

    def _retire(self, instance: "_Instance") -> None:
        instance.stop()
        with self._changed:
            if instance in self._all:
                self._all.remove(instance)
            self._changed.notify()


class _Instance:
    """One process of a function."""

    def __init__(self, function: Function):
        self.function = function
        env = {k: os.environ[k] for k in RUNTIME_ENV if k in os.environ}
        env.update(function.env)
        env.update(NO_PROXY)
        env["_HANDLER"] = function.handler  # what Lambda's runtime sets: the handler and the function's name
        env["AWS_LAMBDA_FUNCTION_NAME"] = function.lambda_name or function.name
        env["PYTHONPATH"] = os.pathsep.join([str(function.package), *function.extra_paths])
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # Lambda's code folders are read-only
        # Run by path from the package folder: the project (infra/, devstack/) is not on sys.path.
        self.process = subprocess.Popen([sys.executable, "-c", BOOT, str(RUNTIME)], env=env, cwd=function.package,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        threading.Thread(target=self._log, daemon=True, name=f"{function.name}-log").start()
        self._ready = False

    def _log(self) -> None:
        for line in self.process.stderr:
            self.function.logs.append(line.rstrip("\n"))
            sys.stderr.write(f"[{self.function.name}] {line}")

    def wait_ready(self) -> None:
        if self._ready:
            return
        line = self._read(START_TIMEOUT)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"function {self.function.name}: the instance did not start "
                               f"(its log above says why)")
        self._ready = True

    def invoke(self, event: dict, timeout: float) -> dict:
        self.process.stdin.write(json.dumps({"event": event, "deadline": time.time() + timeout}) + "\n")
        self.process.stdin.flush()
        line = self._read(timeout + 1)
        if line is None:
            raise FunctionTimeout(f"{self.function.name}: Task timed out after {timeout:.0f} seconds")
        if not line:
            raise FunctionError(self.function.name, {"type": "Runtime.ExitError",
                                                     "message": f"the instance exited ({self.process.poll()})"})
        return json.loads(line)

    def _read(self, timeout: float) -> str | None:
        """The next protocol line; None when none came in time, '' when the process ended."""
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return lines[0] if lines else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass

