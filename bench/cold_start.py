"""Figure: cold start: handler import time next to a bare ``import boto3``, and what is shipped.

Import time: ``python -X importtime -c "import <module>"`` in fresh
processes, the runs of each target interleaved (boto3, webhook, sender,
boto3, ...), after one untimed run each (so ``.pyc`` files exist, as they do
in a deployed layer); the figure is the median, over the runs, of the
cumulative microseconds of the imports the ``-c`` code made (interpreter
start-up excluded). ``import boto3`` is the baseline: the Lambda runtime
ships boto3, and a function that does anything with AWS imports it.
"webhook, first request" adds what the handler loads lazily on its first
request: the plugin set (``enabled_plugins()``) and ``cryptography``'s ECDSA.

Sizes: the function package and the layer as ``infra/packaging.py`` builds
them for the stack defaults (arm64, python3.12), zipped the way Pulumi
uploads them (deflate); and which packages make up most of the layer.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.common import Row, median

ROOT = Path(__file__).resolve().parent.parent
MARK = "--bench-mark--"
TARGETS = {
    "boto3": "import boto3",
    "handlers.webhook": "import handlers.webhook",
    "handlers.sender": "import handlers.sender",
    "webhook, first request": ("import handlers.webhook, handlers.manager; handlers.manager.enabled_plugins(); "
                               "import cryptography.exceptions, cryptography.hazmat.primitives.hashes, "
                               "cryptography.hazmat.primitives.asymmetric.ec, "
                               "cryptography.hazmat.primitives.serialization"),
}
RUNS = 15
ARCH, PYTHON = "aarch64", "3.12"  # the stack defaults (infra/config.py: arm64, python3.12)


def import_us(code: str) -> int:
    """Microseconds of the imports ``code`` makes, in a fresh interpreter (``-X importtime``)."""
    program = f"import sys; sys.stderr.write({MARK!r} + '\\n'); sys.stderr.flush(); {code}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("PYTHONDONTWRITEBYTECODE")
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", program], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{result.stderr[-2000:]}")
    lines = result.stderr.split(MARK + "\n", 1)[1].splitlines()
    total = 0
    for line in lines:
        # "import time: self [us] | cumulative | imported package"; nested imports are indented
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not name[1:].startswith(" "):  # top level: one space after the bar
            total += int(cumulative)
    return total


def import_times(targets: dict[str, str], runs: int) -> dict[str, list[int]]:
    for code in targets.values():
        import_us(code)  # warm-up: .pyc files written, files in the page cache
    times: dict[str, list[int]] = {name: [] for name in targets}
    for _ in range(runs):
        for name, code in targets.items():
            times[name].append(import_us(code))
    return times


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
    targets = {k: TARGETS[k] for k in ("boto3", "handlers.webhook")} if quick else TARGETS
    runs = 1 if quick else RUNS
    times = import_times(targets, runs)
    base = median(times["boto3"])
    rows = []
    for name in targets:
        if name == "boto3":
            continue
        value = median(times[name])
        rows.append(Row("cold start", f"import {name}" if name.startswith("handlers") else name, base / value,
                        f"{value / 1000:.0f} ms ({value / base:.2f}x boto3)", f"{base / 1000:.0f} ms (import boto3)",
                        f"-X importtime, median of {runs} fresh processes"))
    return rows + size_rows(layer=not quick)


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
