"""Fault 4 of issue 9: items at DynamoDB's 400 KB limit.

An item is at most 409,600 bytes, attribute names included (DynamoDB developer guide,
"Constraints" and "DynamoDB item sizes and formats"); the engine adds attributes of its own to
items (the delete mark, the stamp). Any item DynamoDB holds must still be deletable through
replication on both sides, and an item that cannot carry a version has a defined outcome that
never stops the stream: the failure queue, a metric and an alarm.

Sizes here are DynamoDB's accounting (``replication.limits``). Stock moto 5.2.5 refuses items from
405,000 bytes of its own accounting, so it cannot hold the items these tests need: the tests that
write them to moto run only where moto takes an item of 409,600 bytes as DynamoDB does (the local
fidelity patches, tests/conftest.py); the decisions themselves are tested on Lambda events.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from replication.classify import Action, ClassifyContext, classify, needs_receipt
from replication.keys import key_digest
from replication.limits import MAX_ITEM_BYTES, attribute_size, item_size
from replication.settings import VersionAttributes
from replication.table_writer import MARK_RESERVE_BYTES, Outcome
from replication.versions import clock_now

from .events import stream_event
from .harness import NAMES, TABLE, Pair, Side

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
# Room left below the limit: less than the mark (its name alone is 16 bytes, its value ~27) and
# less than a stamp (~60 bytes).
SLACK = 30
# The headroom a writer must leave for the stamp with the default attribute names, in
# docs/conflict-rules.md: the timestamp attribute with a 38-digit number, the origin attribute.
DOCUMENTED_HEADROOM = {"cn-north-1": 70, "us-east-1": 69}


def filler(attributes: dict[str, Any], size: int) -> dict[str, Any]:
    """``attributes`` plus a String "blob" making the whole item (key included) ``size`` bytes."""
    used = item_size({**KEY, **attributes}) + len("blob")
    return {**attributes, "blob": {"S": "x" * (size - used)}}


def large_versioned(region: str, timestamp: str) -> dict[str, Any]:
    version = {NAMES.timestamp: {"N": timestamp}, NAMES.origin: {"S": region}}
    return {**KEY, **filler(version, MAX_ITEM_BYTES - SLACK)}


@pytest.fixture
def full_size_pair(pair: Pair) -> Pair:
    """A pair whose moto holds an item of 409,600 bytes, names included, as DynamoDB does."""
    probe = {"pk": {"S": "probe"}, "sk": {"S": "probe"}}
    try:
        pair.us.db.put_item(TableName=TABLE, Item={**probe, **filler({}, MAX_ITEM_BYTES)})
    except pair.us.db.exceptions.ClientError as error:
        pytest.skip(f"moto refuses an item DynamoDB takes ({error}): needs the local fidelity patches")
    pair.us.db.delete_item(TableName=TABLE, Key=probe)
    pair.settle()
    return pair


def now_text() -> str:
    return str(clock_now(time.time()))


def failure_messages(side: Side) -> list[dict[str, Any]]:
    messages = side.sqs.receive_message(QueueUrl=side.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_a_replicated_delete_of_an_item_too_large_for_the_mark_removes_it_without_an_echo(
    full_size_pair: Pair,
) -> None:
    pair = full_size_pair
    # GIVEN an item 30 bytes under the limit on both sides
    item = large_versioned("cn-north-1", now_text())
    assert item_size(item) == MAX_ITEM_BYTES - SLACK
    pair.china.db.put_item(TableName=TABLE, Item=item)
    pair.settle()
    assert pair.us.get(KEY) is not None
    # WHEN us-east-1 deletes it and cn-north-1 applies the delete
    pair.us.delete(KEY)
    pair.us.forward()
    outcomes = pair.china.replicate(pair.us.sender.outbox)["report"].outcomes
    pair.us.sender.outbox = []
    report = pair.china.forward()
    # THEN it is gone on both sides, and cn-north-1's REMOVE is known for the engine's by its receipt
    assert dict(outcomes) == {Outcome.APPLIED: 1}
    assert pair.china.get(KEY) is None
    assert (report.counts[Action.ECHO], report.counts[Action.DELETE]) == (1, 0)
    assert pair.china.sender.outbox == []


def test_a_local_delete_of_a_large_item_racing_the_peers_delete_is_still_sent(full_size_pair: Pair) -> None:
    pair = full_size_pair
    # GIVEN the large item on both sides, deleted on us-east-1 and in flight to cn-north-1
    pair.china.db.put_item(TableName=TABLE, Item=large_versioned("cn-north-1", now_text()))
    pair.settle()
    pair.us.delete(KEY)
    pair.us.forward()
    peers_delete = pair.us.sender.outbox
    pair.us.sender.outbox = []
    # WHEN cn-north-1's application deletes it first, then the peer's delete lands
    pair.china.delete(KEY)
    pair.china.replicate(peers_delete)
    report = pair.china.forward()
    # THEN the local delete is not taken for the peer's echo: no receipt covers it
    assert (report.counts[Action.DELETE], report.counts[Action.ECHO]) == (1, 0)
    assert len(pair.china.sender.outbox) == 1


def test_a_large_item_older_than_a_remembered_delete_is_removed_without_an_echo(full_size_pair: Pair) -> None:
    pair = full_size_pair
    # GIVEN a delete remembered on cn-north-1
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, str(int(time.time()) - 20))
    pair.settle()
    pair.china.delete(KEY)
    pair.settle()
    # WHEN a writer with a slow clock creates the key again, 30 bytes under the limit
    pair.china.db.put_item(TableName=TABLE, Item=large_versioned("cn-north-1", str(int(time.time()) - 10)))
    first = pair.china.forward()
    second = pair.china.forward()
    pair.settle()
    # THEN the delete wins, and the engine's removal of the item is not sent
    assert first.counts[Action.DELETE_WINS] == 1
    assert (second.counts[Action.ECHO], second.counts[Action.DELETE]) == (1, 0)
    assert pair.china.get(KEY) is None
    assert pair.us.get(KEY) is None


def test_an_item_too_large_to_carry_a_version_is_reported_and_the_batch_goes_on(full_size_pair: Pair) -> None:
    pair = full_size_pair
    # GIVEN an unversioned item 30 bytes under the limit, and a small one behind it in the stream
    pair.china.db.put_item(TableName=TABLE, Item={**KEY, **filler({}, MAX_ITEM_BYTES - SLACK)})
    small = {"pk": {"S": "user#2"}, "sk": {"S": "profile"}}
    pair.china.put(small, {"city": {"S": "Beijing"}}, ts=None)
    # WHEN the forwarder runs
    report = pair.china.forward()
    pair.settle()
    # THEN the large one goes to the failure queue with its key digest (no contents), counted;
    # the small one is stamped and replicated
    assert (report.too_large, report.stamped, report.first_failure) == (1, 1, None)
    (body,) = failure_messages(pair.china)
    assert body["keyDigest"] == key_digest(KEY)
    assert "400 KB" in body["reason"]
    assert "xxxx" not in json.dumps(body)
    assert pair.us.get(small) == pair.china.get(small)
    assert pair.us.get(KEY) is None


def context(region: str) -> ClassifyContext:
    return ClassifyContext(NAMES, region, "us-east-1", False, clock_now(time.time()), 300)


def test_the_documented_stamp_headroom_is_what_the_stamp_adds() -> None:
    # The stamp with the default names: the timestamp (a 38-digit number at most) and the origin.
    longest = {"N": "1." + "1" * 37}
    for region, headroom in DOCUMENTED_HEADROOM.items():
        stamp = attribute_size(NAMES.timestamp, longest) + attribute_size(NAMES.origin, {"S": region})
        assert stamp == headroom
    assert VersionAttributes() == NAMES


def test_an_unversioned_write_that_leaves_the_documented_headroom_is_stamped() -> None:
    """Even after a version of 38 digits (a clock 100 s fast), whose stamp, that version + 1 µs, has
    38 digits too."""
    prior = f"{int(time.time()) + 100}.{'1' * 28}"
    old = {**KEY, "blob": {"S": "old"}, NAMES.timestamp: {"N": prior}, NAMES.origin: {"S": "us-east-1"}}
    new = {**KEY, **filler({}, MAX_ITEM_BYTES - DOCUMENTED_HEADROOM["cn-north-1"])}
    record = stream_event("MODIFY", KEY, new=new, old=old, created=int(time.time()))
    assert classify(record, None, context("cn-north-1")).action is Action.STAMP
    new["blob"] = {"S": new["blob"]["S"] + "x"}  # one byte more
    assert classify(record, None, context("cn-north-1")).action is Action.TOO_LARGE


def test_only_a_remove_too_large_to_have_carried_the_mark_reads_the_receipt() -> None:
    version = {NAMES.timestamp: {"N": now_text()}, NAMES.origin: {"S": "cn-north-1"}}
    for size, read in ((MAX_ITEM_BYTES - MARK_RESERVE_BYTES - 100, False), (MAX_ITEM_BYTES - SLACK, True)):
        old = {**KEY, **filler(version, size)}
        assert needs_receipt(stream_event("REMOVE", KEY, old=old, created=int(time.time()))) is read, size
