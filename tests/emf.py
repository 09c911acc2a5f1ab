"""A checker of CloudWatch Embedded Metric Format documents, after the format's specification.

``problems(line)`` lists what in one log line breaks the specification's
structure (empty: a valid EMF document): the root is a JSON object (nothing
before or after it) with an ``_aws`` metadata object holding ``Timestamp``
(epoch milliseconds) and ``CloudWatchMetrics``, an array of metric directives
``{Namespace, Dimensions, Metrics}`` and no other member; each dimension set is
an array of at most 30 dimension names, each a top-level string member; each
metric definition ``{Name, Unit?, StorageResolution?}`` names a top-level
member whose value is a number or an array of at most 100 numbers; at most
100 metrics per directive; ``Unit`` one of CloudWatch's units.
"""

from __future__ import annotations

import json
import numbers

UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}
MAX_BYTES = 1024 * 1024  # a CloudWatch Logs event
DIRECTIVE = {"Namespace", "Dimensions", "Metrics"}
DEFINITION = {"Name", "Unit", "StorageResolution"}


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _name(value, limit: int = 255) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= limit


def problems(line: str) -> list[str]:
    """What breaks the specification in ``line`` (one log event); [] when it is a valid EMF document."""
    if len(line.encode()) > MAX_BYTES:
        return ["larger than a log event"]
    try:
        root = json.loads(line)
    except ValueError:
        return ["not one JSON value (data before or after the object?)"]
    if not isinstance(root, dict) or not isinstance(root.get("_aws"), dict):
        return ["no _aws metadata object at the root"]
    meta, found = root["_aws"], []
    if not (isinstance(meta.get("Timestamp"), int) and not isinstance(meta["Timestamp"], bool)
            and meta["Timestamp"] >= 0):
        found.append("_aws.Timestamp is not epoch milliseconds (a non-negative integer)")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return found + ["_aws.CloudWatchMetrics is not an array"]
    for d in directives:
        if not isinstance(d, dict) or set(d) - DIRECTIVE or not {"Namespace", "Metrics"} <= set(d):
            found.append(f"directive {d!r}: members must be Namespace, Dimensions, Metrics")
            continue
        if not _name(d["Namespace"]):
            found.append("Namespace is not a 1-255 character string")
        for group in d.get("Dimensions", []):
            if not isinstance(group, list) or len(group) > 30:
                found.append(f"dimension set {group!r} is not an array of at most 30 names")
                continue
            found += [f"dimension {k!r} has no string member at the root" for k in group
                      if not isinstance(root.get(k), str)]
        metrics = d["Metrics"]
        if not isinstance(metrics, list) or len(metrics) > 100:
            found.append("Metrics is not an array of at most 100 definitions")
            continue
        for m in metrics:
            if not isinstance(m, dict) or set(m) - DEFINITION or not _name(m.get("Name")):
                found.append(f"metric definition {m!r} is not {{Name, Unit?, StorageResolution?}}")
                continue
            if "Unit" in m and m["Unit"] not in UNITS:
                found.append(f"{m['Name']}: unit {m['Unit']!r} is not a CloudWatch unit")
            if m.get("StorageResolution", 60) not in (1, 60):
                found.append(f"{m['Name']}: StorageResolution must be 1 or 60")
            value = root.get(m["Name"])
            if not (_number(value) or (isinstance(value, list) and 0 < len(value) <= 100
                                       and all(_number(v) for v in value))):
                found.append(f"{m['Name']}: the root member is not a number or an array of 1-100 numbers")
    return found
