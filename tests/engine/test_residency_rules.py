"""Residency rules of one table: parsing, the export filter's verdict, the exported projection
(replication/residency.py, docs/residency.md). The filter language is JMESPath
(https://jmespath.org/specification.html); an item is exported only when the result is exactly true."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replication.errors import ConfigurationError
from replication.residency import ResidencyRules, Verdict, plain_item

PROTECTED = ["pk", "last_update_timestamp", "last_updater_region"]
ITEM = {
    "pk": {"S": "user#1"},
    "residency": {"S": "GLOBAL"},
    "national_id": {"S": "110101199003077777"},
    "age": {"N": "41"},
}


def rules(**entry: Any) -> ResidencyRules:
    return ResidencyRules.from_entry(entry, "TABLES['profiles'].residency", protected=PROTECTED)


def test_no_rules_export_every_item_whole() -> None:
    none = ResidencyRules.from_entry(None, "r")
    assert not none.restricts
    assert none.verdict(ITEM) is Verdict.EXPORTED
    assert none.exportable(ITEM) == ITEM


def test_an_item_crosses_only_when_the_filter_is_true() -> None:
    allow = rules(export_filter="residency == 'GLOBAL'")
    assert allow.verdict(ITEM) is Verdict.EXPORTED
    assert allow.verdict({**ITEM, "residency": {"S": "CN-ONLY"}}) is Verdict.FILTERED


@pytest.mark.parametrize("expression", ["residency", "missing", "`[]`", "'true'", "age"])
def test_a_result_other_than_true_keeps_the_item_here(expression: str) -> None:
    # JMESPath would call "GLOBAL" and 41 truthy; the rule asks for true itself (fail closed).
    assert rules(export_filter=expression).verdict(ITEM) is Verdict.FILTERED


def test_a_filter_that_fails_on_an_item_keeps_it_here_and_says_so() -> None:
    # contains() on a number is a JMESPath invalid-type error.
    assert rules(export_filter="contains(age, `1`)").verdict(ITEM) is Verdict.FILTER_ERROR


def test_an_items_numbers_compare_exactly_at_dynamodbs_precision() -> None:
    # The item's numbers are exact (Decimal); a literal in the filter is a JSON number (a double).
    adult = rules(export_filter="age >= `18`")
    assert adult.verdict({**ITEM, "age": {"N": "18"}}) is Verdict.EXPORTED
    below = "17.999999999999999999999999999999999999"  # 38 digits: 18 as a double
    assert adult.verdict({**ITEM, "age": {"N": below}}) is Verdict.FILTERED


def test_excluded_attributes_are_taken_out_of_what_crosses() -> None:
    excluding = rules(excluded_attributes=["national_id", "passport_no"])
    assert excluding.exportable(ITEM) == {k: v for k, v in ITEM.items() if k != "national_id"}
    assert "national_id" in ITEM  # the local item is not touched


def test_a_filtered_item_crosses_not_even_projected() -> None:
    both = rules(export_filter="residency == 'GLOBAL'", excluded_attributes=["national_id"])
    assert both.exportable({**ITEM, "residency": {"S": "CN-ONLY"}}) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("GLOBAL", "must be an object"),
        ({"filter": "a"}, "unknown key 'filter'"),
        ({"export_filter": ""}, "must be a JMESPath expression or null"),
        ({"export_filter": "a == "}, "is not a JMESPath expression"),
        ({"excluded_attributes": "national_id"}, "must be a list of attribute names"),
        ({"excluded_attributes": [""]}, "must be a list of attribute names"),
        ({"excluded_attributes": ["a", "a"]}, "names an attribute twice"),
        ({"excluded_attributes": ["last_update_timestamp"]}, "cannot hold 'last_update_timestamp'"),
    ],
)
def test_wrong_rules_are_refused_naming_the_table(entry: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        ResidencyRules.from_entry(entry, "TABLES['profiles'].residency", protected=PROTECTED)
    assert "TABLES['profiles'].residency" in str(raised.value)


def test_the_filter_sees_every_dynamodb_type_as_plain_json() -> None:
    raw = b"\x00\xff"
    item = {
        "s": {"S": "x"},
        "n": {"N": "-1.5E+3"},
        "b": {"B": base64.b64encode(raw).decode()},
        "client_b": {"B": raw},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "m": {"M": {"inner": {"L": [{"N": "2"}, {"S": "y"}]}}},
        "ss": {"SS": ["b", "a"]},
        "ns": {"NS": ["10", "9"]},
        "bs": {"BS": [base64.b64encode(b"b").decode(), base64.b64encode(b"a").decode()]},
    }
    assert plain_item(item) == {
        "s": "x",
        "n": Decimal("-1500"),
        "b": "AP8=",
        "client_b": "AP8=",
        "t": True,
        "z": None,
        "m": {"inner": [Decimal(2), "y"]},
        "ss": ["a", "b"],
        "ns": [Decimal(9), Decimal(10)],
        "bs": ["YQ==", "Yg=="],
    }


@given(value=st.text(max_size=20))
def test_the_verdict_of_an_equality_filter_is_the_equality(value: str) -> None:
    allow = rules(export_filter="residency == 'GLOBAL'")
    expected = Verdict.EXPORTED if value == "GLOBAL" else Verdict.FILTERED
    assert allow.verdict({**ITEM, "residency": {"S": value}}) is expected
