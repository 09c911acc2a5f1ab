"""handlers.attribute_values against boto3's TypeSerializer and TypeDeserializer, on generated values."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.attribute_values import deserialize, deserialize_item, serialize, serialize_item

BOTO_IN, BOTO_OUT = TypeSerializer(), TypeDeserializer()

numbers = st.one_of(
    st.integers(min_value=-10 ** 38 + 1, max_value=10 ** 38 - 1),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e120, max_value=1e120).filter(
        lambda f: f == 0 or abs(f) > 1e-120),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-10 ** 30, max_value=10 ** 30),
)
scalars = st.one_of(st.none(), st.booleans(), st.text(max_size=20), st.binary(max_size=10), numbers)
sets = st.one_of(st.frozensets(st.text(max_size=5), min_size=1, max_size=4),
                 st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=4),
                 st.frozensets(st.binary(max_size=4), min_size=1, max_size=4))
values = st.recursive(st.one_of(scalars, sets), lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)


def boto3_plain(value):
    """What the handlers gave boto3 before: floats as the Decimal of their repr, None left out of maps."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: boto3_plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [boto3_plain(v) for v in value]
    if isinstance(value, frozenset):
        return set(value)
    return value


def read_plain(value):
    """boto3's reading made plain: numbers int when integral, else float; Binary as bytes."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: read_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [read_plain(v) for v in value]
    if isinstance(value, set):
        return {read_plain(v) for v in value}
    if hasattr(value, "value") and isinstance(value.value, bytes):
        return value.value
    return value


def as_sets(serialized):
    """Set members in a canonical order (a set's list is in no order)."""
    if isinstance(serialized, dict):
        return {k: sorted(map(repr, v)) if k in ("SS", "NS", "BS") else as_sets(v) for k, v in serialized.items()}
    if isinstance(serialized, list):
        return [as_sets(v) for v in serialized]
    return serialized


@settings(max_examples=400, deadline=None)
@given(values)
def test_serialize_writes_what_boto3_writes(value):
    assert as_sets(serialize(value)) == as_sets(BOTO_IN.serialize(boto3_plain(value)))


@settings(max_examples=400, deadline=None)
@given(values)
def test_deserialize_reads_what_boto3_reads(value):
    written = BOTO_IN.serialize(boto3_plain(value))
    assert deserialize(written) == read_plain(BOTO_OUT.deserialize(written))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=6))
def test_an_item_comes_back_as_it_went_in_less_its_nones(item):
    back = deserialize_item(serialize_item(item))
    assert back == read_plain(BOTO_OUT.deserialize({"M": BOTO_IN.serialize(boto3_plain(item))["M"]}))
    assert set(back) == {k for k, v in item.items() if v is not None}


@pytest.mark.parametrize("value", [10 ** 38, -10 ** 38, Decimal("1.00000000000000000000000000000000000001"),
                                   Decimal("1e200"), 1e-200, Decimal("1e-170")])
def test_a_number_dynamodb_cannot_hold_raises_as_boto3_does(value):
    with pytest.raises(ArithmeticError):
        BOTO_IN.serialize(boto3_plain(value))
    with pytest.raises(ArithmeticError):
        serialize(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("-Infinity"), Decimal("NaN"), {1, "a"}])
def test_what_dynamodb_has_no_attribute_for_is_a_type_error(value):
    with pytest.raises(TypeError):
        serialize({"event": [value]})


def test_an_error_never_holds_the_value():
    class Secret:
        def __repr__(self):
            return "hunter2"

    with pytest.raises(TypeError) as boto3_raised:
        BOTO_IN.serialize(Secret())
    assert "hunter2" in str(boto3_raised.value)  # boto3's own message would carry it
    with pytest.raises(TypeError) as raised:
        serialize({"event": [Secret()]})
    assert "hunter2" not in str(raised.value) and "Secret" in str(raised.value)


@pytest.mark.parametrize("bad", [{}, {"S": "a", "N": "1"}, {"X": "1"}])
def test_an_attribute_value_without_exactly_one_known_type_is_refused(bad):
    with pytest.raises(TypeError):
        deserialize(bad)
