"""The shipped artifacts laid out as Lambda runs them, for measuring cold starts as deployed.

``deployed(folder, compiler, bytecode)`` makes, under ``folder``:

- ``var/task``: the function package as ``infra/packaging.py`` builds it
  (with its ``.pyc``, or source only as it shipped before: ``bytecode=False``),
- ``opt/python``: the layer, built for this machine's architecture (the
  shared objects must load here) and the runtime's Python version,
- ``var/runtime``: boto3 and its dependencies (``bench/lambda-runtime.txt``),
  precompiled, as the Lambda runtime ships them,

and makes every file read-only. ``command(python, paths, code)`` runs
``code`` in a fresh ``python`` whose ``sys.path`` starts with ``paths`` in
Lambda's order (task, layer, runtime), isolated from this environment
(``-I``: no ``PYTHONPATH``, no user site) and writing no bytecode (``-B``:
Lambda's folders are read-only; this process runs as whoever runs the
benchmark, possibly root, whom file modes do not stop). ``unwritten(folder)``
checks nothing was written.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
from pathlib import Path

RUNTIME_REQUIREMENTS = Path(__file__).resolve().parent / "lambda-runtime.txt"
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]
TASK, LAYER, RUNTIME = "var/task", "opt/python", "var/runtime"


def runtime_folder(version: str, compiler: Path) -> Path:
    """boto3 and its dependencies for Python ``version``, compiled (built once, under build/runtime)."""
    from infra import packaging

    folder, _ = packaging.build_layer(ARCH, version, RUNTIME_REQUIREMENTS, packaging.ROOT / "build" / "runtime",
                                      compiler=compiler)
    return folder / "python"


def deployed(folder: Path, version: str, compiler: Path, bytecode: bool) -> Path:
    """``folder`` holding var/task, opt/python and var/runtime as Lambda has them (see the module)."""
    from infra import packaging

    shipped = compiler if bytecode else None
    code = packaging.build_code(version, compiler=shipped)
    layer, _ = packaging.build_layer(ARCH, version, compiler=shipped)
    for source, target in ((code, TASK), (layer / "python", LAYER), (runtime_folder(version, compiler), RUNTIME)):
        shutil.copytree(source, folder / target)
    read_only(folder)
    return folder


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(folder: Path) -> None:
    """Undo ``read_only`` (so the folder can be removed)."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def paths(folder: Path, *parts: str) -> list[str]:
    return [str(folder / part) for part in parts]


def command(python: Path | str, search_path: list[str], code: str, *options: str) -> tuple[list[str], dict[str, str]]:
    """Argv and environment running ``code`` with ``search_path`` first on ``sys.path`` (see the module)."""
    program = f"import sys; sys.path[:0] = {search_path!r}; {code}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return [str(python), "-I", "-B", *options, "-c", program], env
