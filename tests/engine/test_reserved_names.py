"""Fault 7 of issue 9: attribute names the engine reserves (``_ddbrep_*``, its delete mark
``_ddbrep_deleting``) are never accepted from outside the engine.

A mark taken from an application write, or from the peer, made a later local delete of the item
look like the engine's own (an echo), so it was never sent and the peer kept the item.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from replication.admission import RESERVED_PREFIX
from replication.changes import Change
from replication.classify import Action, StampReason
from replication.keys import key_digest
from replication.kinesis_sender import OutgoingRecord
from replication.table_writer import DELETE_MARK
from replication.versions import Version, clock_now
from replication.wire import KIND_CHANGES, Envelope, decode, encode

from .harness import NAMES, TABLE, Pair, Side

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
# A well-formed mark, as the engine writes it, for a delete one minute from now.
MARK = {"S": f"{int(time.time()) + 60} us-east-1"}


def now_text() -> str:
    return str(clock_now(time.time()))


def exported_items(side: Side) -> list[dict[str, Any]]:
    return [change.item or {} for record in side.sender.outbox for change in decode(record.data).changes]


def test_the_delete_mark_is_a_reserved_name() -> None:
    assert DELETE_MARK.startswith(RESERVED_PREFIX)


def test_an_application_update_that_sets_the_mark_with_other_changes_is_the_applications(pair: Pair) -> None:
    # GIVEN an item on both sides
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, now_text())
    pair.settle()
    # WHEN cn-north-1's application copies the engine's mark into it along with a change
    pair.china.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET city = :city, #m = :m",
        ExpressionAttributeNames={"#m": DELETE_MARK},
        ExpressionAttributeValues={":city": {"S": "Tianjin"}, ":m": MARK},
    )
    report = pair.china.forward()
    # THEN the write is stamped, which removes the mark, and replicated without it
    assert report.stamped_by_reason == {StampReason.RESERVED: 1}
    pair.settle()
    assert DELETE_MARK not in pair.china.get(KEY)
    assert pair.us.get(KEY) == pair.china.get(KEY)
    assert pair.us.get(KEY)["city"] == {"S": "Tianjin"}


def test_a_later_local_delete_of_an_item_the_application_marked_is_sent(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, now_text())
    pair.settle()
    pair.china.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET city = :city, #m = :m",
        ExpressionAttributeNames={"#m": DELETE_MARK},
        ExpressionAttributeValues={":city": {"S": "Tianjin"}, ":m": MARK},
    )
    pair.china.delete(KEY)  # before the forwarder could stamp the write
    report = pair.china.forward()
    pair.settle()
    assert (report.counts[Action.DELETE], report.counts[Action.ECHO]) == (1, 0)
    assert pair.us.get(KEY) is None


def test_an_application_insert_carrying_a_reserved_name_is_stamped_and_never_exported(pair: Pair) -> None:
    attributes = {"city": {"S": "Beijing"}, DELETE_MARK: MARK, "_ddbrep_other": {"N": "1"}}
    pair.china.put(KEY, attributes, now_text())
    report = pair.china.forward()
    pair.settle()
    assert report.stamped_by_reason == {StampReason.RESERVED: 1}
    assert not any(name.startswith(RESERVED_PREFIX) for name in pair.china.get(KEY))
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_write_that_sets_only_a_mark_the_engine_could_not_have_written_is_the_applications(
    pair: Pair,
) -> None:
    # A mark for a delete far beyond the allowed clock skew is not the engine's marking, although
    # the write changes nothing else.
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, now_text())
    pair.settle()
    pair.china.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET #m = :m",
        ExpressionAttributeNames={"#m": DELETE_MARK},
        ExpressionAttributeValues={":m": {"S": "9999999999 zz"}},
    )
    report = pair.china.forward()
    pair.settle()
    assert (report.counts[Action.ECHO], report.stamped_by_reason) == (0, {StampReason.RESERVED: 1})
    assert DELETE_MARK not in pair.china.get(KEY)
    pair.china.delete(KEY)
    pair.settle()
    assert pair.us.get(KEY) is None


def test_a_peer_change_carrying_a_reserved_name_is_refused_to_the_failure_queue(pair: Pair) -> None:
    # GIVEN a change from cn-north-1 whose item carries the mark (a peer that does not strip it)
    timestamp = now_text()
    item = {
        **KEY,
        "city": {"S": "Beijing"},
        DELETE_MARK: MARK,
        NAMES.timestamp: {"N": timestamp},
        NAMES.origin: {"S": "cn-north-1"},
    }
    change = Change(KEY, Version(Decimal(timestamp), "cn-north-1"), item)
    envelope = Envelope(KIND_CHANGES, "cn-north-1", TABLE, NAMES, 1, (change,))
    # WHEN us-east-1 receives it
    result = pair.us.replicate([OutgoingRecord(encode(envelope), key_digest(KEY))])
    # THEN it is refused, with its reason, and the item is not applied
    assert dict(result["report"].refused) == {"ReservedAttributeInChange": 1}
    assert pair.us.get(KEY) is None
    messages = pair.us.sqs.receive_message(QueueUrl=pair.us.queue_url).get("Messages", [])
    body = json.loads(messages[0]["Body"])
    (refused,) = body["refused"]
    assert DELETE_MARK in refused["reason"]
    assert refused["keyDigest"] == key_digest(KEY)
    assert "Beijing" not in json.dumps(body)


def test_the_forwarder_never_exports_a_reserved_name(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}, DELETE_MARK: MARK}, now_text())
    pair.china.forward()  # the stamp removes the mark
    pair.china.forward()  # the stamp's own record is sent
    assert exported_items(pair.china)
    assert not any(name.startswith(RESERVED_PREFIX) for item in exported_items(pair.china) for name in item)
