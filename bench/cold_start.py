"""Figure: cold start: handler import time next to a bare ``import boto3``, as deployed and in the dev tree.

Import time: ``python -c "<imports>"`` in fresh processes, the runs of
every target interleaved (boto3, webhook, sender, ..., boto3, ...), after
one untimed run each (files in the page cache); the figure is the CPU time
(``time.process_time``: the machine is shared, and wall time there counts
other jobs' turns on the cores) the ``-c`` code took, interpreter start-up
excluded, of the fastest run (the medians' ratio is in the note). "webhook, first request"
adds what the handler loads lazily on its first request: the plugin set
(``enabled_plugins()``), a verification key parsed and a signature checked
(``cryptography``).

Three ways, each against its own ``import boto3``:

- **as deployed**: the shipped files (``bench/lambda_layout.py``: the function
  package as ``/var/task``, the layer as ``/opt/python``, both with the
  ``.pyc`` ``infra/packaging.py`` ships, read-only, no bytecode written) run
  by the runtime's Python (``PYTHON``, this machine's architecture); the
  baseline is ``import boto3`` from the runtime's own precompiled copy.
- **as deployed before**: the same, shipped without ``.pyc`` (what
  ``pip --no-compile`` and a source-only function package gave): every
  module compiled on every cold start.
- **dev tree**: this checkout on this interpreter, ``.pyc`` written by the
  warm-up run into ``__pycache__`` (the figure reported before; not what
  Lambda runs).

Without the runtime's Python on this machine the first two are not measured
(their rows say so).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import lambda_layout
from bench.common import Row, median

ROOT = Path(__file__).resolve().parent.parent
MARK = "--bench-mark--"


def first_request() -> str:
    """What the webhook loads on its first request: the plugin set, a verification key, a signature checked."""
    from devstack.eventwebhook import WebhookKey

    key, body = WebhookKey(), b'[{"event":"bounce"}]\r\n'
    return ("import handlers.webhook, handlers.manager, handlers.signature as s; "
            "handlers.manager.enabled_plugins(); "
            f"assert s.verify({body!r}, {key.headers(body)!r}, s.parse_settings({key.public_key_b64!r}, '0', ''), 0)")


TARGETS = {
    "boto3": "import boto3",
    "import handlers.webhook": "import handlers.webhook",
    "import handlers.sender": "import handlers.sender",
    "webhook, first request": first_request(),
}
QUICK = ("boto3", "import handlers.sender", "webhook, first request")  # the targets' rows
RUNS = 15
PYTHON = "3.12"  # the stack default runtime (infra/config.py)
TARGET_RATIO = {"import handlers.sender": 1.1, "webhook, first request": 1.15}  # as deployed, x boto3


@dataclass(frozen=True)
class Setup:
    """Where targets run: ``name`` for the rows, ``python``, and ``search_path`` (None: the dev tree)."""

    name: str
    python: str
    search_path: tuple[str, ...] | None = None
    boto3_path: tuple[str, ...] | None = None
    """Where its baseline finds boto3 (as deployed: the runtime's folder alone)."""

    def command(self, code: str, baseline: bool) -> tuple[list[str], dict[str, str], Path]:
        program = (f"import sys, time; started = time.process_time(); {code}; "
                   f"sys.stderr.write({MARK!r} + str(round((time.process_time() - started) * 1e6)))")
        if self.search_path is None:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # .pyc written
            return [self.python, "-c", program], {**env, "PYTHONPATH": str(ROOT)}, ROOT
        path = self.boto3_path if baseline else self.search_path
        argv, env = lambda_layout.command(self.python, list(path), program)
        return argv, env, Path("/")


def import_us(setup: Setup, code: str, baseline: bool = False) -> int:
    """CPU microseconds ``code`` takes in a fresh interpreter (``time.process_time``, start-up excluded)."""
    argv, env, cwd = setup.command(code, baseline)
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{code!r} ({setup.name}) failed:\n{result.stderr[-2000:]}")
    return int(result.stderr.rsplit(MARK, 1)[1])


def import_times(setups: list[Setup], targets: tuple[str, ...], runs: int) -> dict[tuple[str, str], list[int]]:
    """(setup name, target) -> microseconds of each run; every run of every pair interleaved."""
    pairs = [(setup, target) for setup in setups for target in targets]
    for setup, target in pairs:
        import_us(setup, TARGETS[target], target == "boto3")  # warm-up: page cache (and the dev tree's .pyc)
    times: dict[tuple[str, str], list[int]] = {(s.name, t): [] for s, t in pairs}
    for run in range(runs):
        for setup, target in pairs if run % 2 == 0 else reversed(pairs):
            times[setup.name, target].append(import_us(setup, TARGETS[target], target == "boto3"))
    return times


def deployed_setups(folder: Path, python: Path, quick: bool) -> list[Setup]:
    """The shipped artifacts laid out under ``folder``: with their bytecode, and (unless quick) without."""
    setups = []
    for name, bytecode in (("as deployed", True), ("as deployed before", False))[:1 if quick else 2]:
        tree = lambda_layout.deployed(folder / name.replace(" ", "-"), PYTHON, python, bytecode)
        setups.append(Setup(name, str(python),
                            tuple(lambda_layout.paths(tree, lambda_layout.TASK, lambda_layout.LAYER,
                                                      lambda_layout.RUNTIME)),
                            tuple(lambda_layout.paths(tree, lambda_layout.RUNTIME))))
    return setups


def describe(setup: Setup) -> str:
    if setup.name == "as deployed":
        return f"py{PYTHON} {lambda_layout.ARCH}, shipped .pyc, read-only"
    if setup.name == "as deployed before":
        return f"py{PYTHON} {lambda_layout.ARCH}, no .pyc shipped, read-only"
    return f"dev tree, py{sys.version_info[0]}.{sys.version_info[1]}, .pyc cached by a warm-up: not what Lambda runs"


def rows_for(setup: Setup, targets: tuple[str, ...], times: dict, runs: int) -> list[Row]:
    """The fastest run of each target against the fastest ``import boto3`` (the median's ratio in the note).

    Importing is the same work every time: on a shared machine other jobs only
    ever add to it, so the fastest of the interleaved runs is the least noisy
    figure of what it costs.
    """
    base, base_median = min(times[setup.name, "boto3"]), median(times[setup.name, "boto3"])
    baseline = "the runtime's, precompiled" if setup.search_path else "this venv's"
    rows = []
    for target in targets[1:]:
        value, value_median = min(times[setup.name, target]), median(times[setup.name, target])
        goal = TARGET_RATIO.get(target) if setup.name == "as deployed" else None
        fastest, medians = value / base, value_median / base_median
        met = goal and max(fastest, medians) <= goal
        note = (f"CPU time, fastest of {runs} fresh processes (medians: {medians:.2f}x)"
                + (f"; target <= {goal}x: {'met' if met else 'not met'} (fastest and medians)" if goal else ""))
        rows.append(Row("cold start", f"{target} ({describe(setup)})", base / value,
                        f"{value / 1000:.0f} ms ({value / base:.2f}x boto3)",
                        f"{base / 1000:.0f} ms (import boto3, {baseline})", note))
    return rows


def run(quick: bool = False) -> list[Row]:
    targets = QUICK if quick else tuple(TARGETS)
    runs = 1 if quick else RUNS
    from infra import bytecode  # pulumi (infra imports it): only here

    python = bytecode.interpreter(PYTHON)
    setups = [Setup("dev tree", sys.executable)]
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        folder = Path(tmp)
        try:
            if python:
                setups += deployed_setups(folder, python, quick)
            before = lambda_layout.listing(folder)
            times = import_times(setups, targets, runs)
            if lambda_layout.listing(folder) != before:
                raise RuntimeError("a measured process wrote into the deployed folders (they must stay as shipped)")
        finally:
            lambda_layout.writable(folder)
    rows = [row for setup in setups[1:] + setups[:1] for row in rows_for(setup, targets, times, runs)]
    if not python:
        rows.insert(0, Row("cold start", f"as deployed (py{PYTHON})", None, "not measured", "",
                           bytecode.missing(PYTHON).split(":")[0]))
    return rows


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
