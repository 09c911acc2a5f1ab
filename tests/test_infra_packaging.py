"""The Lambda layer (real pip, wheels from PyPI, cached under build/layers) and the function package."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from infra import packaging

# ELF e_machine of each architecture.
MACHINES = {"x86_64": 62, "aarch64": 183}


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return struct.unpack("<H", header[18:20])[0]


@pytest.mark.parametrize("arch", sorted(MACHINES))
def test_layer_holds_the_runtime_requirements_built_for_the_architecture(arch):
    folder, digest = packaging.build_layer(arch, "3.12")
    site = folder / "python"  # where Lambda puts a layer's Python packages on sys.path
    for package in ("pluggy", "cryptography", "urllib3"):
        assert (site / package).is_dir(), package
    binaries = list(site.rglob("*.so"))
    assert any("cryptography" in b.parts for b in binaries)
    assert {elf_machine(b) for b in binaries} == {MACHINES[arch]}
    assert not list(site.glob("pulumi*")) and not list(site.glob("boto3*")) and not list(site.glob("sendgrid*"))
    assert not list(site.rglob("*.pyc"))  # --no-compile: same requirements, same files
    assert digest in folder.name


def test_layer_is_rebuilt_only_when_the_requirements_change(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("pluggy==1.6.0\n")
    runs = []

    def fake_pip(command, **kwargs):
        runs.append(command)
        Path(command[command.index("--target") + 1]).mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(packaging.subprocess, "run", fake_pip)
    first, _ = packaging.build_layer("aarch64", "3.12", requirements, tmp_path / "cache")
    again, _ = packaging.build_layer("aarch64", "3.12", requirements, tmp_path / "cache")
    assert first == again and len(runs) == 1
    requirements.write_text("pluggy==1.5.0\n")
    changed, _ = packaging.build_layer("aarch64", "3.12", requirements, tmp_path / "cache")
    other_arch, _ = packaging.build_layer("x86_64", "3.12", requirements, tmp_path / "cache")
    assert len({first, changed, other_arch}) == 3 and len(runs) == 3
    assert (changed / "python").is_dir()
    command = runs[0]
    assert "--only-binary=:all:" in command and command[command.index("--python-version") + 1] == "3.12"
    assert {command[i + 1] for i, a in enumerate(command) if a == "--platform"} >= {"manylinux2014_aarch64"}


def test_a_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("no-such-package==0\n")
    monkeypatch.setattr(packaging.subprocess, "run",
                        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "no matching distribution"))
    with pytest.raises(RuntimeError, match="no matching distribution"):
        packaging.build_layer("x86_64", "3.12", requirements, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_function_package_holds_only_the_lambda_code():
    names = set(packaging.code_archive().assets)
    assert {"handlers/webhook.py", "handlers/sender.py", "handlers/manager.py", "plugins/dynamodb.py"} <= names
    assert all(n.split("/")[0] in ("handlers", "plugins") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("tests/", "infra/", "devstack/")) or "pulumi" in n for n in names)
