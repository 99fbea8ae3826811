"""Lambda events built from GetRecords output: the exact shapes Lambda delivers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from replication_ops.local import events
from replication_ops.local.events import (
    InvalidBatchResponse,
    StreamRecord,
    dynamodb_record,
    failed_index,
    invocation_record,
    kinesis_record,
)

STREAM_ARN = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/user-profiles/stream/2026-11-26T23:22:37.654"
KINESIS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/ddbrep-us-inbox"


def raw_stream_record(**extra: object) -> dict:
    # What boto3's dynamodbstreams.get_records returns: bytes for B, datetime for the time.
    record = {
        "eventID": "e781b19c1cbf422c8ec044dacde5478e",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",  # moto's constant, whatever the region
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 11, 26, 23, 22, 37, 975000, tzinfo=UTC),
            "Keys": {"pk": {"S": "user#1"}, "sk": {"S": "profile"}},
            "NewImage": {
                "pk": {"S": "user#1"},
                "sk": {"S": "profile"},
                "photo": {"B": b"\x00\x01\xff"},
                "tags": {"BS": [b"a", b"b"]},
                "nested": {"M": {"blob": {"B": b"\x02"}, "list": {"L": [{"B": b"\x03"}, {"N": "1.5"}]}}},
            },
            "OldImage": {"pk": {"S": "user#1"}, "sk": {"S": "profile"}},
            "SequenceNumber": "1100000000017454423009",
            "SizeBytes": 287,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    record.update(extra)
    return record


def test_dynamodb_record_has_lambdas_shape() -> None:
    built = dynamodb_record(raw_stream_record(), region="cn-north-1", event_source_arn=STREAM_ARN)
    event = built.event_record
    assert set(event) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert event["awsRegion"] == "cn-north-1"
    assert event["eventSourceARN"] == STREAM_ARN
    assert event["eventSource"] == "aws:dynamodb"
    body = event["dynamodb"]
    # whole epoch seconds, rounded down, as a number
    assert body["ApproximateCreationDateTime"] == int(
        datetime(2026, 11, 26, 23, 22, 37, tzinfo=UTC).timestamp()
    )
    assert isinstance(body["ApproximateCreationDateTime"], int)
    image = body["NewImage"]
    assert image["photo"] == {"B": base64.b64encode(b"\x00\x01\xff").decode()}
    assert image["tags"] == {"BS": ["YQ==", "Yg=="]}
    assert image["nested"]["M"]["blob"] == {"B": "Ag=="}
    assert image["nested"]["M"]["list"]["L"] == [{"B": "Aw=="}, {"N": "1.5"}]
    assert body["SequenceNumber"] == "1100000000017454423009"
    assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    json.dumps(event)  # JSON-ready
    assert built.sequence_number == "1100000000017454423009"
    assert built.arrival == pytest.approx(body["ApproximateCreationDateTime"] + 0.975)
    assert built.size == len(json.dumps(event, separators=(",", ":")).encode())


def test_user_identity_is_passed_on_when_present() -> None:
    identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    raw = raw_stream_record(eventName="REMOVE", userIdentity=identity)
    event = dynamodb_record(raw, region="us-east-1", event_source_arn=STREAM_ARN).event_record
    assert event["userIdentity"] == identity
    assert (
        "userIdentity"
        not in dynamodb_record(raw_stream_record(), region="x", event_source_arn="y").event_record
    )


def test_kinesis_record_has_lambdas_shape() -> None:
    raw = {
        "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "ApproximateArrivalTimestamp": datetime(2026, 11, 26, 23, 22, 37, 123456, tzinfo=UTC),
        "Data": b'{"v":1}',
        "PartitionKey": "a" * 64,
    }
    built = kinesis_record(
        raw,
        shard_id="shardId-000000000001",
        region="us-east-1",
        event_source_arn=KINESIS_ARN,
        invoke_identity_arn="arn:aws:iam::123456789012:role/replicator",
    )
    event = built.event_record
    assert event == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "a" * 64,
            "sequenceNumber": raw["SequenceNumber"],
            "data": base64.b64encode(b'{"v":1}').decode(),
            "approximateArrivalTimestamp": round(raw["ApproximateArrivalTimestamp"].timestamp(), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000001:{raw['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/replicator",
        "awsRegion": "us-east-1",
        "eventSourceARN": KINESIS_ARN,
    }
    assert built.data_bytes == 7


def test_source_kinds_and_names() -> None:
    assert events.source_kind(STREAM_ARN) == "dynamodb"
    assert events.source_kind(KINESIS_ARN) == "kinesis"
    assert events.kinesis_stream_name(KINESIS_ARN) == "ddbrep-us-inbox"
    with pytest.raises(ValueError):
        events.source_kind("arn:aws:sqs:us-east-1:1:q")


def _records(*sequences: str) -> list[StreamRecord]:
    return [StreamRecord(s, 0.0, {}, 10) for s in sequences]


def test_failed_index_follows_lambdas_rules() -> None:
    batch = _records("10", "11", "12")
    assert failed_index(None, batch) is None
    assert failed_index({}, batch) is None
    assert failed_index({"batchItemFailures": []}, batch) is None
    assert failed_index({"batchItemFailures": [{"itemIdentifier": "11"}]}, batch) == 1
    assert (
        failed_index({"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "10"}]}, batch) == 0
    )
    for bad in (
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"id": "11"}],
        [{"itemIdentifier": "9"}],
    ):
        with pytest.raises(InvalidBatchResponse):
            failed_index({"batchItemFailures": bad}, batch)


def test_invocation_record_for_each_source() -> None:
    batch = [StreamRecord("5", 1795735531.681, {}, 1), StreamRecord("9", 1795735532.5, {}, 1)]
    ddb = invocation_record(
        kind="dynamodb",
        records=batch,
        shard_id="shardId-1",
        stream_arn=STREAM_ARN,
        function_arn="arn:aws-cn:lambda:cn-north-1:1:function:f",
        condition="RetryAttemptsExhausted",
        invoke_count=3,
        function_error="Unhandled",
        now=1795735540.0,
    )
    assert ddb["version"] == "1.0"
    assert ddb["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert ddb["requestContext"]["approximateInvokeCount"] == 3
    assert ddb["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert ddb["DDBStreamBatchInfo"] == {
        "shardId": "shardId-1",
        "startSequenceNumber": "5",
        "endSequenceNumber": "9",
        "approximateArrivalOfFirstRecord": "2026-11-26T23:25:31.681Z",
        "approximateArrivalOfLastRecord": "2026-11-26T23:25:32.500Z",
        "batchSize": 2,
        "streamArn": STREAM_ARN,
    }
    assert ddb["timestamp"].endswith("Z")
    kinesis = invocation_record(
        kind="kinesis",
        records=batch,
        shard_id="shardId-000000000000",
        stream_arn=KINESIS_ARN,
        function_arn="f",
        condition="RecordAgeExceeded",
        invoke_count=0,
        function_error=None,
        now=0.0,
    )
    assert "KinesisBatchInfo" in kinesis and "DDBStreamBatchInfo" not in kinesis
    assert "functionError" not in kinesis["responseContext"]
