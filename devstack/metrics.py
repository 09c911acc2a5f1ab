"""The functions' metrics, read back from their log lines as CloudWatch Logs would extract them.

In AWS, CloudWatch Logs turns each Embedded Metric Format line a function
writes (``handlers.metrics``) into metric data points. Locally there is no
CloudWatch to do it, so this reads the same lines from the local functions'
logs (``devstack.lambdas.Function.logs``) and adds them up: what the
dashboard would show for the run, per function and metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable


def documents(lines: Iterable[str]) -> list[dict]:
    """The EMF documents among ``lines``: whole-line JSON objects with an ``_aws`` member."""
    found = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("_aws"), dict):
            found.append(document)
    return found


@dataclass
class Total:
    """One metric over a run: the sum of its values, how many values, and their unit."""

    unit: str
    sum: float = 0.0
    samples: int = 0

    def add(self, value) -> None:
        values = value if isinstance(value, list) else [value]
        self.sum += sum(values)
        self.samples += len(values)

    def shown(self) -> str:
        if self.unit == "Milliseconds":
            return f"{self.sum / self.samples:.1f} ms average of {self.samples}" if self.samples else "-"
        return f"{self.sum:g}"


def totals(lines: Iterable[str]) -> dict[tuple[str, str, str], Total]:
    """(namespace, dimensions as ``Name=value``, metric) -> its ``Total`` over every EMF line in ``lines``."""
    result: dict[tuple[str, str, str], Total] = {}
    for document in documents(lines):
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            dimensions = ",".join(f"{d}={document.get(d)}" for group in directive.get("Dimensions", [])
                                  for d in group)
            for metric in directive.get("Metrics", []):
                key = (directive["Namespace"], dimensions, metric["Name"])
                result.setdefault(key, Total(metric.get("Unit", "None"))).add(document[metric["Name"]])
    return result


def report(logs: dict[str, Iterable[str]]) -> list[str]:
    """Lines for a person: per function (name -> its log lines), each metric's total; ``-`` when nothing."""
    out = []
    for function, lines in logs.items():
        found = totals(lines)
        if not found:
            continue
        (namespace, dimensions, _), *_ = found
        out.append(f"{function} ({namespace}, {dimensions}, {len(documents(lines))} lines):")
        out.extend(f"  {name:<22} {total.shown()}" for (_, _, name), total in found.items())
    return out
