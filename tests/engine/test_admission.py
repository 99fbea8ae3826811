"""The checks before writing (functions/replication/admission.py) count an item's size exactly as
``limits.item_size`` does (DynamoDB developer guide, "DynamoDB item sizes and formats"), in one walk."""

from __future__ import annotations

import base64
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from replication.admission import check_item
from replication.limits import canonical_number, item_size

names = st.text(min_size=1, max_size=8)
numbers = st.decimals(
    min_value=Decimal("-1E+30"), max_value=Decimal("1E+30"), allow_nan=False, allow_infinity=False, places=6
).map(canonical_number)
binaries = st.binary(min_size=1, max_size=16).map(lambda b: base64.b64encode(b).decode())
scalars = st.one_of(
    st.text(max_size=20).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(st.text(max_size=8), min_size=1, max_size=4, unique=True).map(lambda s: {"SS": s}),
    st.lists(numbers, min_size=1, max_size=4, unique_by=Decimal).map(lambda s: {"NS": s}),
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
def test_the_checks_count_an_items_size_as_dynamodb_does(item: dict) -> None:
    assert check_item(item) == item_size(item)
