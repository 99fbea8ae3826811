"""What Lambda's stream poller does for one shard of one event source mapping.

Reads the shard, gathers batches (batch size, batching window, the 6 MB payload limit), invokes the
function and keeps a checkpoint, honouring the mapping's settings the way Lambda documents them:

- ``ReportBatchItemFailures``: checkpoint before the lowest failed sequence number, retry from there;
  an invalid response fails the whole batch;
- ``BisectBatchOnFunctionError``: a failed batch is split in two and the halves retried in order;
  splitting does not use up retry attempts;
- ``MaximumRetryAttempts`` (-1: until the records expire) and ``MaximumRecordAgeInSeconds`` (-1: no
  limit): what is given up goes to the on-failure destination as an invocation record with the
  batch's metadata (``DDBStreamBatchInfo`` / ``KinesisBatchInfo``), and the shard moves on;
- ``StartingPosition`` TRIM_HORIZON or LATEST for the shards present when polling starts; shards
  found later (children after a split or a stream's rollover) are read from their start once their
  parent is finished;
- an expired iterator is replaced by a new one after the last record read.

``on_read`` hands each read's records to an observer as they are read (the local environment's
``watcher.Observations``: what each table's stream showed, and when), so that nothing else has to read
the streams a second time.

Everything outside (the shard, the function, the destination, time) comes in through small
interfaces, so the logic runs against fakes in the unit tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from replication_ops.local.events import (
    CONDITION_RECORD_AGE_EXCEEDED,
    CONDITION_RETRIES_EXHAUSTED,
    KIND_DYNAMODB,
    MAX_PAYLOAD_BYTES,
    InvalidBatchResponse,
    StreamRecord,
    event,
    failed_index,
    invocation_record,
    source_kind,
)
from replication_ops.local.streams import (
    ITERATOR_MAX_AGE_SECONDS,
    LATEST,
    READ_LIMIT,
    TRIM_HORIZON,
    DataTrimmed,
    IteratorExpired,
    Position,
    ShardReader,
)

log = logging.getLogger(__name__)

# How often Lambda reads one shard, the right value from AWS's documentation, by kind of source:
# - a DynamoDB stream: "Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times
#   per second" (Lambda developer guide, "Using Lambda with DynamoDB", Polling and batching streams);
# - a Kinesis stream through a standard iterator: "Lambda polls each shard in your Kinesis stream for
#   records at a base rate of once per second" (Lambda developer guide, "Using Lambda with Kinesis Data
#   Streams", Polling and batching streams);
# - a Kinesis enhanced fan-out consumer: nothing is polled, Kinesis pushes the records over
#   SubscribeToShard, "typically an average of 70 ms" after they are written (Kinesis Data Streams
#   developer guide, "Develop enhanced fan-out consumers with dedicated throughput"). moto has no
#   SubscribeToShard, so the push is emulated by reading every 140 ms: a record then waits 70 ms on
#   average, as it would for the push.
# In each case, a read that returns records is followed by another at once (Lambda "keeps processing
# batches until the function catches up with the stream").
DYNAMODB_POLL_SECONDS = 0.25
KINESIS_POLL_SECONDS = 1.0
ENHANCED_FAN_OUT_PROPAGATION_SECONDS = 0.07
ENHANCED_FAN_OUT_READ_SECONDS = 2 * ENHANCED_FAN_OUT_PROPAGATION_SECONDS
CONSUMER_ARN_MARK = "/consumer/"
RETRY_BACKOFF_BASE_SECONDS = 0.25
RETRY_BACKOFF_MAX_SECONDS = 5.0
EVENT_OVERHEAD_BYTES = 16


@dataclass(frozen=True)
class MappingConfig:
    """The settings of one event source mapping that the poller honours."""

    uuid: str
    function_arn: str
    event_source_arn: str
    batch_size: int = 100
    batching_window_seconds: float = 0.0
    starting_position: str = TRIM_HORIZON
    maximum_retry_attempts: int = -1
    bisect_on_error: bool = False
    maximum_record_age_seconds: int = -1
    report_batch_item_failures: bool = False
    on_failure_destination: str | None = None
    parallelization_factor: int = 1
    enabled: bool = True

    @property
    def kind(self) -> str:
        return source_kind(self.stream_arn)

    @property
    def enhanced_fan_out(self) -> bool:
        """Whether the source is a Kinesis stream consumer (enhanced fan-out) rather than a stream."""
        return CONSUMER_ARN_MARK in self.event_source_arn and ":kinesis:" in self.event_source_arn

    @property
    def stream_arn(self) -> str:
        """The stream read: the event source itself, or the stream of an enhanced fan-out consumer, whose
        ARN is the stream's followed by ``/consumer/<name>:<creation timestamp>`` (Kinesis Data Streams
        API reference, RegisterStreamConsumer)."""
        if self.enhanced_fan_out:
            return self.event_source_arn.split(CONSUMER_ARN_MARK, 1)[0]
        return self.event_source_arn

    @property
    def poll_interval_seconds(self) -> float:
        """How often Lambda reads one shard of this mapping's source (see the constants above)."""
        if self.kind == KIND_DYNAMODB:
            return DYNAMODB_POLL_SECONDS
        if self.enhanced_fan_out:
            return ENHANCED_FAN_OUT_READ_SECONDS
        return KINESIS_POLL_SECONDS

    @classmethod
    def from_api(cls, mapping: dict[str, Any]) -> MappingConfig:
        """From a ListEventSourceMappings / GetEventSourceMapping entry."""

        def number(name: str, default: int) -> int:
            value = mapping.get(name)
            return default if value is None else int(value)

        destination = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return cls(
            uuid=mapping["UUID"],
            function_arn=mapping["FunctionArn"],
            event_source_arn=mapping["EventSourceArn"],
            batch_size=number("BatchSize", 100),
            batching_window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=mapping.get("StartingPosition") or TRIM_HORIZON,
            maximum_retry_attempts=number("MaximumRetryAttempts", -1),
            bisect_on_error=bool(mapping.get("BisectBatchOnFunctionError")),
            maximum_record_age_seconds=number("MaximumRecordAgeInSeconds", -1),
            report_batch_item_failures="ReportBatchItemFailures"
            in (mapping.get("FunctionResponseTypes") or []),
            on_failure_destination=destination or None,
            parallelization_factor=number("ParallelizationFactor", 1),
            enabled=mapping.get("State", "Enabled") not in ("Disabled", "Disabling"),
        )


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one synchronous invocation."""

    payload: Any = None
    error: dict[str, Any] | None = None  # errorType / errorMessage: an unhandled function error
    timed_out: bool = False

    @property
    def function_error(self) -> str | None:
        if self.timed_out or self.error is not None:
            return "Unhandled"
        return None


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> InvokeResult: ...


class FailureDestination(Protocol):
    def send(self, document: dict[str, Any]) -> None: ...


@dataclass
class ConsumerStats:
    records_read: int = 0
    data_bytes_read: int = 0  # Kinesis: sum of the records' data blobs
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    records_succeeded: int = 0
    records_discarded: int = 0
    failure_documents: list[dict[str, Any]] = field(default_factory=list)
    iterator_refreshes: int = 0
    poll_errors: int = 0


@dataclass
class _Batch:
    records: list[StreamRecord]
    attempts: int = 0  # failed invocations of (part of) these records, bisections excluded
    invokes: int = 0  # invocations that included these records (for approximateInvokeCount)


class ShardConsumer:
    """Polls one shard for one mapping and invokes the function, one batch at a time, in order."""

    def __init__(
        self,
        config: MappingConfig,
        reader: ShardReader,
        invoker: Invoker,
        destination: FailureDestination | None,
        *,
        start: Position,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        on_finished: Callable[[ShardConsumer], None] | None = None,
        on_invoke: Callable[[list[StreamRecord], InvokeResult, float], None] | None = None,
        on_read: Callable[[list[StreamRecord], float], None] | None = None,
    ) -> None:
        """``on_read(records, read_at)``: called after each read that returned records, in the shard's
        order, with ``read_at`` the wall-clock time (``clock``, epoch seconds) at which that read began.
        Each record is handed over once: a retried or bisected batch is not read again, and records
        read again from TRIM_HORIZON after ``DataTrimmed`` are left out. An exception in it is logged,
        never stops the shard (the observer's owner reports it)."""
        self.config = config
        self.reader = reader
        self.shard_id = reader.shard_id
        self._invoker = invoker
        self._destination = destination
        self._clock = clock
        self._monotonic = monotonic
        self._stop = stop or threading.Event()
        self._sleep = sleep or self._stop.wait
        self._on_finished = on_finished
        self._on_invoke = on_invoke
        self._on_read = on_read
        self._observed_through: int | None = None  # sequence_key of the last record given to on_read
        self._poll_interval = config.poll_interval_seconds
        self._read_at: float | None = None  # when the last read began
        self._last_read_returned = False
        self._lock = threading.Lock()
        self._buffer: deque[StreamRecord] = deque()
        self._buffer_since: float | None = None  # when the oldest buffered record was read
        self._position = start  # where the next iterator starts (after the last record read)
        self._iterator: str | None = None
        self._iterator_at = 0.0
        self._shard_end = False
        self.finished = False
        self.checkpoint: str | None = None  # the last sequence number done with
        self.in_flight = False
        self.caught_up_at: float | None = None  # start of the last empty read with nothing pending
        self.stats = ConsumerStats()

    # -- observation (for quiescence) ----------------------------------------------------------

    def snapshot(self) -> tuple[bool, float | None, int]:
        """(idle, caught_up_at, records_read): idle means nothing buffered, nothing in flight."""
        with self._lock:
            idle = self.finished or (not self.in_flight and not self._buffer)
            caught_up = float("inf") if self.finished else self.caught_up_at
            return idle, caught_up, self.stats.records_read

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Poll until stopped. Read errors (the partition briefly unreachable, throttling) are retried
        with a growing pause from where the shard was left, as Lambda's poller does."""
        failures = 0
        while not self._stop.is_set() and not self.finished:
            try:
                self.step()
                failures = 0
            except Exception as error:
                failures += 1
                self.stats.poll_errors += 1
                self._iterator = None
                if failures == 1:
                    log.warning("shard %s of %s: %s; retrying", self.shard_id, self.config.uuid, error)
                self._sleep(min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2**failures))

    def step(self) -> None:
        """One round: read if there is room, then invoke if a batch is due, else wait a little."""
        if self.finished:
            return
        read_any = False
        if not self._shard_end and len(self._buffer) < self.config.batch_size and self._read_due():
            read_any = self._read()
        if self._batch_due():
            batch = self._take_batch()
            self._process(batch)
            with self._lock:
                self.in_flight = False
            return
        if self._shard_end and not self._buffer:
            with self._lock:
                self.finished = True
            if self._on_finished:
                self._on_finished(self)
            return
        if not read_any:
            wait = self._poll_interval
            if self._read_at is not None:
                wait = max(0.0, self._read_at + self._poll_interval - self._monotonic())
            if self._buffer_since is not None:
                due = self._buffer_since + self.config.batching_window_seconds - self._monotonic()
                wait = max(0.0, min(wait, due))
            self._sleep(wait)

    def _read_due(self) -> bool:
        """The first read, a read after one that returned records (catching up), or the poll interval
        elapsed since the last read began."""
        return (
            self._read_at is None
            or self._last_read_returned
            or self._monotonic() - self._read_at >= self._poll_interval
        )

    def _read(self) -> bool:
        started = self._monotonic()
        self._read_at = started
        read_at = self._clock()
        limit = min(READ_LIMIT.get(self.reader.kind, 1000), max(1, self.config.batch_size))
        for _ in range(3):
            try:
                iterator = self._current_iterator()
                result = self.reader.read(iterator, limit)
                break
            except IteratorExpired:
                self.stats.iterator_refreshes += 1
                self._iterator = None
            except DataTrimmed:
                log.warning("shard %s: position trimmed, starting again from TRIM_HORIZON", self.shard_id)
                self._position = Position(TRIM_HORIZON)
                self._iterator = None
        else:
            raise RuntimeError(f"shard {self.shard_id}: could not get a working iterator")
        self._iterator = result.next_iterator
        self._iterator_at = self._monotonic()
        self._last_read_returned = bool(result.records)
        if result.records:
            self._position = Position.after(result.records[-1].sequence_number)
        with self._lock:
            if result.records:
                if not self._buffer:
                    self._buffer_since = self._monotonic()
                self._buffer.extend(result.records)
                self.caught_up_at = None
                self.stats.records_read += len(result.records)
                self.stats.data_bytes_read += sum(r.data_bytes for r in result.records)
            elif not self._buffer and not self.in_flight:
                self.caught_up_at = started
            if result.next_iterator is None:
                self._shard_end = True
        if result.records and self._on_read is not None:
            self._observe(result.records, read_at)
        return bool(result.records)

    def _observe(self, records: list[StreamRecord], read_at: float) -> None:
        assert self._on_read is not None
        through = self._observed_through
        new = records if through is None else [r for r in records if r.sequence_key > through]
        if not new:
            return
        self._observed_through = new[-1].sequence_key
        try:
            self._on_read(new, read_at)
        except Exception:
            log.exception("shard %s: read observer failed", self.shard_id)

    def _current_iterator(self) -> str:
        max_age = ITERATOR_MAX_AGE_SECONDS.get(self.reader.kind, 240.0)
        if self._iterator is None or self._monotonic() - self._iterator_at > max_age:
            self._iterator = self.reader.iterator(self._position)
            self._iterator_at = self._monotonic()
        return self._iterator

    def _batch_due(self) -> bool:
        if not self._buffer:
            return False
        if len(self._buffer) >= self.config.batch_size or self._shard_end:
            return True
        if self._payload_size(len(self._buffer)) >= MAX_PAYLOAD_BYTES:
            return True
        assert self._buffer_since is not None
        return self._monotonic() - self._buffer_since >= self.config.batching_window_seconds

    def _payload_size(self, count: int) -> int:
        size = EVENT_OVERHEAD_BYTES
        for index, record in enumerate(self._buffer):
            if index >= count:
                break
            size += record.size + 1
        return size

    def _take_batch(self) -> list[StreamRecord]:
        with self._lock:
            batch: list[StreamRecord] = []
            size = EVENT_OVERHEAD_BYTES
            while self._buffer and len(batch) < self.config.batch_size:
                record = self._buffer[0]
                if batch and size + record.size + 1 > MAX_PAYLOAD_BYTES:
                    break
                batch.append(self._buffer.popleft())
                size += record.size + 1
            self._buffer_since = self._monotonic() if self._buffer else None
            self.in_flight = True
            return batch

    # -- one batch, with retries, bisection and the on-failure destination --------------------

    def _process(self, records: list[StreamRecord]) -> None:
        pending: deque[_Batch] = deque([_Batch(records)])
        while pending and not self._stop.is_set():
            batch = pending.popleft()
            batch.records = self._drop_expired(batch)
            if not batch.records:
                continue
            result = self._invoke(batch)
            failed_at, invalid = self._failed_at(result, batch.records)
            if result.function_error is None and failed_at is None:
                self._done(batch.records)
                continue
            if result.function_error is not None or invalid:
                self.stats.function_errors += 1
                if self.config.bisect_on_error and len(batch.records) > 1:
                    self.stats.bisections += 1
                    middle = len(batch.records) // 2
                    pending.appendleft(_Batch(batch.records[middle:], batch.attempts, batch.invokes))
                    pending.appendleft(_Batch(batch.records[:middle], batch.attempts, batch.invokes))
                    continue
                retry = batch
            else:
                assert failed_at is not None
                self.stats.partial_failures += 1
                if failed_at > 0:
                    self._done(batch.records[:failed_at])
                retry = _Batch(batch.records[failed_at:], batch.attempts, batch.invokes)
            retry.attempts += 1
            limit = self.config.maximum_retry_attempts
            if limit >= 0 and retry.attempts > limit:
                self._give_up(retry, CONDITION_RETRIES_EXHAUSTED, result.function_error)
                continue
            self._sleep(
                min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2 ** (retry.attempts - 1))
            )
            pending.appendleft(retry)

    def _invoke(self, batch: _Batch) -> InvokeResult:
        batch.invokes += 1
        self.stats.invocations += 1
        began = self._monotonic()
        try:
            result = self._invoker.invoke(event(batch.records))
        except Exception as error:  # the runtime itself failed: Lambda counts it as an error
            log.exception("shard %s: invocation failed", self.shard_id)
            result = InvokeResult(error={"errorType": "Runtime.Unknown", "errorMessage": str(error)})
        if self._on_invoke is not None:
            try:
                self._on_invoke(batch.records, result, self._monotonic() - began)
            except Exception:
                log.exception("shard %s: invocation observer failed", self.shard_id)
        return result

    def _failed_at(self, result: InvokeResult, records: list[StreamRecord]) -> tuple[int | None, bool]:
        """(index of the lowest failed record or None, whether the response was invalid)."""
        if result.function_error is not None or not self.config.report_batch_item_failures:
            return None, False
        try:
            return failed_index(result.payload, records), False
        except InvalidBatchResponse as error:
            log.warning("shard %s: %s; the whole batch fails", self.shard_id, error)
            return 0, True

    def _drop_expired(self, batch: _Batch) -> list[StreamRecord]:
        limit = self.config.maximum_record_age_seconds
        if limit < 0:
            return batch.records
        now = self._clock()
        cut = 0
        while cut < len(batch.records) and now - batch.records[cut].arrival > limit:
            cut += 1
        if cut:
            self._give_up(
                _Batch(batch.records[:cut], batch.attempts, batch.invokes),
                CONDITION_RECORD_AGE_EXCEEDED,
                None,
            )
        return batch.records[cut:]

    def _give_up(self, batch: _Batch, condition: str, function_error: str | None) -> None:
        self.stats.records_discarded += len(batch.records)
        document = invocation_record(
            kind=self.config.kind,
            records=batch.records,
            shard_id=self.shard_id,
            stream_arn=self.config.stream_arn,
            function_arn=self.config.function_arn,
            condition=condition,
            invoke_count=batch.invokes,
            function_error=function_error,
            now=self._clock(),
        )
        self.stats.failure_documents.append(document)
        log.warning(
            "shard %s: %d records given up (%s), first sequence number %s",
            self.shard_id,
            len(batch.records),
            condition,
            batch.records[0].sequence_number,
        )
        if self._destination is not None:
            try:
                self._destination.send(document)
            except Exception:
                # Kept in stats.failure_documents (and the log) rather than blocking the shard.
                log.exception("shard %s: the on-failure destination refused the record", self.shard_id)
        self.checkpoint = batch.records[-1].sequence_number

    def _done(self, records: list[StreamRecord]) -> None:
        self.stats.records_succeeded += len(records)
        self.checkpoint = records[-1].sequence_number


def initial_position(config: MappingConfig, *, present_at_start: bool) -> Position:
    """Shards present when polling starts follow the mapping; shards found later start at their beginning."""
    if present_at_start and config.starting_position == LATEST:
        return Position(LATEST)
    return Position(TRIM_HORIZON)
