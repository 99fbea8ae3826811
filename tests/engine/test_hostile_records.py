"""No inbox record stalls a shard: hostile and broken records, in the real wire format and real Kinesis
event shapes, beside good ones. What can never be applied goes to the failure queue (where and why,
never contents) and is acknowledged; everything beside it is applied (docs/failure-handling.md).

Limits are DynamoDB's documented ones (developer guide, "Supported data types and naming rules",
"Constraints", "DynamoDB item sizes and formats"; ``replication.limits``)."""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from replication.applying import Replicator, decode_budget_bytes
from replication.changes import Change
from replication.kinesis_sender import OutgoingRecord
from replication.settings import DEFAULT_FUNCTION_MEMORY_MB, KeyAttribute, KeySchema, ReplicatorSettings
from replication.table_writer import Outcome
from replication.versions import Version
from replication.wire import FORWARDER_BODY_BYTES, KIND_CHANGES, PARTITION_KEY_BYTES, Envelope, encode

from .harness import LOGICAL, NAMES, TABLE, Side, key_schema, side_settings

PEER = "cn-north-1"
TS = "1764200000.25"


@pytest.fixture
def side(aws: None) -> Iterator[Side]:
    yield Side("us-east-1", PEER)


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"user#{n}"}, "sk": {"S": "profile"}}


def upsert(item_key: dict[str, Any], ts: str = TS, **attributes: Any) -> Change:
    item = {**item_key, **attributes, NAMES.timestamp: {"N": ts}, NAMES.origin: {"S": PEER}}
    return Change(item_key, Version(Decimal(ts), PEER), item)


def delete(item_key: dict[str, Any], ts: str = TS) -> Change:
    return Change(item_key, Version(Decimal(ts), PEER, True))


def record(*changes: Change | list[Any]) -> OutgoingRecord:
    """A record as a forwarder encodes it (``wire.encode``, which checks nothing, so hostile changes
    pass), with raw wire entries where the encoder cannot even write the change."""
    if all(isinstance(change, Change) for change in changes):
        data = encode(Envelope(KIND_CHANGES, PEER, TABLE, NAMES, 1764200000000, tuple(changes)))  # type: ignore[arg-type]
        return OutgoingRecord(data, "0" * PARTITION_KEY_BYTES)
    body = json.loads(zlib.decompress(record(upsert(key(0))).data[4:]))
    body["c"] = [change if isinstance(change, list) else _entry(change) for change in changes]
    return raw_record(json.dumps(body).encode())


def _entry(change: Change) -> list[Any]:
    return json.loads(zlib.decompress(record(change).data[4:]))["c"][0]


def raw_record(body: bytes) -> OutgoingRecord:
    return OutgoingRecord(b"DR\x01\x01" + zlib.compress(body, 6), "0" * PARTITION_KEY_BYTES)


