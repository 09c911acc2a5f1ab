"""Figure: package sizes: the function package and the layer as ``infra/packaging.py`` builds them.

For the stack defaults (arm64, python3.12, with the runtime's bytecode when
that Python is found), zipped the way Pulumi uploads them (deflate); which
packages make up most of the layer, and which of its distributions nothing
the functions run imports.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
ARCH, PYTHON = "aarch64", "3.12"  # the stack defaults (infra/config.py: arm64, python3.12)


def zipped(files: dict[str, Path]) -> tuple[int, int]:
    """(zip size, unzipped size) of ``files`` (archive name -> path)."""
    buffer = io.BytesIO()
    raw = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files.items():
            archive.write(path, name)
            raw += path.stat().st_size
    return buffer.tell(), raw


def largest_parts(python: Path, count: int = 4) -> list[tuple[str, int]]:
    """The biggest top-level entries of a layer's ``python/`` folder (packages, with their metadata)."""
    sizes: dict[str, int] = {}
    for path in python.rglob("*"):
        if path.is_file():
            top = path.relative_to(python).parts[0]
            top = top.split("-")[0].lower() if top.endswith(".dist-info") else top.lower()
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:count]


LOADED = ("import sys, importlib, handlers.webhook, handlers.sender, handlers.manager as m; "
          "[importlib.import_module(p) for p in m.BUILTIN_PLUGINS.values()]; "
          "import cryptography.exceptions, cryptography.hazmat.primitives.hashes, "
          "cryptography.hazmat.primitives.asymmetric.ec, cryptography.hazmat.primitives.serialization; "
          "print(' '.join(sorted({n.split('.')[0] for n in sys.modules})))")


def unused_distributions(python: Path) -> list[tuple[str, int]]:
    """Distributions in the layer none of whose modules the handlers and built-in plugins import.

    Read from each ``*.dist-info/RECORD`` (the files a distribution installed);
    the imports from a fresh process that loads every handler and plugin and
    what the webhook loads on its first request.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loaded = set(subprocess.run([sys.executable, "-c", LOADED], cwd=ROOT, env=env, capture_output=True,
                                text=True, check=True, timeout=60).stdout.split())
    unused = []
    for info in sorted(python.glob("*.dist-info")):
        files = [line.rsplit(",", 2)[0] for line in (info / "RECORD").read_text().splitlines() if line]
        modules = {f.split("/")[0].split(".")[0] for f in files if not f.split("/")[0].endswith(".dist-info")
                   and not f.startswith(("bin/", "../"))}
        if modules and not modules & loaded:
            size = sum((python / f).stat().st_size for f in files if (python / f).is_file())
            unused.append((info.name.split("-")[0], size))
    return unused


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def size_rows(layer: bool) -> list[Row]:
    from infra import bytecode, packaging  # pulumi: imported only when sizes are measured

    compiler = bytecode.interpreter(PYTHON)
    code = packaging.folder_files(packaging.build_code(PYTHON, compiler=compiler))
    code_zip, code_raw = zipped(code)
    rows = [Row("package size", "function package (handlers/, plugins/)", None, f"{mb(code_zip)} zipped",
                "", f"{mb(code_raw)} unzipped, {len(code)} files ({bytecode.tag(compiler)})")]
    if not layer:
        rows.append(Row("package size", f"layer ({ARCH}, py{PYTHON})", None, "not measured (quick run)", "", ""))
        return rows
    folder, _ = packaging.build_layer(ARCH, PYTHON, compiler=compiler)  # pip, from PyPI, unless built before
    rows += layer_rows(folder)
    return rows


def layer_rows(folder: Path) -> list[Row]:
    """Sizes of a built layer folder (holding ``python/``)."""
    from infra import packaging

    rows = []
    layer_zip, layer_raw = zipped(packaging.folder_files(folder))
    parts = ", ".join(f"{name} {mb(size)}" for name, size in largest_parts(folder / "python"))
    rows.append(Row("package size", f"layer ({ARCH}, py{PYTHON}, requirements-lambda.txt)", None,
                    f"{mb(layer_zip)} zipped", "", f"{mb(layer_raw)} unzipped (limit 250 MB); largest: {parts}"))
    unused = unused_distributions(folder / "python")
    if unused:
        rows.append(Row("package size", "layer: never imported by handlers/plugins", None,
                        f"{mb(sum(size for _, size in unused))} unzipped", "",
                        ", ".join(f"{name} {mb(size)}" for name, size in unused)))
    return rows


def run(quick: bool = False) -> list[Row]:
    return size_rows(layer=not quick)


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
