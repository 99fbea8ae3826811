"""Faults 2, 3 and 6 of issue 9: versions as writers really write them.

- A version attribute of the wrong type (a String "1795993218", an ISO date, a map...) is no version:
  the write is stamped on the exact typed value it showed, replicated and counted.
- A version more than MAX_CLOCK_SKEW_SECONDS ahead of the engine's clock (epoch milliseconds, a clock
  years fast, a hostile peer) is never written, sent or remembered: stamped on this side, refused to
  the failure queue from the peer.
- An unversioned write is ordered within a second after its real time, never before it.

DynamoDB evaluates a condition that compares values of two different types as false, not as an
error (DynamoDB API reference, Condition: "If an item contains an AttributeValue element of a
different type than the one provided in the request, the value does not match").
"""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replication.classify import Action, StampReason
from replication.errors import ConfigurationError
from replication.keys import key_digest
from replication.settings import DEFAULT_MAX_CLOCK_SKEW_SECONDS, SideSettings
from replication.table_writer import TOMBSTONE_KEY, Outcome
from replication.versions import Version, clock_now, stamp_version, version_of

from .harness import NAMES, TABLE, TOMBSTONES, Pair, Side

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}


def put_raw(side: Side, item: dict[str, Any]) -> None:
    side.db.put_item(TableName=TABLE, Item={**KEY, **item})


