"""DynamoDB's documented limits (functions/replication/limits.py). Right values from the DynamoDB
developer guide: "Supported data types and naming rules", "Constraints", "Item sizes and formats"."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, Inexact

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replication.limits import (
    MAX_ITEM_BYTES,
    NUMBER_CONTEXT,
    canonical_number,
    item_size,
    number_problem,
    parse_number,
    value_size,
)

from .test_numbers import dynamodb_numbers

LARGEST = "9.9999999999999999999999999999999999999E+125"


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "1E-130",
        "-1E-130",
        LARGEST,
        "-" + LARGEST,
        "12345678901234567890123456789012345678",
        "1795993218.711183071136474609375",
        "1.000000000000000000000000000000000000000000000",
        "+7",
        ".5",
        "5.",
    ],
)
def test_numbers_dynamodb_accepts(text: str) -> None:
    assert number_problem(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "1E-131",
        "1E+126",
        "10E+125",
        "123456789012345678901234567890123456789",
        "1E+200",
        "1E+999999999",
        "NaN",
        "Infinity",
        "1_000",
        "",
        " 1",
        "0x10",
        "1e",
        "١٢",
    ],
)
def test_numbers_dynamodb_refuses(text: str) -> None:
    assert number_problem(text) is not None
    assert parse_number(text) is None


def test_numbers_are_stored_with_leading_and_trailing_zeros_trimmed() -> None:
    assert canonical_number(Decimal("0001.2300")) == "1.23"
    assert canonical_number(Decimal("1.2E+3")) == "1200"
    assert canonical_number(Decimal("-0.000")) == "0"


@given(
    st.integers(min_value=1, max_value=10**38 - 1),
    st.integers(min_value=-130 - 37, max_value=125 - 37),
    st.booleans(),
)
def test_every_number_in_dynamodbs_domain_round_trips_exactly(
    digits: int, exponent: int, negative: bool
) -> None:
    value = Decimal(f"{'-' if negative else ''}{digits}E{exponent}")
    if number_problem(str(value)) is not None:  # below 1E-130 or above the largest number
        return
    text = canonical_number(value)
    assert Decimal(text) == value
    assert parse_number(text) == value
    assert canonical_number(Decimal(text)) == text


def test_a_38_digit_number_keeps_all_its_digits() -> None:
    # Decimal.normalize() in Python's default 28-digit context would round this one.
    text = "12345678901234567890.123456789012345678"
    assert canonical_number(parse_number(text)) == text


def test_arithmetic_that_would_round_raises_instead() -> None:
    with pytest.raises(Inexact):
        NUMBER_CONTEXT.add(Decimal("1E+125"), Decimal("1E-130"))
    assert NUMBER_CONTEXT.add(Decimal("1795993218.711183071136474609375"), Decimal("0.000001")) == Decimal(
        "1795993218.711184071136474609375"
    )


def test_item_size_counts_names_and_values_as_documented() -> None:
    item = {
        "pk": {"S": "用户"},  # 2 + 6 (UTF-8)
        "n": {"N": "-0012.3400"},  # 1 + (4 digits: 2 bytes) + 1
        "b": {"B": "AAEC"},  # 1 + 3 raw bytes
        "flag": {"BOOL": True},  # 4 + 1
        "none": {"NULL": True},  # 4 + 1
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + (1 + 1 + 1): name, value, element
        "l": {"L": [{"N": "1"}, {"S": ""}]},  # 1 + 3 + (2 + 1) + (0 + 1)
        "ss": {"SS": ["a", "bc"]},  # 2 + 3
    }
    assert item_size(item) == 8 + 4 + 4 + 5 + 5 + 7 + 8 + 5


def test_the_item_limit_is_400_kb_with_names() -> None:
    assert MAX_ITEM_BYTES == 409_600
    assert item_size({"pk": {"S": "k"}, "d": {"S": "x" * (409_600 - 4)}}) == MAX_ITEM_BYTES


# The same number as a writer may send it (DynamoDB reads them all: "Supported data types and naming
# rules"; leading and trailing zeros are trimmed).
NOTATIONS: dict[str, Callable[[str], str]] = {
    "as drawn": lambda text: text,
    "plus sign": lambda text: text if text.startswith("-") else "+" + text,
    "leading zeros": lambda text: "-00" + text[1:] if text.startswith("-") else "00" + text,
    "scientific, lower-case e": lambda text: format(Decimal(text), "e"),
    "scientific, upper-case E": lambda text: format(Decimal(text), "E"),
}


@given(dynamodb_numbers(), st.sampled_from(sorted(NOTATIONS)))
def test_a_numbers_size_counts_its_significant_digits_whatever_its_notation(text: str, notation: str) -> None:
    # "DynamoDB item sizes and formats" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
    # CapacityUnitCalculations.html): "Leading and trailing zeroes are trimmed. The size of a number is
    # approximately ... (1 byte per two significant digits) + (1 byte)."
    written = NOTATIONS[notation](text)
    assert number_problem(written) is None
    significant = "".join(map(str, Decimal(written).as_tuple().digits)).strip("0")
    assert value_size({"N": written}) == math.ceil(max(1, len(significant)) / 2) + 1
