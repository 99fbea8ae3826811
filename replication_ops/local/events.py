"""Lambda events built from stream reads, in the exact shape Lambda delivers them.

Pure functions: the records come from boto3 (``dynamodbstreams.get_records`` / ``kinesis.get_records``,
so binary values are ``bytes`` and times are ``datetime``); the events are JSON-ready dicts.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KIND_DYNAMODB = "dynamodb"
KIND_KINESIS = "kinesis"

# Lambda's synchronous invocation payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def source_kind(event_source_arn: str) -> str:
    """``dynamodb`` for a table stream ARN, ``kinesis`` for a Kinesis stream ARN."""
    parts = event_source_arn.split(":", 5)
    if len(parts) < 6 or not parts[0] == "arn":
        raise ValueError(f"not an ARN: {event_source_arn!r}")
    service = parts[2]
    if service == "dynamodb" and "/stream/" in parts[5]:
        return KIND_DYNAMODB
    if service == "kinesis" and parts[5].startswith("stream/"):
        return KIND_KINESIS
    raise ValueError(f"unsupported event source: {event_source_arn!r}")


def kinesis_stream_name(event_source_arn: str) -> str:
    return event_source_arn.split(":", 5)[5].split("/", 2)[1]


def arn_region(arn: str) -> str:
    return arn.split(":")[3]


# -- attribute values ------------------------------------------------------------------------


def attribute_value_to_json(value: dict[str, Any]) -> dict[str, Any]:
    """A boto3 AttributeValue as Lambda's JSON has it: binary values as base64 strings."""
    ((type_name, inner),) = value.items()
    if type_name == "B":
        return {"B": _b64(inner)}
    if type_name == "BS":
        return {"BS": [_b64(v) for v in inner]}
    if type_name == "M":
        return {"M": {k: attribute_value_to_json(v) for k, v in inner.items()}}
    if type_name == "L":
        return {"L": [attribute_value_to_json(v) for v in inner]}
    return {type_name: inner}


def item_to_json(item: dict[str, Any]) -> dict[str, Any]:
    return {name: attribute_value_to_json(value) for name, value in item.items()}


def _b64(value: bytes | str) -> str:
    if isinstance(value, str):  # already encoded (a raw JSON read)
        return value
    return base64.b64encode(value).decode("ascii")


def epoch_seconds(value: datetime | float | int) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def iso_millis(epoch: float) -> str:
    """``2019-11-14T00:12:35.243Z``, the time format of Lambda's invocation records."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- one record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRecord:
    """One record read from a shard, with what the runner needs beside the event record."""

    sequence_number: str
    arrival: float  # epoch seconds: ApproximateCreationDateTime / ApproximateArrivalTimestamp
    event_record: dict[str, Any]
    size: int  # bytes of the event record's JSON
    data_bytes: int = 0  # Kinesis: size of the record's data blob

    @property
    def sequence_key(self) -> int:
        return int(self.sequence_number)


def dynamodb_record(raw: dict[str, Any], *, region: str, event_source_arn: str) -> StreamRecord:
    """A DynamoDB Streams GetRecords record -> the record of Lambda's DynamoDB event."""
    stream = raw["dynamodb"]
    created = epoch_seconds(stream["ApproximateCreationDateTime"])
    body: dict[str, Any] = {
        # DynamoDB Streams gives whole seconds (rounded down); Lambda passes them on as a number.
        "ApproximateCreationDateTime": math.floor(created),
        "Keys": item_to_json(stream["Keys"]),
    }
    if "NewImage" in stream:
        body["NewImage"] = item_to_json(stream["NewImage"])
    if "OldImage" in stream:
        body["OldImage"] = item_to_json(stream["OldImage"])
    body["SequenceNumber"] = stream["SequenceNumber"]
    body["SizeBytes"] = stream.get("SizeBytes", 0)
    body["StreamViewType"] = stream.get("StreamViewType", "NEW_AND_OLD_IMAGES")
    record: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        # The real region of the side (moto's stream records always say us-east-1).
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": event_source_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = dict(raw["userIdentity"])
    return StreamRecord(stream["SequenceNumber"], created, record, _json_size(record))


def kinesis_record(
    raw: dict[str, Any],
    *,
    shard_id: str,
    region: str,
    event_source_arn: str,
    invoke_identity_arn: str,
) -> StreamRecord:
    """A Kinesis GetRecords record -> the record of Lambda's Kinesis event (data in base64)."""
    data = raw["Data"]
    data_bytes = data if isinstance(data, bytes) else base64.b64decode(data)
    arrival = epoch_seconds(raw["ApproximateArrivalTimestamp"])
    sequence_number = raw["SequenceNumber"]
    record = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(data_bytes).decode("ascii"),
            "approximateArrivalTimestamp": round(arrival, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": invoke_identity_arn,
        "awsRegion": region,
        "eventSourceARN": event_source_arn,
    }
    return StreamRecord(sequence_number, arrival, record, _json_size(record), len(data_bytes))


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def event(records: list[StreamRecord]) -> dict[str, Any]:
    return {"Records": [record.event_record for record in records]}


# -- partial batch responses -----------------------------------------------------------------


class InvalidBatchResponse(ValueError):
    """The function's batchItemFailures cannot be honoured: Lambda fails the whole batch."""


def failed_index(response: Any, records: list[StreamRecord]) -> int | None:
    """Index of the lowest failed record named in a partial batch response; None: all succeeded.

    As Lambda does: an empty or missing list (or a null/empty response) is complete success; an
    entry with a null or empty itemIdentifier, a wrong key or a sequence number not in the batch
    fails the whole batch (``InvalidBatchResponse``).
    """
    if response is None or response in ("", {}):
        return None
    if not isinstance(response, dict):
        return None  # a response of another shape is not a partial batch response: success
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    if not isinstance(failures, list):
        raise InvalidBatchResponse("batchItemFailures is not a list")
    positions = {record.sequence_number: index for index, record in enumerate(records)}
    lowest: int | None = None
    for entry in failures:
        if not isinstance(entry, dict) or "itemIdentifier" not in entry:
            raise InvalidBatchResponse(f"batch item failure without itemIdentifier: {entry!r}")
        identifier = entry["itemIdentifier"]
        if not identifier or not isinstance(identifier, str):
            raise InvalidBatchResponse(f"empty or null itemIdentifier: {identifier!r}")
        if identifier not in positions:
            raise InvalidBatchResponse(f"itemIdentifier {identifier!r} is not in the batch")
        index = positions[identifier]
        lowest = index if lowest is None else min(lowest, index)
    return lowest


# -- on-failure destination ------------------------------------------------------------------

CONDITION_RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
CONDITION_RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


def invocation_record(
    *,
    kind: str,
    records: list[StreamRecord],
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    function_error: str | None,
    status_code: int = 200,
    now: float,
) -> dict[str, Any]:
    """What Lambda sends to a stream mapping's on-failure destination: the batch's metadata only."""
    batch_info = {
        "shardId": shard_id,
        "startSequenceNumber": records[0].sequence_number,
        "endSequenceNumber": records[-1].sequence_number,
        "approximateArrivalOfFirstRecord": iso_millis(records[0].arrival),
        "approximateArrivalOfLastRecord": iso_millis(records[-1].arrival),
        "batchSize": len(records),
        "streamArn": stream_arn,
    }
    response_context: dict[str, Any] = {"statusCode": status_code, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = function_error
    document: dict[str, Any] = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": iso_millis(now),
    }
    document["DDBStreamBatchInfo" if kind == KIND_DYNAMODB else "KinesisBatchInfo"] = batch_info
    return document
