"""An item's size as DynamoDB counts it against its 400 KB limit.

The rules of the Developer Guide ("DynamoDB item sizes and formats"): an item
is the sum of its attribute names (UTF-8 bytes) and values, where

- a string is its UTF-8 bytes, a binary its raw bytes (not the base64),
- a number is 1 byte per two significant digits (leading and trailing zeros
  trimmed) + 1 byte,
- a null or a Boolean is 1 byte,
- a list or a map is 3 bytes + its elements, each with 1 byte of overhead (a
  map element's name counts as an attribute name does).

The guide calls the number rule approximate and gives none for sets, so this
errs on the large side: half digits round up, a sign costs a byte, a set
counts like a list. The limit counts names and values: 400 KB, 409,600 bytes.
"""

from __future__ import annotations

import base64
from decimal import Decimal

MAX_ITEM_BYTES = 400 * 1024
COLLECTION_OVERHEAD = 3  # a list or a map
ELEMENT_OVERHEAD = 1     # each element of a list, a map (or, here, a set)


def item_size(item: dict) -> int:
    """Bytes of an item in DynamoDB's wire format (``{"name": {"S": "..."}}``, as a stream image has it)."""
    return sum(_text(name) + value_size(value) for name, value in item.items())


def value_size(value: dict) -> int:
    """Bytes of one typed value (``{"S": ...}``, ``{"M": {...}}``, ...), its name not included.

    Iterative: a value nested any depth is measured without recursion.
    """
    total, pending = 0, [value]
    while pending:
        [(kind, content)] = pending.pop().items()
        if kind in ("M", "L", "SS", "NS", "BS"):
            elements = list(content.values() if kind == "M" else content)
            total += COLLECTION_OVERHEAD + ELEMENT_OVERHEAD * len(elements)
            if kind == "M":
                total += sum(_text(name) for name in content)
            pending += elements if kind in ("M", "L") else [{kind[0]: e} for e in elements]
        else:
            total += _scalar(kind, content)
    return total


def _scalar(kind: str, content) -> int:
    if kind == "S":
        return _text(content)
    if kind == "N":
        return _number(content)
    if kind == "B":
        return len(base64.b64decode(content)) if isinstance(content, str) else len(bytes(content))
    if kind in ("BOOL", "NULL"):
        return 1
    raise ValueError(f"not a DynamoDB type: {kind!r}")


def _text(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _number(text: str) -> int:
    digits = Decimal(text).as_tuple().digits
    significant = "".join(map(str, digits)).strip("0") or "0"
    return -(-len(significant) // 2) + 1 + text.strip().startswith("-")
