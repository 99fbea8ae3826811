"""Fault 1 of issue 9: no number on the engine's path passes through a context of fewer than 38 digits.

Python's default decimal context keeps 28 digits; DynamoDB keeps 38 ("Supported data types and
naming rules", DynamoDB developer guide: up to 38 digits of precision, positive 1E-130 to
9.9999999999999999999999999999999999999E+125, negative mirrored, leading and trailing zeros trimmed).
``Decimal(time.time())``, what the public sample's load generator writes, has 31 or 32 digits.
"""

from __future__ import annotations

import time
from decimal import Context, Decimal, localcontext
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from replication.changes import Change
from replication.keys import key_digest
from replication.limits import MAX_NUMBER_DIGITS, MIN_NUMBER_EXPONENT, canonical_number, number_problem
from replication.table_writer import Outcome
from replication.versions import STAMP_STEP, Version, after, format_timestamp, parse_timestamp
from replication.wire import KIND_CHANGES, Envelope, decode, encode

from .harness import NAMES, TABLE, Pair, Side

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
# Far beyond any number's precision: exact arithmetic to check the engine's against.
EXACT = Context(prec=400, Emin=-999_999, Emax=999_999)


@st.composite
def dynamodb_numbers(draw: Any) -> str:
    """Any number DynamoDB stores, as a writer may send it: 1 to 38 significant digits, magnitude
    1E-130 to 9.99...E+125 or zero, either sign, scientific or plain notation, trailing zeros."""
    digits = draw(st.integers(min_value=1, max_value=10**MAX_NUMBER_DIGITS - 1))
    length = len(str(digits))
    adjusted = draw(st.integers(min_value=-130, max_value=125))
    value = Decimal(f"{'-' if draw(st.booleans()) else ''}{digits}E{adjusted - length + 1}")
    if draw(st.booleans()):
        return str(value)  # scientific where Python chooses it
    text = format(value, "f")
    zeros = draw(st.integers(min_value=0, max_value=5))
    return text + ("." if "." not in text and zeros else "") + "0" * zeros


def numbers(limit: Decimal | None = None) -> st.SearchStrategy[str]:
    strategy = dynamodb_numbers()
    return strategy if limit is None else strategy.filter(lambda text: Decimal(text) <= limit)


def test_the_strategy_stays_in_dynamodbs_domain() -> None:
    @given(dynamodb_numbers())
    def check(text: str) -> None:
        assert number_problem(text) is None

    check()


# -- the reproductions -------------------------------------------------------------------


def test_a_38_digit_number_keeps_its_value_where_normalize_made_it_a_39_digit_one() -> None:
    text = "99999999999999999999999999999999999999"
    assert format(Decimal(text).normalize(), "f") == "1" + "0" * 38  # the fault: a different number
    assert format_timestamp(parse_timestamp(text)) == text


def test_an_unversioned_update_of_an_item_with_a_31_digit_version_replicates(pair: Pair) -> None:
    # GIVEN Tianjin, put on cn-north-1 with a version of 31 significant digits, replicated
    version = f"{int(time.time()) - 5}.711183071136474609375"
    pair.china.put(KEY, {"city": {"S": "Tianjin"}}, version)
    pair.settle()
    # WHEN us-east-1's application sets Boston without touching the version
    pair.us.update_field(KEY, "city", "Boston")
    pair.settle()
    # THEN both sides say Boston (the stamp's condition compared the exact version and landed)
    assert pair.us.get(KEY)["city"] == {"S": "Boston"}
    assert pair.china.get(KEY) == pair.us.get(KEY)


def test_deletes_of_items_stamped_with_decimal_time_in_the_same_second_replicate(pair: Pair) -> None:
    keys = [{"pk": {"S": f"user#{i}"}, "sk": {"S": "profile"}} for i in range(8)]
    for key in keys:
        pair.china.put(key, {"city": {"S": "Tianjin"}}, str(Decimal(time.time())))
    pair.settle()
    assert all(pair.us.get(key) is not None for key in keys)
    for key in keys:
        pair.china.delete(key)
    for record in pair.china.pending():  # each deleted in the second its version was written
        old = record["dynamodb"]["OldImage"][NAMES.timestamp]["N"]
        record["dynamodb"]["ApproximateCreationDateTime"] = int(Decimal(old))
    pair.settle()
    assert [key for key in keys if pair.us.get(key) is not None] == []


