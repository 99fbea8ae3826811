"""Lambda events in AWS's exact shape, built from stream reads (boto3 GetRecords output)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from replication.typed_values import from_client


def _epoch(value: datetime | float | int) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def dynamodb_event_record(raw: dict[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda delivers it: JSON, binary as base64, time in epoch seconds."""
    stream = raw["dynamodb"]
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": int(_epoch(stream["ApproximateCreationDateTime"])),
        "Keys": from_client(stream["Keys"]),
        "SequenceNumber": stream["SequenceNumber"],
        "SizeBytes": stream.get("SizeBytes", 0),
        "StreamViewType": stream.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
    }
    for image in ("NewImage", "OldImage"):
        if image in stream:
            body[image] = from_client(stream[image])
    record: dict[str, Any] = {
        "eventID": raw.get("eventID", ""),
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = {
            "type": raw["userIdentity"].get("Type", raw["userIdentity"].get("type")),
            "principalId": raw["userIdentity"].get("PrincipalId", raw["userIdentity"].get("principalId")),
        }
    return record


def kinesis_event_record(
    raw: dict[str, Any], *, shard_id: str, stream_arn: str, region: str, function_role_arn: str = ""
) -> dict[str, Any]:
    """A Kinesis record as Lambda delivers it: data in base64, arrival in epoch seconds."""
    sequence = raw["SequenceNumber"]
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(raw["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": _epoch(raw["ApproximateArrivalTimestamp"]),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": function_role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }
