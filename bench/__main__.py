"""Run the benchmarks and print one table: ``python -m bench [--quick] [--only NAME ...] [--markdown]``.

Each figure is a module of ``bench`` with ``run(quick: bool) -> list[Row]``;
``--quick`` runs each on a tiny input (what the smoke test does).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import platform
import sys
import time
from datetime import datetime, timezone

from bench.common import Row

FIGURES = ("webhook_batch", "signature", "sender", "cold_start", "package_size", "devstack_run", "ingest")
HEADER = ("figure", "case", "ratio", "project", "baseline", "note")


def cells(row: Row) -> tuple[str, ...]:
    return (row.figure, row.case, row.ratio_text(), row.project, row.baseline, row.note)


def print_rows(rows: list[Row], markdown: bool = False, out=None) -> None:
    out = out or sys.stdout
    table = [HEADER, *(cells(r) for r in rows)]
    if markdown:
        for i, line in enumerate(table):
            print("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |", file=out)
            if i == 0:
                print("|" + "|".join("---" for _ in line) + "|", file=out)
        return
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    for i, line in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip(), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one repetition (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=FIGURES, metavar="NAME",
                        help=f"run only these figures ({', '.join(FIGURES)})")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the handlers' per-batch and per-mail log lines
    started = time.monotonic()
    rows: list[Row] = []
    try:
        for name in args.only or FIGURES:
            print(f"... {name}", file=sys.stderr, flush=True)
            module = importlib.import_module(f"bench.{name}")
            rows += module.run(quick=args.quick)
    finally:
        logging.disable(disabled)  # as it was (main also runs inside the tests)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}; "
          f"python -m bench {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print_rows(rows, markdown=args.markdown)
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