def failure_messages(side: Side) -> list[dict[str, Any]]:
    messages = side.sqs.receive_message(QueueUrl=side.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def timestamp_of(side: Side) -> Decimal:
    item = side.get(KEY)
    assert item is not None
    return Decimal(item[NAMES.timestamp]["N"])


# -- fault 2: version attributes of the wrong type ------------------------------------------------

WRONG_VERSIONS = {
    "timestamp as a String": {NAMES.timestamp: {"S": "1795993218"}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp as an ISO date": {
        NAMES.timestamp: {"S": "2026-11-30T01:00:00Z"},
        NAMES.origin: {"S": "cn-north-1"},
    },
    "timestamp as a map": {NAMES.timestamp: {"M": {"s": {"N": "1"}}}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp as a list": {NAMES.timestamp: {"L": [{"N": "1"}]}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp as a number set": {NAMES.timestamp: {"NS": ["1", "2"]}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp as a boolean": {NAMES.timestamp: {"BOOL": True}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp as null": {NAMES.timestamp: {"NULL": True}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp as binary": {NAMES.timestamp: {"B": "AAE="}, NAMES.origin: {"S": "cn-north-1"}},
    "timestamp without an origin": {NAMES.timestamp: {"N": "1795993218"}},
    "origin without a timestamp": {NAMES.origin: {"S": "cn-north-1"}},
    "origin as a Number": {NAMES.timestamp: {"N": "1795993218"}, NAMES.origin: {"N": "1"}},
    "origin empty": {NAMES.timestamp: {"N": "1795993218"}, NAMES.origin: {"S": ""}},
}


@pytest.mark.parametrize("version", WRONG_VERSIONS.values(), ids=WRONG_VERSIONS.keys())
def test_a_write_with_a_malformed_version_is_stamped_replicated_and_counted(
    pair: Pair, version: dict[str, Any]
) -> None:
    put_raw(pair.china, {"city": {"S": "Tianjin"}, **version})
    report = pair.china.forward()
    pair.settle()
    assert report.stamped_by_reason == {StampReason.MALFORMED: 1}
    stamped = pair.china.get(KEY)
    assert version_of(stamped, NAMES) == Version(timestamp_of(pair.china), "cn-north-1")
    assert pair.us.get(KEY) == stamped


def test_a_replicated_change_is_applied_over_a_local_write_with_a_malformed_version(pair: Pair) -> None:
    # GIVEN us-east-1's application writes a String timestamp, not yet seen by its forwarder
    now = int(time.time())
    put_raw(pair.us, {"city": {"S": "us-write"}, **WRONG_VERSIONS["timestamp as a String"]})
    # WHEN a change from cn-north-1 arrives, written by a clock 100 s fast (within the allowed skew)
    pair.china.put(KEY, {"city": {"S": "cn-write"}}, str(now + 100))
    pair.china.forward()
    outcome = pair.us.replicate(pair.china.sender.outbox)["report"].outcomes
    pair.china.sender.outbox = []
    pair.settle()
    # THEN it replaces the unversioned write (ordered when stamped, later than the change arrived)
    assert dict(outcome) == {Outcome.APPLIED: 1}
    assert pair.us.get(KEY)["city"] == {"S": "cn-write"}
    assert pair.china.get(KEY) == pair.us.get(KEY)


# -- fault 3: versions from the future -----------------------------------------------------------


def test_a_local_version_in_milliseconds_is_stamped_with_a_warning(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    written = time.time()
    pair.china.put(KEY, {"city": {"S": "Tianjin"}}, str(int(written * 1000)))
    report = pair.china.forward()
    pair.settle()
    assert report.stamped_by_reason == {StampReason.AHEAD: 1}
    assert "beyond the allowed clock skew" in caplog.text
    assert timestamp_of(pair.china) <= math.ceil(time.time())
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_version_ahead_is_not_the_floor_of_the_next_stamp(pair: Pair) -> None:
    # A writer in milliseconds, then an UpdateItem that leaves that version in place.
    pair.china.put(KEY, {"city": {"S": "Tianjin"}}, str(int(time.time() * 1000)))
    pair.china.update_field(KEY, "city", "Boston")
    pair.settle()
    assert timestamp_of(pair.china) <= math.ceil(time.time())
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_delete_of_an_item_with_a_version_ahead_is_remembered_within_the_bound(pair: Pair) -> None:
    # GIVEN an item written in milliseconds, deleted before the forwarder saw it
    pair.china.put(KEY, {"city": {"S": "Tianjin"}}, str(int(time.time() * 1000)))
    pair.china.delete(KEY)
    pair.settle()
    remembered = pair.china.writer.tombstones([KEY])[key_digest(KEY)].version
    assert remembered.timestamp <= math.ceil(time.time())
    # WHEN the key is created again by a writer with a correct clock
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, str(clock_now(time.time())))
    pair.settle()
    # THEN it lives on both sides: the delete did not carry the far-future version
    assert pair.china.get(KEY)["city"] == {"S": "Beijing"}
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_tombstone_remembered_with_a_version_ahead_does_not_delete_a_new_item(pair: Pair) -> None:
    # GIVEN tombstones written before the bound existed, far in the future, on both sides
    for side in pair.sides():
        side.db.put_item(
            TableName=TOMBSTONES,
            Item={
                TOMBSTONE_KEY: {"S": key_digest(KEY)},
                "ts": {"N": "1795993218000"},
                "o": {"S": "us-east-1"},
                "src": {"S": "local"},
                "expires_at": {"N": str(int(time.time()) + 86400)},
            },
        )
    # WHEN the key is created with a correct clock
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, str(clock_now(time.time())))
    report = pair.china.forward()
    pair.settle()
    # THEN the far-future delete is not taken for remembered: the item replicates
    assert report.counts[Action.FORWARD] == 1
    assert pair.china.get(KEY) is not None
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_peer_change_ahead_of_this_sides_clock_is_refused_to_the_failure_queue(pair: Pair) -> None:
    # GIVEN cn-north-1's engine clock one hour fast: it takes a version 50 min ahead for a valid one
    pair.china.clock = lambda: time.time() + 3600
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, str(int(time.time()) + 3000))
    pair.china.forward()
    # WHEN us-east-1 receives the change
    result = pair.us.replicate(pair.china.sender.outbox)
    report = result["report"]
    # THEN it is refused, with its reason and key in the failure queue, and acknowledged
    assert pair.us.get(KEY) is None
    assert (dict(report.refused), report.failed) == ({"VersionAheadOfClock": 1}, set())
    (body,) = failure_messages(pair.us)
    (refused,) = body["refused"]
    assert refused["reason"].startswith("VersionAheadOfClock")
    assert refused["keyDigest"] == key_digest(KEY)
    assert body["sequenceNumber"] == result["event"][0]["kinesis"]["sequenceNumber"]
    assert "Beijing" not in json.dumps(body)


def test_a_peer_delete_ahead_of_this_sides_clock_is_refused(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, str(clock_now(time.time())))
    pair.settle()
    # cn-north-1's engine clock is an hour fast, and its application's too: the delete is ahead.
    pair.china.clock = lambda: time.time() + 3600
    pair.china.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET #ts = :ts",
        ExpressionAttributeNames={"#ts": NAMES.timestamp},
        ExpressionAttributeValues={":ts": {"N": str(int(time.time()) + 3000)}},
    )
    pair.china.forward()
    pair.us.replicate(pair.china.sender.outbox)  # the update, refused as well
    pair.china.sender.outbox = []
    pair.china.delete(KEY)
    pair.china.forward()
    report = pair.us.replicate(pair.china.sender.outbox)["report"]
    assert dict(report.refused) == {"VersionAheadOfClock": 1}
    assert pair.us.get(KEY) is not None
    assert key_digest(KEY) not in pair.us.writer.tombstones([KEY])


def test_an_item_holding_a_version_ahead_does_not_block_a_replicated_change(pair: Pair) -> None:
    # us-east-1's application wrote milliseconds; before its forwarder stamps it, a change arrives.
    pair.us.put(KEY, {"city": {"S": "ms-writer"}}, str(int(time.time() * 1000)))
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, str(clock_now(time.time())))
    pair.china.forward()
    pair.us.replicate(pair.china.sender.outbox)
    pair.china.sender.outbox = []
    pair.settle()
    assert pair.us.get(KEY)["city"] == {"S": "Beijing"}
    assert pair.china.get(KEY) == pair.us.get(KEY)


