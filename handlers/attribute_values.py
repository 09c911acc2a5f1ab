"""Plain Python values <-> DynamoDB attribute values (``{"S": "..."}``, ``{"N": "12"}``, ``{"M": {...}}``).

What ``boto3.dynamodb.types``' TypeSerializer and TypeDeserializer do, for the
handlers, which load botocore alone: importing anything under ``boto3`` runs
``boto3/__init__``, which loads s3transfer, concurrent.futures and
multiprocessing, about 14 ms of every cold start (bench/README.md, cold start).
``tests/test_attribute_values.py`` checks these against boto3's on generated
values.

Beyond boto3's: a ``float`` is stored as the ``Decimal`` of its shortest repr,
``None`` inside a map (and at the top of an item, ``serialize_item``) is left
out, and numbers read back are ``int`` when integral, else ``float``. A value
DynamoDB cannot hold raises: ``TypeError`` for a type it has no attribute for
(or NaN, infinity), ``ArithmeticError`` (decimal's ``Inexact``, ``Rounded``,
``Overflow``, ...) for a number over 38 digits or out of its range. Messages
never hold the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow

# DynamoDB's numbers: 38 significant digits, magnitude 1E-130 to 9.99...E+125 (boto3's DYNAMODB_CONTEXT).
NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])
_SMALL_INT = 10 ** 38  # an int below this in magnitude is exact in 38 digits: its str() is its N


def serialize_item(item: Mapping) -> dict:
    """An item (attribute -> plain value) as DynamoDB's ``Item``; attributes set to ``None`` are left out."""
    return {name: serialize(value) for name, value in item.items() if value is not None}


def serialize(value) -> dict:
    """One plain value as an attribute value (see the module)."""
    if value is None:
        return {"NULL": True}
    if value is True or value is False:
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):  # not a bool: True and False are the only ones, above
        return {"N": _number(value)}
    if isinstance(value, Mapping):
        return {"M": {k: serialize(v) for k, v in value.items() if v is not None}}
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, (set, frozenset)):
        return _set(value)
    raise TypeError(f"DynamoDB has no attribute type for a {type(value).__name__}")


def deserialize_item(item: Mapping) -> dict:
    """DynamoDB's ``Item`` (or a stream image) as plain values."""
    return {name: deserialize(value) for name, value in item.items()}


def deserialize(value: Mapping):
    """One attribute value as a plain value (numbers: ``int`` when integral, else ``float``)."""
    if len(value) != 1:
        raise TypeError("an attribute value has exactly one type key")
    [(kind, held)] = value.items()
    if kind == "S" or kind == "BOOL":
        return held
    if kind == "N":
        return _read_number(held)
    if kind == "M":
        return {k: deserialize(v) for k, v in held.items()}
    if kind == "L":
        return [deserialize(v) for v in held]
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(held)
    if kind == "SS":
        return set(held)
    if kind == "NS":
        return {_read_number(n) for n in held}
    if kind == "BS":
        return {bytes(b) for b in held}
    raise TypeError(f"unknown attribute type {kind[:20]!r}")


def _number(value: int | float | Decimal) -> str:
    if type(value) is int and -_SMALL_INT < value < _SMALL_INT:
        return str(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    number = str(NUMBERS.create_decimal(value))
    if number in ("Infinity", "-Infinity", "NaN", "-NaN", "sNaN", "-sNaN"):
        raise TypeError("DynamoDB numbers cannot be infinite or NaN")
    return number


def _read_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
        return int(number) if number == number.to_integral_value() else float(number)


def _set(values: set | frozenset) -> dict:
    """A string, number or binary set (an empty set is a number set, as boto3 makes it; DynamoDB refuses it)."""
    if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in values):
        return {"NS": [_number(v) for v in values]}
    if all(isinstance(v, str) for v in values):
        return {"SS": list(values)}
    if all(isinstance(v, (bytes, bytearray)) for v in values):
        return {"BS": [bytes(v) for v in values]}
    raise TypeError("a DynamoDB set holds only strings, only numbers or only binary values")
