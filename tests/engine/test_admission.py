"""The checks before writing (functions/replication/admission.py): every item DynamoDB accepts passes
them with its size as DynamoDB documents it, and each documented limit they check refuses what breaks
it, wherever in the item it is, naming the top-level attribute and never a value.

Sizes: "DynamoDB item sizes and formats", DynamoDB developer guide,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html.
Limits: "Supported data types and naming rules" (names, sets) and "Constraints" (400 KB items).
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replication.admission import check_item
from replication.errors import ItemValidationError
from replication.limits import MAX_ATTRIBUTE_NAME_BYTES, MAX_ITEM_BYTES, item_size

from .test_numbers import dynamodb_numbers


def documented_size(value: dict[str, Any]) -> int:
    """A value's size read off the "DynamoDB item sizes and formats" page, bullet by bullet."""
    ((tag, inner),) = value.items()
    if tag == "S":  # "(number of UTF-8-encoded bytes)"
        return len(inner.encode("utf-8"))
    if tag == "N":  # "Leading and trailing zeroes are trimmed"; 1 byte per two significant digits, plus 1
        significant = "".join(map(str, Decimal(inner).as_tuple().digits)).strip("0")
        return math.ceil(max(1, len(significant)) / 2) + 1
    if tag == "B":  # "the value's raw byte length is used"
        return len(base64.b64decode(inner))
    if tag in ("NULL", "BOOL"):  # "(1 byte)"
        return 1
    if tag == "L":  # "3 bytes of overhead ... Each List or Map element also requires 1 byte of overhead"
        return 3 + sum(documented_size(member) + 1 for member in inner)
    if tag == "M":  # the same, an element counting its name as an attribute does
        members = inner.items()
        return 3 + sum(len(name.encode("utf-8")) + documented_size(member) + 1 for name, member in members)
    # Sets: the page gives no overhead; a set counts as its elements.
    return sum(documented_size({tag[0]: element}) for element in inner)


def documented_item_size(item: dict[str, Any]) -> int:
    """The page: "The total size of an item is the sum of the lengths of its attribute names and values"."""
    return sum(len(name.encode("utf-8")) + documented_size(value) for name, value in item.items())


names = st.text(min_size=1, max_size=8)
binaries = st.binary(min_size=1, max_size=16).map(lambda b: base64.b64encode(b).decode())
scalars = st.one_of(
    st.text(max_size=20).map(lambda s: {"S": s}),
    dynamodb_numbers().map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(st.text(max_size=8), min_size=1, max_size=4, unique=True).map(lambda s: {"SS": s}),
    st.lists(dynamodb_numbers(), min_size=1, max_size=4, unique_by=Decimal).map(lambda s: {"NS": s}),
    st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=4, unique=True).map(
        lambda s: {"BS": [base64.b64encode(b).decode() for b in s]}
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: {"L": items}),
        st.dictionaries(names, inner, max_size=4).map(lambda members: {"M": members}),
    ),
    max_leaves=12,
)


@given(st.dictionaries(names, values, min_size=1, max_size=8))
def test_an_item_dynamodb_accepts_passes_the_checks_with_its_documented_size(item: dict) -> None:
    assert check_item(item) == documented_item_size(item) == item_size(item)


def nested(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` deep inside the attribute "doc": in a list in a map."""
    return {"pk": {"S": "user#1"}, "doc": {"M": {"inner": {"L": [{"S": "x"}, value]}}}}


@pytest.mark.parametrize(
    "duplicated",
    [
        {"SS": ["red", "green", "red"]},
        {"NS": ["1.50", "2", "1.5"]},  # the same number: DynamoDB compares numbers, not their text
        {"NS": ["100", "1E+2"]},
        {"BS": ["AAE=", "AAI=", "AAE="]},
    ],
    ids=["SS", "NS trailing zero", "NS exponent", "BS"],
)
def test_a_set_holding_one_value_twice_is_refused_wherever_it_is(duplicated: dict[str, Any]) -> None:
    # "Each value within a set must be unique" ("Supported data types and naming rules").
    with pytest.raises(ItemValidationError, match=r"^attribute 'doc': a set holds the same value twice$"):
        check_item(nested(duplicated))


def test_a_map_member_name_over_64_kb_is_refused_naming_its_attribute() -> None:
    # 21,846 three-byte characters: 65,538 bytes, fewer characters than the limit has bytes.
    long_name = "€" * (MAX_ATTRIBUTE_NAME_BYTES // 3 + 1)
    with pytest.raises(ItemValidationError, match=r"^attribute 'doc': a name is longer than 65,535 bytes$"):
        check_item(nested({"M": {long_name: {"S": "v"}}}))


def test_an_attribute_name_over_64_kb_is_refused_naming_its_start() -> None:
    long_name = "n" * (MAX_ATTRIBUTE_NAME_BYTES + 1)
    with pytest.raises(ItemValidationError, match=f"^attribute '{'n' * 64}...': a name is longer than"):
        check_item({"pk": {"S": "user#1"}, long_name: {"S": "v"}})


def test_names_of_64_kb_are_accepted() -> None:
    name = "n" * MAX_ATTRIBUTE_NAME_BYTES
    item = {"pk": {"S": "user#1"}, name: {"M": {name: {"S": "v"}}}}
    assert check_item(item) == 2 + 6 + 2 * MAX_ATTRIBUTE_NAME_BYTES + 3 + 1 + 1


def test_an_item_of_409600_bytes_is_accepted_and_one_byte_more_refused() -> None:
    # "Constraints": the maximum item size is 400 KB, attribute names included.
    fill = MAX_ITEM_BYTES - len("pk") - len("user#1") - len("doc") - 3 - 1  # a list of one element
    assert check_item({"pk": {"S": "user#1"}, "doc": {"L": [{"S": "x" * fill}]}}) == MAX_ITEM_BYTES
    with pytest.raises(ItemValidationError, match=r"^the item is 409,601 bytes with attribute names, above"):
        check_item({"pk": {"S": "user#1"}, "doc": {"L": [{"S": "x" * (fill + 1)}]}})