def test_the_clock_skew_bound_is_read_from_the_environment() -> None:
    env = {"TOMBSTONE_TABLE_NAME": "x", "LOCAL_REGION": "cn-north-1"}
    assert SideSettings.from_env(env).max_clock_skew_seconds == DEFAULT_MAX_CLOCK_SKEW_SECONDS == 300
    assert SideSettings.from_env({**env, "MAX_CLOCK_SKEW_SECONDS": "60"}).max_clock_skew_seconds == 60
    for wrong in ("0", "86401", "5m"):
        with pytest.raises(ConfigurationError, match="MAX_CLOCK_SKEW_SECONDS"):
            SideSettings.from_env({**env, "MAX_CLOCK_SKEW_SECONDS": wrong})


# -- fault 6: where an unversioned write is ordered ------------------------------------------------


def test_an_unversioned_write_is_ordered_after_an_earlier_write_of_the_same_second(pair: Pair) -> None:
    # GIVEN us-east-1 puts "US-first" with version T.15
    second = int(time.time()) - 60
    pair.us.put(KEY, {"city": {"S": "US-first"}}, f"{second}.15")
    # WHEN 0.2 s later cn-north-1's application writes "CN-second" without a version, and its
    # forwarder stamps it (at T.35) before us-east-1's write arrives
    pair.china.clock = lambda: second + 0.35
    pair.china.update_field(KEY, "city", "CN-second")
    for record in pair.china.pending():
        record["dynamodb"]["ApproximateCreationDateTime"] = second
    pair.china.forward()
    pair.settle()
    # THEN the later write wins on both sides
    assert pair.china.get(KEY)["city"] == {"S": "CN-second"}
    assert pair.us.get(KEY) == pair.china.get(KEY)


@given(
    second=st.integers(0, 4_000_000_000),
    within=st.integers(0, 999_999),
    delay=st.integers(-5_000_000, 30_000_000),
)
def test_a_stamp_is_never_before_the_write_and_at_most_a_second_after_it(
    second: int, within: int, delay: int
) -> None:
    """The write happened at ``second + within`` µs; the forwarder's clock says ``delay`` µs later
    (negative: a forwarder clock behind DynamoDB's, though the forwarder runs after the write)."""
    written = Decimal(second) + Decimal(within) / 1_000_000
    now = written + Decimal(delay) / 1_000_000
    stamp = stamp_version(None, Decimal(second), now, "cn-north-1").timestamp
    assert second <= stamp <= second + 1  # within the record's second, as DynamoDB's clock says
    if delay >= 0:  # a forwarder clock in step: not before the write, at most a second after it
        assert written <= stamp <= written + 1
