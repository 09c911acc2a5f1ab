"""An item's DynamoDB size, by the Developer Guide's rules ("DynamoDB item sizes and formats")."""

import base64

import pytest

from handlers import dynamo
from handlers.item_size import item_size


@pytest.mark.parametrize("attribute, size", [
    ({"id": {"S": "abc"}}, 2 + 3),
    ({"név": {"S": "ñé"}}, 4 + 4),                      # UTF-8 bytes, in the name too
    ({"n": {"N": "123"}}, 1 + 2 + 1),                   # 3 digits: 2 bytes (rounded up) + 1
    ({"n": {"N": "0.00100"}}, 1 + 1 + 1),               # leading and trailing zeros trimmed
    ({"n": {"N": "-12"}}, 1 + 1 + 1 + 1),               # a sign: one more byte (errs large)
    ({"n": {"N": "1E+125"}}, 1 + 1 + 1),
    ({"b": {"B": base64.b64encode(b"\x00\x01\x02").decode()}}, 1 + 3),  # raw bytes, not the base64
    ({"b": {"B": b"\x00\x01\x02"}}, 1 + 3),
    ({"t": {"BOOL": False}}, 1 + 1),
    ({"z": {"NULL": True}}, 1 + 1),
    ({"l": {"L": []}}, 1 + 3),
    ({"l": {"L": [{"S": "a"}, {"N": "1"}]}}, 1 + 3 + (1 + 1) + (1 + 2)),
    ({"m": {"M": {"ab": {"S": "xyz"}}}}, 1 + 3 + (1 + 2 + 3)),
    ({"s": {"SS": ["ab", "c"]}}, 1 + 3 + (1 + 2) + (1 + 1)),  # a set counts like a list (errs large)
    ({"s": {"NS": ["10", "2"]}}, 1 + 3 + (1 + 2) + (1 + 2)),
])
def test_each_type_counts_by_the_guides_rules(attribute, size):
    assert item_size(attribute) == size


def test_an_item_is_the_sum_of_its_attributes_and_reads_what_serialize_writes():
    item = {"id": "m1", "to": [{"email": "a@example.com"}], "n": 7}
    assert item_size(dynamo.serialize(item)) == (2 + 2) + (2 + 3 + 1 + (3 + 5 + 1 + 13)) + (1 + 1 + 1)


def test_a_value_nested_far_deeper_than_recursion_allows_is_measured():
    value = {"S": "x"}
    for _ in range(20_000):
        value = {"L": [value]}
    assert item_size({"d": value}) == 1 + 20_000 * (3 + 1) + 1

