"""The shipped bytecode is what Lambda's Python loads: the layout bench/cold_start.py measures.

The function package and the layer as ``infra/packaging.py`` builds them, laid
out as ``/var/task`` and ``/opt/python`` (``bench/lambda_layout.py``), read-only,
imported by python3.12 in a fresh process with ``-v`` (which says, per module,
whether it came from a ``.pyc`` or was compiled from source). Skipped where
python3.12 is not found (``infra.bytecode.interpreter``).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from bench import lambda_layout
from infra import bytecode

PYTHON = bytecode.interpreter("3.12")
pytestmark = [pytest.mark.skipif(PYTHON is None, reason="python3.12 not found (PATH, pyenv)"),
              pytest.mark.timeout(240)]
ZIP_EPOCH = 315532800  # 1980-01-01: the oldest time a zip entry can carry


def loads(tree, code: str) -> tuple[list[str], list[str]]:
    """(modules loaded from a .pyc, modules compiled from source) under var/task and opt/python."""
    search = lambda_layout.paths(tree, lambda_layout.TASK, lambda_layout.LAYER, lambda_layout.RUNTIME)
    argv, env = lambda_layout.command(PYTHON, search, code, "-v")
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
    shipped = (str(tree / lambda_layout.TASK), str(tree / lambda_layout.LAYER))
    from_pyc = [line for line in result.stderr.splitlines() if line.startswith("# ") and " matches " in line
                and line.split(" matches ")[1].startswith(shipped)]
    compiled = [line for line in result.stderr.splitlines()
                if line.startswith("# code object from ") and line.removeprefix("# code object from ").startswith(shipped)]
    return from_pyc, compiled


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lambda")
    try:
        yield {shipped: lambda_layout.deployed(folder / str(shipped), "3.12", PYTHON, shipped)
               for shipped in (True, False)}
    finally:
        lambda_layout.writable(folder)


def test_what_the_webhook_imports_comes_from_the_shipped_pyc_even_with_zip_timestamps(layouts):
    tree = layouts[True]
    lambda_layout.writable(tree)
    for source in (tree / lambda_layout.TASK).rglob("*.py"):
        os.utime(source, (ZIP_EPOCH, ZIP_EPOCH))  # what unpacking a zip gives: not the time it was compiled at
    lambda_layout.read_only(tree)
    before = lambda_layout.listing(tree)
    from_pyc, compiled = loads(tree, "import handlers.webhook, handlers.sender, handlers.manager as m; m.enabled_plugins()")
    assert compiled == []
    assert any("/var/task/handlers/__pycache__/webhook.cpython-312.pyc" in line for line in from_pyc)
    assert any("/opt/python/pluggy/__pycache__/" in line for line in from_pyc)
    assert lambda_layout.listing(tree) == before  # nothing written next to the shipped files


def test_without_shipped_bytecode_every_cold_start_compiles(layouts):
    from_pyc, compiled = loads(layouts[False], "import handlers.webhook")
    assert from_pyc == []
    assert any(line.endswith("/var/task/handlers/webhook.py") for line in compiled)
    assert any("/opt/python/pluggy/" in line for line in compiled)