# -- exact round trips over DynamoDB's whole number domain -----------------------------------------


@given(timestamp=dynamodb_numbers(), other=dynamodb_numbers())
def test_every_number_round_trips_exactly_through_the_wire(timestamp: str, other: str) -> None:
    delete = Change(KEY, Version(Decimal(timestamp), "cn-north-1", True))
    item = {**KEY, "n": {"N": other}, NAMES.timestamp: {"N": timestamp}, NAMES.origin: {"S": "cn-north-1"}}
    other_key = {"pk": {"S": "user#2"}, "sk": {"S": "profile"}}
    upsert = Change(other_key, Version(Decimal(timestamp), "cn-north-1"), {**item, **other_key})
    envelope = Envelope(KIND_CHANGES, "cn-north-1", TABLE, NAMES, 1, (delete, upsert))
    decoded = decode(encode(envelope)).changes
    assert decoded[0].version.timestamp == Decimal(timestamp)
    assert decoded[1].version.timestamp == Decimal(timestamp)
    assert decoded[1].item["n"] == {"N": other}
    assert format_timestamp(decoded[0].version.timestamp) == canonical_number(Decimal(timestamp))


@given(timestamp=dynamodb_numbers())
def test_formatting_a_timestamp_is_exact_and_canonical(timestamp: str) -> None:
    text = format_timestamp(Decimal(timestamp))
    assert Decimal(text) == Decimal(timestamp)
    assert number_problem(text) is None
    assert "E" not in text and (("." not in text) or not text.endswith("0"))


@given(prior=numbers(limit=Decimal("9E+125")))
def test_a_stamp_is_strictly_after_the_version_it_follows_in_38_digits(prior: str) -> None:
    value = Decimal(prior)
    stamp = after(value)
    exact = EXACT.add(value, STAMP_STEP)
    assert stamp >= exact > value  # never rounded down
    assert number_problem(format_timestamp(stamp)) is None
    if number_problem(canonical_number(exact)) is None:  # the exact sum fits 38 digits: it is the stamp
        assert stamp == exact


def _next_38_digit(value: Decimal, up: bool) -> Decimal:
    """The next number DynamoDB stores above or below ``value``: 38 digits, and nothing between 0
    and a magnitude of 1E-130 (DG "Supported data types and naming rules", Number), so the neighbour
    of 1E-130 below (of -1E-130 above) is 0."""
    with localcontext(Context(prec=MAX_NUMBER_DIGITS, Emin=-999_999, Emax=999_999)) as context:
        neighbour = context.next_plus(value) if up else context.next_minus(value)
    if neighbour and neighbour.adjusted() < MIN_NUMBER_EXPONENT:
        return Decimal(0)
    return neighbour


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timestamp=numbers(limit=Decimal(int(time.time()))))
def test_the_conditions_and_tombstones_compare_every_number_exactly(timestamp: str) -> None:
    """Through DynamoDB's conditions (moto here compares numbers as exact decimals): the engine's
    condition values must be exact for the 38th digit to decide. Every number DynamoDB stores that
    is a version at all: not ahead of the clock (negative, tiny, 38 digits, trailing zeros)."""
    value = Decimal(timestamp)
    with mock_aws():
        writer = Side("us-east-1", "cn-north-1").writer
        item = {**KEY, NAMES.timestamp: {"N": timestamp}, NAMES.origin: {"S": "cn-north-1"}}
        assert writer.apply(Change(KEY, Version(value, "cn-north-1"), item)) is Outcome.APPLIED
        assert writer.apply(Change(KEY, Version(value, "cn-north-1"), item)) is Outcome.STALE
        below = _next_38_digit(value, up=False)
        older = {**item, NAMES.timestamp: {"N": canonical_number(below)}}
        assert writer.apply(Change(KEY, Version(below, "cn-north-1"), older)) is Outcome.STALE
        above = _next_38_digit(value, up=True)
        newer = {**item, NAMES.timestamp: {"N": canonical_number(above)}}
        assert writer.apply(Change(KEY, Version(above, "cn-north-1"), newer)) is Outcome.APPLIED
        assert writer.remember_delete(KEY, Version(value, "us-east-1", True), "replicated")
        assert writer.tombstones([KEY])[key_digest(KEY)].version == Version(value, "us-east-1", True)
