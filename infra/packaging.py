"""What goes to Lambda: the dependency layer and the function package.

The layer is ``pip install``-ed from ``requirements-lambda.txt`` for the
target architecture and Python version (binary wheels only), into
``build/layers/<hash>/python``; the hash covers the requirements, the
architecture and the Python version, so an unchanged stack reuses the folder
and the deployed layer version. The function package holds only the Lambda
code: ``handlers/`` and ``plugins/`` (no tests, no pulumi, no caches).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pulumi

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-lambda.txt"
CACHE = ROOT / "build" / "layers"
CODE_PACKAGES = ("handlers", "plugins")
# Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34); pip only
# matches the exact manylinux tags it is given, so name each one wheels use.
MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
SKIPPED_PARTS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def layer_hash(requirements: Path, arch: str, python_version: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{arch}\n{python_version}\n".encode())
    digest.update(requirements.read_bytes())
    return digest.hexdigest()[:16]


def pip_command(requirements: Path, arch: str, python_version: str, target: Path) -> list[str]:
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            *platforms, "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python_version, "--no-compile",
            "--target", str(target), "-r", str(requirements)]


def build_layer(arch: str, python_version: str, requirements: Path = REQUIREMENTS,
                cache: Path = CACHE) -> tuple[Path, str]:
    """The layer folder (holding ``python/``) and its hash; built once per hash.

    ``arch`` is the manylinux name (``x86_64`` or ``aarch64``). Built in a
    temporary folder and renamed into place, so concurrent runs never see a
    half-built layer.
    """
    digest = layer_hash(requirements, arch, python_version)
    folder = cache / f"{arch}-py{python_version}-{digest}"
    if folder.is_dir():
        return folder, digest
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache))
    try:
        result = subprocess.run(pip_command(requirements, arch, python_version, work / "python"),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"building the Lambda layer from {requirements.name} failed:\n{result.stderr}")
        try:
            os.rename(work, folder)
        except OSError:
            if not folder.is_dir():  # another run finished first: theirs is as good
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder, digest


def code_files(root: Path = ROOT) -> dict[str, Path]:
    """Archive path -> file, for everything the functions run."""
    files = {}
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if (path.is_file() and path.suffix not in SKIPPED_SUFFIXES
                    and not SKIPPED_PARTS.intersection(relative.parts)):
                files[relative.as_posix()] = path
    return files


def code_archive(root: Path = ROOT) -> pulumi.AssetArchive:
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(path)) for name, path in code_files(root).items()})
