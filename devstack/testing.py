"""The local stack for end-to-end tests and benchmarks: fast settings, always stopped.

    with running("bounce,dropped,dynamodb,sns") as stack:
        stack.insert(item)
        [item] = stack.wait_settled(item["id"])
        rows = stack.scan("bounce")

pytest: ``from devstack.testing import local_stack`` in a test module gives
it the ``local_stack`` fixture: ``local_stack(plugins, **options)`` starts one,
stopped at the end of the test. Do not combine it with the in-process ``aws``
fixture (``mock_aws``): the stack runs moto as a server and points every boto3
client of the process at it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest

from devstack.stack import Options, Stack

# Short delays so that a test waits tenths of a second, not seconds.
FAST = {"state_path": None, "webhook_delay": 0.05, "webhook_retry_delay": 0.1, "poll_interval": 0.05}


@contextlib.contextmanager
def running(plugins: str | None = None, **options) -> Iterator[Stack]:
    """A started ``Stack`` with ``plugins`` (None: the defaults) and ``FAST`` settings, stopped after."""
    with Stack(Options(plugins=plugins, **{**FAST, **options})) as stack:
        yield stack


@pytest.fixture
def local_stack():
    """``local_stack(plugins=None, **options)``: a running ``Stack``, stopped after the test."""
    with contextlib.ExitStack() as stacks:
        yield lambda plugins=None, **options: stacks.enter_context(running(plugins, **options))
