"""What a command prints: one JSON document (``--json``, for scripts) or rich tables for people.

A command builds its result as plain data and hands it to ``Output.result``
with a function that renders it for people; with ``--json`` the data itself
is printed, nothing else goes to stdout. Notes (which source was read, a
fallback taken) go to stderr. ``progress`` shows a bar on long loops (pages of
a scan, pages of an API) only when stderr is a terminal and not with
``--json``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
from typing import Callable, Iterable, Iterator, Sequence


PIPE_WIDTH = 200  # columns of a table written to a file or a pipe (no terminal to fit)


class Output:
    def __init__(self, as_json: bool = False, *, out=None, err=None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    @property
    def live(self) -> bool:
        """Whether progress bars are shown: a terminal on stderr, and not ``--json``."""
        return not self.as_json and bool(getattr(self.err, "isatty", lambda: False)())

    def console(self, stderr: bool = False):
        """A rich console on stdout (or stderr); into a file or a pipe, lines as long as a table needs."""
        from rich.console import Console

        file = self.err if stderr else self.out
        wide = None if getattr(file, "isatty", lambda: False)() else PIPE_WIDTH
        return Console(file=file, highlight=False, soft_wrap=False, width=wide)

    def result(self, document, render: Callable[[object], None] | None = None) -> None:
        """Print ``document``: as JSON with ``--json``, else through ``render(console)`` (JSON when none)."""
        if self.as_json or render is None:
            json.dump(document, self.out, indent=2, ensure_ascii=False, default=jsonable)
            self.out.write("\n")
        else:
            render(self.console())

    def note(self, text: str) -> None:
        """A line for the operator on stderr (kept out of the JSON on stdout)."""
        print(text, file=self.err)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """``with out.progress("pages", total) as advance: ... advance(1)``; silent unless ``live``."""
        if not self.live:
            yield lambda steps=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, console=self.console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda steps=1: bar.advance(task, steps)

    def track(self, items: Iterable, description: str, total: int | None = None) -> Iterator:
        """``items``, advancing a progress bar by one for each."""
        with self.progress(description, total) as advance:
            for item in items:
                yield item
                advance(1)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence]):
    """A rich table: ``columns`` headers, each row's values as text (None as empty)."""
    from rich.table import Table

    made = Table(title=title, title_justify="left")
    for column in columns:
        made.add_column(column, overflow="fold")
    for row in rows:
        made.add_row(*("" if v is None else str(v) for v in row))
    return made


def jsonable(value):
    """What ``json`` cannot write by itself, as DynamoDB items hold it."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
