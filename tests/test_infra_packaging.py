"""The Lambda layer (real pip, wheels from PyPI, cached under build/layers) and the function package.

Bytecode is compiled by the runtime's Python: the tests that need python3.12
find it as ``pulumi up`` does (``infra.bytecode.interpreter``: PATH, then
pyenv) and are skipped where it is missing; without it the packages ship
source only, which is tested everywhere.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bytecode, packaging

# ELF e_machine of each architecture.
MACHINES = {"x86_64": 62, "aarch64": 183}
# importlib.util.MAGIC_NUMBER of each runtime (Lib/importlib/_bootstrap_external.py), written out here
# so the check does not trust the interpreter that compiled the files.
MAGIC = {"3.12": (3531).to_bytes(2, "little") + b"\r\n", "3.13": (3571).to_bytes(2, "little") + b"\r\n"}
UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: hash-based, check_source off
PY312 = bytecode.interpreter("3.12")
needs_py312 = pytest.mark.skipif(PY312 is None, reason="python3.12 not found (PATH, pyenv): no bytecode to check")


def assert_compiled_for(folder: Path, version: str, runtime_path: str) -> None:
    """Every ``.py`` under ``folder`` has its ``.pyc`` for ``version``, unchecked-hash, naming ``runtime_path``."""
    sources = sorted(folder.rglob("*.py"))
    assert sources
    tag = "cpython-" + version.replace(".", "")
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        header = pyc.read_bytes()[:16]
        assert header[:4] == MAGIC[version], pyc
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS, pyc
    sample = sources[0].parent / "__pycache__" / f"{sources[0].stem}.{tag}.pyc"
    expected = f"{runtime_path}/{sources[0].relative_to(folder).as_posix()}".encode()
    assert expected in sample.read_bytes()  # co_filename: the path in Lambda, not this machine's
    assert str(folder).encode() not in sample.read_bytes()


def contents(folder: Path) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in packaging.folder_files(folder).items()}


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return struct.unpack("<H", header[18:20])[0]


@pytest.mark.parametrize("arch", sorted(MACHINES))
def test_layer_holds_the_runtime_requirements_built_for_the_architecture(arch):
    folder, digest = packaging.build_layer(arch, "3.12", compiler=None)
    site = folder / "python"  # where Lambda puts a layer's Python packages on sys.path
    for package in ("pluggy", "cryptography", "urllib3"):
        assert (site / package).is_dir(), package
    binaries = list(site.rglob("*.so"))
    assert any("cryptography" in b.parts for b in binaries)
    assert {elf_machine(b) for b in binaries} == {MACHINES[arch]}
    assert not list(site.glob("pulumi*")) and not list(site.glob("boto3*")) and not list(site.glob("sendgrid*"))
    assert not list(site.rglob("*.pyc"))  # no compiler: pip's --no-compile, source only
    assert digest in folder.name


@needs_py312
def test_layer_ships_bytecode_of_the_runtime_python():
    folder, digest = packaging.build_layer("x86_64", "3.12", compiler=PY312)
    assert_compiled_for(folder / "python", "3.12", packaging.LAYER_PATH)
    source_only, other = packaging.build_layer("x86_64", "3.12", compiler=None)
    assert other != digest and source_only != folder  # a layer of its own: never one name, two contents


@needs_py312
def test_same_inputs_give_the_same_layer_and_function_package(tmp_path):
    """Built twice from scratch (other folders, other file times): the same names, bytes and hash."""
    first, first_digest = packaging.build_layer("x86_64", "3.12", cache=tmp_path / "a", compiler=PY312)
    again, again_digest = packaging.build_layer("x86_64", "3.12", cache=tmp_path / "b", compiler=PY312)
    assert first_digest == again_digest and first.name == again.name
    assert contents(first) == contents(again)
    code = packaging.build_code("3.12", cache=tmp_path / "c", compiler=PY312)
    code_again = packaging.build_code("3.12", cache=tmp_path / "d", compiler=PY312)
    assert code.name == code_again.name and contents(code) == contents(code_again)
    assert any(name.endswith(".cpython-312.pyc") for name in contents(code))


def test_layer_is_rebuilt_only_when_the_requirements_change(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("pluggy==1.6.0\n")
    runs = []

    def fake_pip(command, **kwargs):
        runs.append(command)
        Path(command[command.index("--target") + 1]).mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(packaging.subprocess, "run", fake_pip)
    first, _ = packaging.build_layer("aarch64", "3.12", requirements, tmp_path / "cache", compiler=None)
    again, _ = packaging.build_layer("aarch64", "3.12", requirements, tmp_path / "cache", compiler=None)
    assert first == again and len(runs) == 1
    requirements.write_text("pluggy==1.5.0\n")
    changed, _ = packaging.build_layer("aarch64", "3.12", requirements, tmp_path / "cache", compiler=None)
    other_arch, _ = packaging.build_layer("x86_64", "3.12", requirements, tmp_path / "cache", compiler=None)
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
        packaging.build_layer("x86_64", "3.12", requirements, tmp_path / "cache", compiler=None)
    assert list((tmp_path / "cache").iterdir()) == []


def test_function_package_holds_only_the_lambda_code(tmp_path):
    (tmp_path / "handlers" / "__pycache__").mkdir(parents=True)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "plugins" / "sns").mkdir()
    for name in ("handlers/webhook.py", "plugins/dynamodb.py", "plugins/sns/__init__.py", "plugins/sns/deploy.py",
                 "tests/test_x.py"):
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "handlers" / "__pycache__" / "webhook.cpython-311.pyc").write_bytes(b"stale")
    names = set(packaging.code_archive("3.12", tmp_path, tmp_path / "build", compiler=None).assets)
    # no tests, no stale caches, no bytecode, no plugin's deploy half
    assert names == {"handlers/webhook.py", "plugins/dynamodb.py", "plugins/sns/__init__.py"}
    shipped = set(packaging.code_files())
    assert {"handlers/webhook.py", "handlers/sender.py", "handlers/manager.py", "plugins/dynamodb/__init__.py",
            "plugins/sns/__init__.py"} <= shipped
    assert not any(n.endswith("/deploy.py") for n in shipped)
    assert all(n.split("/")[0] in ("handlers", "plugins") for n in shipped)
    assert not any(n.startswith(("tests/", "infra/", "devstack/")) or "pulumi" in n for n in shipped)


@pytest.mark.parametrize("version", sorted(MAGIC))
def test_function_package_ships_bytecode_of_the_runtime_python(version):
    python = bytecode.interpreter(version)
    if python is None:
        pytest.skip(f"python{version} not found (PATH, pyenv): no bytecode to check")
    tag = "cpython-" + version.replace(".", "")
    names = set(packaging.code_archive(version, compiler=python).assets)
    assert {f"handlers/__pycache__/webhook.{tag}.pyc", f"plugins/dynamodb/__pycache__/__init__.{tag}.pyc"} <= names
    assert not any(".pyc" in n and tag not in n for n in names)  # nothing from this machine's Python
    assert not any(".opt-" in n for n in names)  # Lambda runs without -O
    assert_compiled_for(packaging.build_code(version, compiler=python), version, packaging.TASK_PATH)


def fake_python(path: Path, says: str | None) -> None:
    """An executable at ``path`` that prints ``says`` as its version (None: fails, as a pyenv shim does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {says}\n" if says else "#!/bin/sh\necho 'pyenv: not found' >&2; exit 127\n")
    path.chmod(0o755)


def test_the_runtime_python_is_found_on_path_then_under_pyenv(tmp_path, monkeypatch):
    shims, pyenv = tmp_path / "shims", tmp_path / "pyenv"
    fake_python(shims / "python3.12", None)  # on PATH but not selected: does not run
    for release in ("3.12.1", "3.12.10", "3.12.2"):
        fake_python(pyenv / "versions" / release / "bin" / "python3.12", "3.12")
    fake_python(pyenv / "versions" / "3.13.0" / "bin" / "python3.13", "3.12")  # claims the wrong version
    monkeypatch.setenv("PATH", str(shims))
    monkeypatch.setenv("PYENV_ROOT", str(pyenv))
    assert bytecode.candidates("3.12")[0] == shims / "python3.12"
    assert bytecode.interpreter("3.12") == pyenv / "versions" / "3.12.10" / "bin" / "python3.12"
    assert bytecode.interpreter("3.13") is None and bytecode.interpreter("3.9") is None
    fake_python(shims / "python3.11", "3.11")
    assert bytecode.interpreter("3.11") == shims / "python3.11"
    assert "pyenv install 3.13" in bytecode.missing("3.13")


def test_every_runtime_module_imports_where_pulumi_and_infra_cannot():
    """What ships to Lambda (handlers/, plugins/ without their deploy halves) never reaches the deploy side."""
    modules = sorted({name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                      for name in packaging.code_files() if name.endswith(".py")})
    script = (
        "import importlib, importlib.abc, sys\n"
        "class NotInLambda(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pulumi', 'pulumi_aws', 'pulumi_random', 'infra', 'devstack'):\n"
        "            raise ModuleNotFoundError(f'{name} is not in Lambda', name=name)\n"
        "sys.meta_path.insert(0, NotInLambda())\n"
        "for module in sys.argv[1:]:\n"
        "    importlib.import_module(module)\n"
        "print(len(sys.argv) - 1)\n")
    answer = subprocess.run([sys.executable, "-c", script, *modules], cwd=packaging.ROOT, capture_output=True,
                            text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert int(answer.stdout) == len(modules) > 20 and "plugins.sns" in modules and "plugins.inbound" in modules


def test_no_runtime_module_imports_the_deploy_side_even_inside_a_function():
    """The import graph: no arrow from what ships (handlers/, plugins/ runtime modules) to pulumi or infra."""
    import ast

    arrows = []
    for name, path in packaging.code_files().items():
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            arrows += [(name, t) for t in targets if t.split(".")[0] in ("pulumi", "pulumi_aws", "infra")]
    assert arrows == []
