"""Shard readers: DynamoDB Streams and Kinesis behind one small interface.

A reader knows one shard: it makes iterators from a position and reads records, turning them into
the records of Lambda's events. An expired (or unknown) iterator raises ``IteratorExpired`` so that
the consumer makes a fresh one from where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from replication_ops.local.events import (
    KIND_DYNAMODB,
    StreamRecord,
    dynamodb_record,
    kinesis_record,
    kinesis_stream_name,
)

TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"
AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"

# Iterators are made anew well before they expire (DynamoDB Streams: 15 min, Kinesis: 5 min).
ITERATOR_MAX_AGE_SECONDS = {KIND_DYNAMODB: 600.0, "kinesis": 240.0}
READ_LIMIT = {KIND_DYNAMODB: 1000, "kinesis": 10000}

EXPIRED_CODES = frozenset({"ExpiredIteratorException", "InternalFailure", "InternalServerError"})
TRIMMED_CODES = frozenset({"TrimmedDataAccessException"})


class IteratorExpired(Exception):
    pass


class DataTrimmed(Exception):
    """The position is older than the stream keeps: start again from TRIM_HORIZON."""


@dataclass(frozen=True)
class Position:
    kind: str  # TRIM_HORIZON, LATEST or AFTER_SEQUENCE_NUMBER
    sequence_number: str | None = None

    @classmethod
    def after(cls, sequence_number: str) -> Position:
        return cls(AFTER_SEQUENCE_NUMBER, sequence_number)


@dataclass(frozen=True)
class ReadResult:
    records: list[StreamRecord]
    next_iterator: str | None  # None: the shard is closed and fully read
    millis_behind: int | None = None


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    parent_shard_id: str | None
    closed: bool


class ShardReader(Protocol):
    kind: str
    shard_id: str

    def iterator(self, position: Position) -> str: ...

    def read(self, iterator: str, limit: int) -> ReadResult: ...


def _client_error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class DynamoDBShardReader:
    kind = KIND_DYNAMODB

    def __init__(self, client: Any, stream_arn: str, shard_id: str, region: str) -> None:
        self._client = client
        self._stream_arn = stream_arn
        self.shard_id = shard_id
        self._region = region

    def iterator(self, position: Position) -> str:
        params: dict[str, Any] = {
            "StreamArn": self._stream_arn,
            "ShardId": self.shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.sequence_number is not None:
            params["SequenceNumber"] = position.sequence_number
        try:
            return self._client.get_shard_iterator(**params)["ShardIterator"]
        except ClientError as error:
            if _client_error_code(error) in TRIMMED_CODES:
                raise DataTrimmed(str(error)) from None
            raise

    def read(self, iterator: str, limit: int) -> ReadResult:
        try:
            response = self._client.get_records(ShardIterator=iterator, Limit=limit)
        except ClientError as error:
            code = _client_error_code(error)
            if code in EXPIRED_CODES:
                raise IteratorExpired(code) from None
            if code in TRIMMED_CODES:
                raise DataTrimmed(code) from None
            raise
        records = [
            dynamodb_record(raw, region=self._region, event_source_arn=self._stream_arn)
            for raw in response.get("Records", [])
        ]
        return ReadResult(records, response.get("NextShardIterator"))


class KinesisShardReader:
    kind = "kinesis"

    def __init__(
        self, client: Any, stream_arn: str, shard_id: str, region: str, invoke_identity_arn: str
    ) -> None:
        self._client = client
        self._stream_arn = stream_arn
        self._stream_name = kinesis_stream_name(stream_arn)
        self.shard_id = shard_id
        self._region = region
        self._identity = invoke_identity_arn

    def iterator(self, position: Position) -> str:
        params: dict[str, Any] = {
            "StreamName": self._stream_name,
            "ShardId": self.shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.sequence_number is not None:
            params["StartingSequenceNumber"] = position.sequence_number
        return self._client.get_shard_iterator(**params)["ShardIterator"]

    def read(self, iterator: str, limit: int) -> ReadResult:
        try:
            response = self._client.get_records(ShardIterator=iterator, Limit=limit)
        except ClientError as error:
            code = _client_error_code(error)
            if code in EXPIRED_CODES:
                raise IteratorExpired(code) from None
            if code in TRIMMED_CODES:
                raise DataTrimmed(code) from None
            raise
        records = [
            kinesis_record(
                raw,
                shard_id=self.shard_id,
                region=self._region,
                event_source_arn=self._stream_arn,
                invoke_identity_arn=self._identity,
            )
            for raw in response.get("Records", [])
        ]
        return ReadResult(records, response.get("NextShardIterator"), response.get("MillisBehindLatest"))


def list_dynamodb_shards(client: Any, stream_arn: str) -> list[ShardInfo]:
    shards: list[ShardInfo] = []
    params: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = client.describe_stream(**params)["StreamDescription"]
        for shard in description.get("Shards", []):
            shards.append(
                ShardInfo(
                    shard["ShardId"],
                    shard.get("ParentShardId"),
                    "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}),
                )
            )
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        params["ExclusiveStartShardId"] = last


def list_kinesis_shards(client: Any, stream_arn: str) -> list[ShardInfo]:
    shards: list[ShardInfo] = []
    params: dict[str, Any] = {"StreamName": kinesis_stream_name(stream_arn)}
    while True:
        response = client.list_shards(**params)
        for shard in response.get("Shards", []):
            shards.append(
                ShardInfo(
                    shard["ShardId"],
                    shard.get("ParentShardId"),
                    "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}),
                )
            )
        token = response.get("NextToken")
        if not token:
            return shards
        params = {"NextToken": token}
