"""What goes to Lambda: the dependency layer and the function package, with their bytecode.

The layer is ``pip install``-ed from ``requirements-lambda.txt`` for the
target architecture and Python version (binary wheels only), into
``build/layers/<name>/python``; the function package holds only the Lambda
code: ``handlers/`` and ``plugins/`` (no tests, no pulumi, no stale caches),
copied into ``build/code/<name>``. Both then get ``.pyc`` files compiled by
the runtime's Python (``infra.bytecode``), as ``/opt/python/...`` and
``/var/task/...``, where Lambda puts them; built without that interpreter
(``compiler=None``) they ship source only.

Each folder is named by a hash of everything it is built from (requirements
or source files, architecture, Python version, the bytecode's cache tag and
mode), is built once, in a temporary folder renamed into place (concurrent
runs never see half a build), and never changes: the same inputs give the
same files, so an unchanged stack keeps its layer version and function code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pulumi

from infra import bytecode

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-lambda.txt"
CACHE = ROOT / "build" / "layers"
CODE_CACHE = ROOT / "build" / "code"
CODE_PACKAGES = ("handlers", "plugins")
# Where Lambda puts a layer's Python packages and the function's code.
LAYER_PATH = "/opt/python"
TASK_PATH = "/var/task"
# Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34); pip only
# matches the exact manylinux tags it is given, so name each one wheels use.
MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
SKIPPED_PARTS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
DEPLOY_MODULE = "deploy.py"  # a plugin's deploy half (infra.deploy): the Pulumi program's, never shipped


def layer_hash(requirements: Path, arch: str, python_version: str, bytecode_tag: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{arch}\n{python_version}\n{bytecode_tag}\n".encode())
    digest.update(requirements.read_bytes())
    return digest.hexdigest()[:16]


def pip_command(requirements: Path, arch: str, python_version: str, target: Path) -> list[str]:
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            *platforms, "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python_version, "--no-compile",
            "--target", str(target), "-r", str(requirements)]


def _build_once(folder: Path, fill: Callable[[Path], None]) -> Path:
    """``folder``, made by ``fill(temporary folder)`` unless it exists; renamed into place when complete."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        fill(work)
        try:
            os.rename(work, folder)
        except OSError:
            if not folder.is_dir():  # another run finished first: theirs is as good
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def build_layer(arch: str, python_version: str, requirements: Path = REQUIREMENTS, cache: Path = CACHE, *,
                compiler: Path | None) -> tuple[Path, str]:
    """The layer folder (holding ``python/``) and its hash; built once per hash.

    ``arch`` is the manylinux name (``x86_64`` or ``aarch64``); ``compiler`` the
    Python ``python_version`` interpreter that compiles it (None: no bytecode).
    """
    digest = layer_hash(requirements, arch, python_version, bytecode.tag(compiler))

    def fill(work: Path) -> None:
        result = subprocess.run(pip_command(requirements, arch, python_version, work / "python"),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"building the Lambda layer from {requirements.name} failed:\n{result.stderr}")
        if compiler:
            bytecode.compile_tree(compiler, work / "python", LAYER_PATH)

    return _build_once(cache / f"{arch}-py{python_version}-{digest}", fill), digest


def code_files(root: Path = ROOT) -> dict[str, Path]:
    """Archive path -> source file, for everything the functions run."""
    files = {}
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if (path.is_file() and path.suffix not in SKIPPED_SUFFIXES and path.name != DEPLOY_MODULE
                    and not SKIPPED_PARTS.intersection(relative.parts)):
                files[relative.as_posix()] = path
    return files


def build_code(python_version: str, root: Path = ROOT, cache: Path = CODE_CACHE, *,
               compiler: Path | None) -> Path:
    """The function package's folder: ``code_files(root)`` and, with a ``compiler``, their bytecode."""
    files = code_files(root)
    digest = hashlib.sha256(f"{python_version}\n{bytecode.tag(compiler)}\n".encode())
    for name, path in files.items():
        digest.update(f"{name}\n{path.stat().st_size}\n".encode())
        digest.update(path.read_bytes())

    def fill(work: Path) -> None:
        for name, path in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, work / name)
        if compiler:
            bytecode.compile_tree(compiler, work, TASK_PATH)

    return _build_once(cache / f"py{python_version}-{digest.hexdigest()[:16]}", fill)


def folder_files(folder: Path) -> dict[str, Path]:
    """Archive path -> file, for every file under ``folder`` (sorted)."""
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def code_archive(python_version: str, root: Path = ROOT, cache: Path = CODE_CACHE, *,
                 compiler: Path | None) -> pulumi.AssetArchive:
    folder = build_code(python_version, root, cache, compiler=compiler)
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(path)) for name, path in folder_files(folder).items()})
