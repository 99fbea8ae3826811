"""Fakes for the runner's unit tests: a shard, a function, a destination and a clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replication_ops.local.event_sources import InvokeResult
from replication_ops.local.events import StreamRecord
from replication_ops.local.streams import (
    AFTER_SEQUENCE_NUMBER,
    LATEST,
    TRIM_HORIZON,
    IteratorExpired,
    Position,
    ReadResult,
)


def record(sequence: int, arrival: float = 1000.0, size: int = 100) -> StreamRecord:
    text = str(sequence)
    return StreamRecord(text, arrival, {"dynamodb": {"SequenceNumber": text}, "eventName": "INSERT"}, size)


class FakeTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def clock(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


class FakeShard:
    """A shard whose records can grow; iterators are positions; can expire iterators on demand."""

    kind = "dynamodb"

    def __init__(
        self, records: list[StreamRecord], *, closed: bool = True, shard_id: str = "shardId-0001"
    ) -> None:
        self.records = list(records)
        self.closed = closed
        self.shard_id = shard_id
        self.expire_next = 0
        self.reads = 0
        self.iterators_made: list[Position] = []

    def _index_after(self, sequence: str) -> int:
        for index, item in enumerate(self.records):
            if item.sequence_number == sequence:
                return index + 1
        raise AssertionError(f"unknown sequence number {sequence}")

    def iterator(self, position: Position) -> str:
        self.iterators_made.append(position)
        if position.kind == TRIM_HORIZON:
            return "0"
        if position.kind == LATEST:
            return str(len(self.records))
        assert position.kind == AFTER_SEQUENCE_NUMBER and position.sequence_number is not None
        return str(self._index_after(position.sequence_number))

    def read(self, iterator: str, limit: int) -> ReadResult:
        self.reads += 1
        if self.expire_next:
            self.expire_next -= 1
            raise IteratorExpired("ExpiredIteratorException")
        start = int(iterator)
        batch = self.records[start : start + limit]
        end = start + len(batch)
        done = self.closed and end >= len(self.records)
        return ReadResult(batch, None if done else str(end))


class FakeFunction:
    """Records every event; answers with ``respond(sequence numbers) -> InvokeResult``."""

    def __init__(self, respond: Callable[[list[str]], InvokeResult] | None = None) -> None:
        self.batches: list[list[str]] = []
        self._respond = respond or (lambda _seqs: InvokeResult(payload={"batchItemFailures": []}))

    def invoke(self, event: dict[str, Any]) -> InvokeResult:
        sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.batches.append(sequences)
        return self._respond(sequences)

    def delivered(self) -> list[str]:
        return [seq for batch in self.batches for seq in batch]


class FakeDestination:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def send(self, document: dict[str, Any]) -> None:
        self.documents.append(document)
