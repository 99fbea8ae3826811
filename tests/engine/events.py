"""Lambda events exactly as AWS delivers them (JSON, binary as base64), built from API output."""

from __future__ import annotations

import base64
import itertools
from datetime import datetime
from typing import Any

from replication.kinesis_sender import OutgoingRecord
from replication.typed_values import from_client

_kinesis_sequence = itertools.count(49_590_000_000_000_000_000_000_000_000_000_000_000_000_000)


def stream_event_record(api_record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams GetRecords record (boto3 form) as it appears in a Lambda event."""
    stream = api_record["dynamodb"]
    created = stream["ApproximateCreationDateTime"]
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": int(created.timestamp() if isinstance(created, datetime) else created),
        "Keys": from_client(stream["Keys"]),
        "SequenceNumber": stream["SequenceNumber"],
        "SizeBytes": stream.get("SizeBytes", 100),
        "StreamViewType": stream.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
    }
    for image in ("NewImage", "OldImage"):
        if image in stream:
            body[image] = from_client(stream[image])
    record = {
        "eventID": api_record["eventID"],
        "eventName": api_record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in api_record:
        record["userIdentity"] = api_record["userIdentity"]
    return record


def stream_event(
    event_name: str,
    keys: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    created: int,
    sequence: str = "100",
) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (NEW_AND_OLD_IMAGES), written directly: for
    items moto cannot hold."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": created,
        "Keys": keys,
        "SequenceNumber": sequence,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = new
    if old is not None:
        body["OldImage"] = old
    return {
        "eventID": "event-" + sequence,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "cn-north-1",
        "dynamodb": body,
        "eventSourceARN": "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/profiles/stream/x",
    }


def kinesis_event_record(outgoing: OutgoingRecord, stream_arn: str, region: str) -> dict[str, Any]:
    sequence = str(next(_kinesis_sequence))
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": outgoing.partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(outgoing.data).decode("ascii"),
            "approximateArrivalTimestamp": 1764200000.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/replicator",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def ttl_delete_record(keys: dict[str, Any], old_image: dict[str, Any], sequence: str) -> dict[str, Any]:
    """A TTL expiry as DynamoDB Streams reports it (service principal)."""
    return {
        "eventID": "ttl-" + sequence,
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "cn-north-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1764200000,
            "Keys": keys,
            "OldImage": old_image,
            "SequenceNumber": sequence,
            "SizeBytes": 120,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "eventSourceARN": "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/profiles/stream/x",
    }
