"""Bytecode for what ships to Lambda: ``.pyc`` compiled by the target runtime's Python.

Lambda's code folders (``/var/task``, ``/opt``) are read-only, so a module
shipped without a usable ``.pyc`` is compiled again on every cold start. The
files are compiled by the runtime's own minor version (``python3.12`` for the
``python3.12`` runtime: the bytecode format and magic number change with each
minor version) with unchecked-hash invalidation: the ``.pyc`` carries a hash
of its source instead of the source's modification time, and Python loads it
without looking at the source, so the timestamps a zip (and Lambda's unpacking)
gives the files cannot make Python ignore it. Tracebacks name the paths the
files have in Lambda (``compileall -d``), not this machine's.

The interpreter is ``python3.X`` on ``PATH`` or the newest ``3.X.*`` under
pyenv (``$PYENV_ROOT``, else ``~/.pyenv``), the first one that runs as 3.X
(a pyenv shim for a version not selected does not).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

MODE = "unchecked-hash"


def _patch(path: Path) -> tuple[int, ...]:
    """(3, 12, 1) from ``.../versions/3.12.1/bin/python3.12`` (pre-releases sort first)."""
    release = path.parent.parent.name.split("-")[0]
    return tuple(int(part) if part.isdigit() else -1 for part in release.split("."))


def candidates(version: str) -> list[Path]:
    """Where a ``python<version>`` may be, in the order they are tried."""
    name = f"python{version}"
    found = [Path(p) for p in [shutil.which(name)] if p]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found += sorted(pyenv.glob(f"versions/{version}.*/bin/{name}"), key=_patch, reverse=True)
    return found


@functools.cache
def _runs_as(python: Path, version: str) -> bool:
    try:
        result = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def interpreter(version: str) -> Path | None:
    """A Python ``version`` (``"3.12"``) interpreter on this machine, or None."""
    return next((python for python in candidates(version) if _runs_as(python, version)), None)


def missing(version: str) -> str:
    """What ``pulumi up`` says when no Python ``version`` is found, and how to get one."""
    return (f"python{version} not found (on PATH or under pyenv): the Lambda layer and function package ship "
            f"without .pyc, so every cold start compiles what it imports (bench/README.md: cold start). "
            f"Install it (pyenv install {version}, uv python install {version}, or the OS package "
            f"python{version}), put python{version} on PATH and run pulumi up again.")


@functools.cache
def tag(python: Path | None) -> str:
    """What a build's bytecode is, for the hashes that name builds: the interpreter's cache tag and mode."""
    if python is None:
        return "no bytecode"
    result = subprocess.run([str(python), "-c", "import sys; print(sys.implementation.cache_tag)"],
                            capture_output=True, text=True, check=True, timeout=30)
    return f"{result.stdout.strip()} {MODE}"


def compile_tree(python: Path, folder: Path, runtime_path: str) -> None:
    """Write ``__pycache__/*.pyc`` for every ``.py`` under ``folder``, as ``runtime_path`` in tracebacks.

    ``PYTHONHASHSEED=0``: set constants (``x in {"a", "b"}``) are marshalled in
    hash order, so a fixed seed makes the same source give the same bytes.
    Raises ``RuntimeError`` with compileall's output when a file does not compile.
    """
    command = [str(python), "-m", "compileall", "-q", "--invalidation-mode", MODE,
               "-d", runtime_path, str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, env={"PYTHONHASHSEED": "0"}, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"compiling {folder} with {python} failed:\n{result.stdout}{result.stderr}")
