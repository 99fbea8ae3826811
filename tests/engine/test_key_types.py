"""The conflict rules on tables keyed by numbers and by binary values, end to end through both real
pipelines (DynamoDB allows S, N and B for key attributes: developer guide, "Core components",
primary key). Numbers are stored with leading and trailing zeros trimmed, so a number key has one
form in stream records whatever form the application wrote; binary keys travel as base64 in events.
"""

from __future__ import annotations

import pytest

from replication.classify import Action

from .harness import Pair

# Written as an application might; DynamoDB stores the number key as 1.5 and the sort key as 0.5.
KEYS = {
    "N": {"pk": {"N": "1.50"}, "sk": {"N": "00.5"}},
    "B": {"pk": {"B": b"\x00\xff\x10"}, "sk": {"B": b"\xfe"}},
}


@pytest.fixture(params=sorted(KEYS))
def key_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def typed_pair(aws: None, key_type: str) -> Pair:
    return Pair(key_type=key_type)


def test_a_stale_change_never_overwrites_a_newer_one(typed_pair: Pair, key_type: str) -> None:
    key = KEYS[key_type]
    typed_pair.us.put(key, {"city": {"S": "New York"}}, "1764200010")
    typed_pair.china.put(key, {"city": {"S": "Beijing"}}, "1764200005")
    typed_pair.settle()
    assert typed_pair.china.get(key)["city"] == {"S": "New York"}
    assert typed_pair.us.get(key) == typed_pair.china.get(key)


def test_a_delete_replicates_and_is_not_echoed_back(typed_pair: Pair, key_type: str) -> None:
    key = KEYS[key_type]
    typed_pair.china.put(key, {"city": {"S": "Beijing"}}, "1764200000")
    typed_pair.settle()
    typed_pair.us.delete(key)
    typed_pair.us.forward()
    delivered, typed_pair.us.sender.outbox = typed_pair.us.sender.outbox, []
    typed_pair.china.replicate(delivered)
    report = typed_pair.china.forward()
    assert typed_pair.china.get(key) is None
    assert report.counts[Action.ECHO] == 2  # the engine's delete mark, then the removal
    assert typed_pair.china.sender.outbox == []


def test_an_older_upsert_arriving_after_a_delete_does_not_resurrect_the_item(
    typed_pair: Pair, key_type: str
) -> None:
    key = KEYS[key_type]
    typed_pair.us.put(key, {"city": {"S": "old"}}, "1764200001")
    typed_pair.us.forward()
    older_upsert, typed_pair.us.sender.outbox = typed_pair.us.sender.outbox, []
    typed_pair.china.put(key, {"city": {"S": "newer"}}, "1764200002")
    typed_pair.china.delete(key)
    typed_pair.china.forward()
    typed_pair.china.replicate(older_upsert)  # arrives late: the tombstone of the key must stop it
    typed_pair.settle()
    assert typed_pair.china.get(key) is None
    assert typed_pair.us.get(key) is None


def test_a_write_without_version_attributes_is_stamped_and_replicated(
    typed_pair: Pair, key_type: str
) -> None:
    key = KEYS[key_type]
    typed_pair.china.put(key, {"city": {"S": "Beijing"}}, ts=None)
    typed_pair.settle()
    replicated = typed_pair.us.get(key)
    assert replicated == typed_pair.china.get(key)
    assert replicated["last_updater_region"] == {"S": "cn-north-1"}


def test_a_number_key_written_in_two_forms_is_one_item_on_both_sides(aws: None) -> None:
    pair = Pair(key_type="N")
    pair.china.put({"pk": {"N": "1.50"}, "sk": {"N": "0.5"}}, {"city": {"S": "Beijing"}}, "1764200001")
    pair.us.put({"pk": {"N": "1.5"}, "sk": {"N": "5E-1"}}, {"city": {"S": "Boston"}}, "1764200002")
    pair.settle()
    assert pair.china.items() == pair.us.items()
    (only,) = pair.china.items().values()
    assert (only["pk"], only["sk"], only["city"]) == ({"N": "1.5"}, {"N": "0.5"}, {"S": "Boston"})