def failure_messages(side: Side) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = side.sqs.receive_message(QueueUrl=side.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            side.sqs.delete_message(QueueUrl=side.queue_url, ReceiptHandle=message["ReceiptHandle"])


def big_number_of_digits(count: int) -> str:
    return "1" * count


# Each: a change DynamoDB would refuse, and what the reason must say.
HOSTILE_CHANGES = {
    "wrong key type": (
        lambda: upsert({"pk": {"N": "7"}, "sk": {"S": "profile"}}, city={"S": "x"}),
        "partition key 'pk' is of type N, the table's key schema has S",
    ),
    "missing sort key": (lambda: upsert({"pk": {"S": "user#9"}}, city={"S": "x"}), "lacks the sort key 'sk'"),
    "key of another schema": (
        lambda: delete({"id": {"S": "order#1"}}),
        "key attribute 'id' is not in the table's key schema pk (S), sk (S)",
    ),
    "500 KB item": (
        lambda: upsert(key(90), blob={"B": base64.b64encode(os.urandom(500 * 1024)).decode()}),
        "above DynamoDB's 409,600-byte limit",
    ),
    "number 1E+200": (lambda: upsert(key(91), score={"N": "1E+200"}), "above DynamoDB's largest number"),
    "number of 40 digits": (
        lambda: upsert(key(92), score={"N": big_number_of_digits(40)}),
        "40 significant digits, DynamoDB keeps at most 38",
    ),
    "timestamp 1E+999999999 on an upsert": (
        lambda: upsert(key(93), ts="1E+999999999", city={"S": "x"}),
        "last_update_timestamp: malformed N value (magnitude above",
    ),
    "timestamp 1E+999999999 on a delete": (
        lambda: [key(94), "1E+999999999", PEER],  # wire.encode cannot even write it
        "malformed delete version (version timestamp: magnitude above",
    ),
    "an empty sort key": (lambda: delete({"pk": {"S": "user#1"}, "sk": {"S": ""}}), "sort key 'sk' is empty"),
    "a partition key over 2,048 bytes": (
        lambda: delete({"pk": {"S": "p" * 2049}, "sk": {"S": "profile"}}),
        "2,049 bytes, above DynamoDB's 2,048-byte limit",
    ),
    "a number set holding one number twice": (
        lambda: upsert(key(95), scores={"NS": ["1.50", "1.5"]}),
        "a set holds the same value twice",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CHANGES))
def test_a_change_dynamodb_would_refuse_goes_to_the_failure_queue_and_its_neighbours_apply(
    side: Side, case: str
) -> None:
    make, reason = HOSTILE_CHANGES[case]
    hostile = make()
    shared = record(upsert(key(1), city={"S": "Beijing"}), hostile, delete(key(2)))
    beside = record(upsert(key(3), city={"S": "Shanghai"}))
    side.db.put_item(TableName=TABLE, Item={**key(2), NAMES.timestamp: {"N": "1"}, NAMES.origin: {"S": PEER}})

    result = side.replicate([shared, beside])
    report = result["report"]

    assert report.failed == set()
    assert side.get(key(1))["city"] == {"S": "Beijing"}
    assert side.get(key(2)) is None
    assert side.get(key(3))["city"] == {"S": "Shanghai"}
    assert (report.refused.total(), report.poison) == (1, 0)
    (message,) = failure_messages(side)
    assert message["kind"] == "poison"
    assert message["sequenceNumber"] == result["event"][0]["kinesis"]["sequenceNumber"]
    assert message["eventSourceARN"] == result["event"][0]["eventSourceARN"]
    assert message["refusedCount"] == 1
    (refused,) = message["refused"]
    assert refused["change"] == 1
    assert reason in refused["reason"]


def test_a_failure_message_carries_no_item_contents(side: Side) -> None:
    secret = "alice@example.com"
    hostile = upsert(
        {"pk": {"S": secret}, "sk": {"N": "1"}}, email={"S": secret}, score={"N": big_number_of_digits(40)}
    )
    side.replicate([record(hostile)])
    (message,) = failure_messages(side)
    assert secret not in json.dumps(message)
    assert "data" not in message
    assert set(message) == {
        "kind",
        "table",
        "reason",
        "eventSourceARN",
        "eventID",
        "sequenceNumber",
        "partitionKey",
        "approximateArrivalTimestamp",
        "refusedCount",
        "refused",
    }


def test_a_refused_change_never_hides_an_older_valid_change_of_its_key(side: Side) -> None:
    older = upsert(key(1), ts="1764200000.1", city={"S": "Beijing"})
    newer_refused = upsert(key(1), ts="1764200000.2", score={"N": "1E+200"})
    side.replicate([record(older), record(newer_refused)])
    assert side.get(key(1))["city"] == {"S": "Beijing"}
    assert len(failure_messages(side)) == 1


def test_a_body_of_100000_nested_empty_arrays_is_poison_and_the_records_beside_it_apply(side: Side) -> None:
    depth = 100_000
    bomb = raw_record(b"[" * depth + b"]" * depth)
    result = side.replicate(
        [record(upsert(key(1), city={"S": "a"})), bomb, record(upsert(key(2), city={"S": "b"}))]
    )

    assert result["report"].failed == set()
    assert side.get(key(1)) is not None and side.get(key(2)) is not None
    (message,) = failure_messages(side)
    assert message["sequenceNumber"] == result["event"][1]["kinesis"]["sequenceNumber"]
    assert "nests deeper" in message["reason"]
    assert result["report"].poison == 1


def test_a_record_inflating_beyond_what_the_functions_memory_can_decode_is_poison(side: Side) -> None:
    # 188 KB of data that inflates to 63 MiB of tiny changes: 1.6 GB of Python objects decoded.
    header = json.dumps(
        {"k": "changes", "o": PEER, "t": TABLE, "va": [NAMES.timestamp, NAMES.origin], "at": 1}
    ).encode()[:-1]
    tiny = b'[{"pk":{"S":"a"},"sk":{"S":"b"}},"1","cn-north-1"],'
    count = 63 * 1024 * 1024 // len(tiny)
    bomb = raw_record(header + b',"c":[' + tiny * count + tiny[:-1] + b"]}")
    assert len(bomb.data) < 200 * 1024
    result = side.replicate([record(upsert(key(1), city={"S": "a"})), bomb])

    budget = decode_budget_bytes(DEFAULT_FUNCTION_MEMORY_MB)
    assert budget < 7 * 1024 * 1024
    assert result["report"].failed == set()
    assert side.get(key(1)) is not None
    (message,) = failure_messages(side)
    assert f"inflates beyond {budget:,} bytes" in message["reason"]


def replicator_settings(
    side: Side, memory: int = DEFAULT_FUNCTION_MEMORY_MB, schema: KeySchema | None = None
) -> ReplicatorSettings:
    """The side's replicator settings with this much memory (MB) and this key schema for its table."""
    tables = {LOGICAL: replace(side.served, key_schema=schema or key_schema())}
    return ReplicatorSettings(side_settings(side.region), tables, side.queue_url, 4, memory)


def test_the_decode_budget_admits_every_body_a_forwarder_can_make() -> None:
    assert decode_budget_bytes(DEFAULT_FUNCTION_MEMORY_MB) >= FORWARDER_BODY_BYTES


def test_a_replicator_with_too_little_memory_retries_a_large_record_instead_of_refusing_it(aws: None) -> None:
    # 128 MB decodes 1.6 MiB at once: a forwarder's record may be larger. Not dropped: retried, loudly.
    side = Side("us-east-1", PEER)
    side.replicator = Replicator(replicator_settings(side, 128), {LOGICAL: side.writer}, side.sqs)
    padding = base64.b64encode(os.urandom(250 * 1024)).decode()
    large = record(*(upsert(key(n), pad={"S": padding}) for n in range(6)))
    report = side.replicate([large, record(upsert(key(9), city={"S": "x"}))])["report"]
    assert report.failed == {0}
    assert (report.configuration_errors, report.poison) == (1, 0)
    assert side.get(key(9)) is not None
    assert failure_messages(side) == []


def test_records_beyond_the_decode_budget_together_are_decoded_and_applied_in_runs(aws: None) -> None:
    # 128 MB: a budget of 1.6 MiB. Two records of ~1 MiB each, the same three keys in both: coalesced
    # within a run (three writes), written once per run when the records cannot be decoded together.
    side = Side("us-east-1", PEER)
    padding = base64.b64encode(os.urandom(250 * 1024)).decode()
    older = record(*(upsert(key(n), ts="1764200000.1", pad={"S": padding + "a"}) for n in range(3)))
    newer = record(*(upsert(key(n), ts="1764200000.2", pad={"S": padding + "b"}) for n in range(3)))
    for memory, writes in ((1024, 3), (128, 6)):
        side.replicator = Replicator(
            replicator_settings(side, memory),
            {LOGICAL: side.writer},
            side.sqs,
        )
        for n in range(3):
            side.db.delete_item(TableName=TABLE, Key=key(n))
        report = side.replicate([older, newer])["report"]
        assert sum(report.outcomes.values()) == writes
        assert report.failed == set() and report.refused.total() == 0
        assert all(side.get(key(n))["pad"] == {"S": padding + "b"} for n in range(3))


def test_a_change_dynamodb_refuses_after_the_checks_goes_to_the_failure_queue(aws: None) -> None:
    # The replicator believes pk is a number; the table says S: DynamoDB answers ValidationException.
    side = Side("us-east-1", PEER)
    believed = KeySchema(KeyAttribute("pk", "N"), KeyAttribute("sk", "S"))
    side.replicator = Replicator(replicator_settings(side, schema=believed), {LOGICAL: side.writer}, side.sqs)
    wrong = upsert({"pk": {"N": "1"}, "sk": {"S": "profile"}}, city={"S": "x"})
    report = side.replicate([record(wrong)])["report"]
    assert (report.refused.total(), report.failed) == (1, set())
    (message,) = failure_messages(side)
    assert message["refused"][0]["reason"] == "DynamoDB refused the write: ValidationException"
    assert len(message["refused"][0]["keyDigest"]) == 64


def test_a_missing_table_is_retried_loudly_never_dropped(side: Side) -> None:
    side.db.delete_table(TableName=TABLE)
    report = side.replicate([record(upsert(key(1), city={"S": "x"}))])["report"]
    assert report.failed == {0}
    assert report.configuration_errors == 1
    assert failure_messages(side) == []


def test_an_unreachable_failure_queue_leaves_the_record_to_be_retried(side: Side) -> None:
    side.sqs.delete_queue(QueueUrl=side.queue_url)
    report = side.replicate([record(upsert(key(1), score={"N": "1E+200"}))])["report"]
    assert report.failed == {0}
    assert report.refused.total() == 0
    assert report.outcomes[Outcome.APPLIED] == 0
