"""What every benchmark shares: a loopback moto server, round-trip counting, timing, result rows.

Every number a benchmark reports is a ratio or a count measured in one run,
side by side with its baseline (runs alternate: project, baseline, project,
...; medians), because the machine is shared and noisy: absolute times are
shown for scale only.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator

import boto3
from devstack.aws import LocalAWS
from handlers import api_key, aws as handlers_aws, dynamo, manager
from handlers.tables import create_tables


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    case: str
    ratio: float | None  # baseline / project (how many times better); None when there is no baseline
    project: str
    baseline: str
    note: str = ""

    def ratio_text(self) -> str:
        return "" if self.ratio is None else f"{self.ratio:.1f}x"


def median(values) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternate(runs: dict[str, Callable[[int], object]], reps: int, warmup: bool = True) -> dict[str, list[float]]:
    """Run each of ``runs`` ``reps`` times, interleaved (a, b, b, a, a, b, ...); seconds of each run, by name.

    Each callable gets the repetition number (so it can use fresh input); with
    ``warmup`` each first runs once untimed, as repetition ``reps`` (caches,
    connections, lazy imports: a warm Lambda).
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    if warmup:
        for fn in runs.values():
            fn(reps)
    for rep in range(reps):
        order = list(runs.items())
        if rep % 2:  # the one that runs first may pay for warming up the machine: swap each round
            order.reverse()
        for name, fn in order:
            seconds, _ = timed(lambda: fn(rep))
            times[name].append(seconds)
    return times


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.0f} ms" if value >= 99.5 else f"{value:.1f} ms" if value >= 9.95 else f"{value:.2f} ms"


class RoundTrips:
    """Counts HTTP requests (``before-send``) and API calls (``before-call``) made by boto3 clients.

    Public botocore events only: ``register(client)`` hooks a client's event
    system; ``requests`` counts what went over the wire (retries included),
    ``waited`` the seconds from sending a request to its parsed answer
    (``after-call``). ``added_latency`` sleeps that long before each request:
    DynamoDB as far away as it is from a Lambda function, instead of on loopback.
    """

    def __init__(self, added_latency: float = 0.0):
        self.added_latency = added_latency
        self.requests = 0
        self.waited = 0.0
        self.calls: Counter = Counter()
        self._sent_at = 0.0
        self.on = True

    def _hooks(self):
        return (("before-send.dynamodb", self._sent), ("before-call.dynamodb", self._called),
                ("after-call.dynamodb", self._answered))

    def register(self, client) -> "RoundTrips":
        for event, handler in self._hooks():
            client.meta.events.register(event, handler)
        self._clients = [*getattr(self, "_clients", []), client]
        return self

    def close(self) -> None:
        """Unhook from every client registered."""
        for client in getattr(self, "_clients", []):
            for event, handler in self._hooks():
                client.meta.events.unregister(event, handler)
        self._clients = []

    def _sent(self, **_):
        if self.on:
            self.requests += 1
            self._sent_at = time.perf_counter()
            if self.added_latency:
                time.sleep(self.added_latency)
        return None  # None: botocore sends the request

    def _called(self, model, **_):
        if self.on:
            self.calls[model.name] += 1

    def _answered(self, **_):
        if self.on and self._sent_at:
            self.waited += time.perf_counter() - self._sent_at
            self._sent_at = 0.0

    def reset(self) -> None:
        self.requests = 0
        self.waited = 0.0
        self.calls.clear()

    @contextlib.contextmanager
    def counting(self) -> Iterator["RoundTrips"]:
        self.reset()
        yield self


def reset_api_key() -> None:
    """Forget the SendGrid API key the sender read (a new cold start)."""
    reset = getattr(api_key, "reset", None) or api_key.api_key.cache_clear
    reset()


@contextlib.contextmanager
def local_aws(plugins: str | None = None) -> Iterator[tuple[LocalAWS, manager.Plugins]]:
    """moto on 127.0.0.1 with the tables of ``plugins``; this process's boto3 clients pointed at it.

    moto runs in a child process (``devstack.aws``), as DynamoDB is not inside
    a Lambda: in-process, its request handling would share the benchmark's GIL.
    Restores the environment and the handlers' cached clients afterwards.
    """
    saved = dict(os.environ)
    aws = LocalAWS().start()
    try:
        os.environ.update(aws.env())
        os.environ.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        boto3.DEFAULT_SESSION = None  # its credentials were resolved once: a new session reads the new ones
        handlers_aws.reset()  # the handlers' own session, likewise
        dynamo.client.cache_clear()
        built = manager.build(plugins)
        os.environ.update(create_tables(aws.client("dynamodb"), built.tables.values()))
        yield aws, built
    finally:
        aws.stop()
        os.environ.clear()
        os.environ.update(saved)
        boto3.DEFAULT_SESSION = None
        handlers_aws.reset()
        dynamo.client.cache_clear()
        reset_api_key()
