"""The poller's batching, checkpointing, retries, bisection, record age and destination, against fakes."""

from __future__ import annotations

from typing import Any

import pytest

from replication_ops.local.event_sources import InvokeResult, MappingConfig, ShardConsumer, initial_position
from replication_ops.local.streams import LATEST, TRIM_HORIZON, DataTrimmed, Position

from .fakes import FakeDestination, FakeFunction, FakeShard, FakeTime, record

STREAM_ARN = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
FUNCTION_ARN = "arn:aws-cn:lambda:cn-north-1:123456789012:function:f"


def config(**overrides: Any) -> MappingConfig:
    values: dict[str, Any] = {
        "uuid": "u-1",
        "function_arn": FUNCTION_ARN,
        "event_source_arn": STREAM_ARN,
        "batch_size": 10,
        "report_batch_item_failures": True,
        "on_failure_destination": "arn:aws-cn:sqs:cn-north-1:123456789012:failures",
    }
    values.update(overrides)
    return MappingConfig(**values)


def consume(
    shard: FakeShard,
    function: FakeFunction,
    mapping: MappingConfig,
    *,
    start: Position | None = None,
    time: FakeTime | None = None,
    destination: FakeDestination | None = None,
    max_steps: int = 500,
) -> ShardConsumer:
    time = time or FakeTime()
    consumer = ShardConsumer(
        mapping,
        shard,
        function,
        destination,
        start=start or Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    for _ in range(max_steps):
        if consumer.finished:
            break
        consumer.step()
    return consumer


def records(count: int, arrival: float = 1000.0) -> list[Any]:
    return [record(n, arrival) for n in range(1, count + 1)]


def fail_once_at(sequence: str) -> Any:
    seen: set[str] = set()

    def respond(sequences: list[str]) -> InvokeResult:
        if sequence in sequences and sequence not in seen:
            seen.add(sequence)
            return InvokeResult(payload={"batchItemFailures": [{"itemIdentifier": sequence}]})
        return InvokeResult(payload={"batchItemFailures": []})

    return respond


def test_batches_follow_the_batch_size_and_keep_order() -> None:
    function = FakeFunction()
    consumer = consume(FakeShard(records(25)), function, config(batch_size=10))
    assert [len(batch) for batch in function.batches] == [10, 10, 5]
    assert function.delivered() == [str(n) for n in range(1, 26)]
    assert consumer.finished and consumer.checkpoint == "25"
    assert consumer.stats.records_succeeded == 25


def test_the_batching_window_holds_a_small_batch_until_it_elapses() -> None:
    time = FakeTime()
    shard = FakeShard(records(3), closed=False)
    function = FakeFunction()
    consumer = ShardConsumer(
        config(batch_size=100, batching_window_seconds=2.0),
        shard,
        function,
        None,
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    began = time.now
    while not function.batches:
        consumer.step()
        assert time.now - began < 5
    assert function.batches == [["1", "2", "3"]]
    assert time.now - began >= 2.0


def test_a_full_batch_does_not_wait_for_the_window() -> None:
    time = FakeTime()
    function = FakeFunction()
    consume(
        FakeShard(records(10), closed=False),
        function,
        config(batch_size=5, batching_window_seconds=30),
        time=time,
        max_steps=3,
    )
    assert function.batches[:2] == [["1", "2", "3", "4", "5"], ["6", "7", "8", "9", "10"]]
    assert time.now - 1000.0 < 1


def test_partial_failure_checkpoints_before_the_lowest_failure_and_retries_from_there() -> None:
    function = FakeFunction(fail_once_at("4"))
    consumer = consume(FakeShard(records(6)), function, config(batch_size=10))
    assert function.batches == [["1", "2", "3", "4", "5", "6"], ["4", "5", "6"]]
    assert consumer.stats.partial_failures == 1
    assert consumer.checkpoint == "6"


def test_the_lowest_of_several_reported_failures_wins() -> None:
    calls: list[int] = []

    def respond(sequences: list[str]) -> InvokeResult:
        calls.append(1)
        if len(calls) == 1:
            return InvokeResult(
                payload={"batchItemFailures": [{"itemIdentifier": "5"}, {"itemIdentifier": "3"}]}
            )
        return InvokeResult(payload={"batchItemFailures": []})

    function = FakeFunction(respond)
    consume(FakeShard(records(6)), function, config())
    assert function.batches[1] == ["3", "4", "5", "6"]


def test_item_failures_are_ignored_without_report_batch_item_failures() -> None:
    function = FakeFunction(lambda _s: InvokeResult(payload={"batchItemFailures": [{"itemIdentifier": "2"}]}))
    consume(FakeShard(records(3)), function, config(report_batch_item_failures=False))
    assert function.batches == [["1", "2", "3"]]


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"identifier": "2"}]},
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
    ],
)
def test_an_invalid_partial_response_fails_the_whole_batch(response: dict[str, Any]) -> None:
    answers = [InvokeResult(payload=response)]

    def respond(_sequences: list[str]) -> InvokeResult:
        return answers.pop() if answers else InvokeResult(payload=None)

    function = FakeFunction(respond)
    consume(FakeShard(records(3)), function, config())
    assert function.batches == [["1", "2", "3"], ["1", "2", "3"]]


@pytest.mark.parametrize("payload", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_empty_responses_are_complete_success(payload: Any) -> None:
    function = FakeFunction(lambda _s: InvokeResult(payload=payload))
    consumer = consume(FakeShard(records(3)), function, config())
    assert function.batches == [["1", "2", "3"]]
    assert consumer.stats.function_errors == 0


def test_bisect_isolates_a_poison_record_and_sends_it_to_the_destination() -> None:
    def respond(sequences: list[str]) -> InvokeResult:
        if "5" in sequences:
            return InvokeResult(error={"errorType": "ValueError", "errorMessage": "poison"})
        return InvokeResult(payload={"batchItemFailures": []})

    function = FakeFunction(respond)
    destination = FakeDestination()
    consumer = consume(
        FakeShard(records(8)),
        function,
        config(bisect_on_error=True, maximum_retry_attempts=2),
        destination=destination,
    )
    delivered_ok = [seq for batch in function.batches if "5" not in batch for seq in batch]
    assert sorted(delivered_ok, key=int) == ["1", "2", "3", "4", "6", "7", "8"]
    assert function.batches.count(["5"]) == 3  # the first try and two retries
    assert len(destination.documents) == 1
    document = destination.documents[0]
    info = document["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == "5"
    assert info["batchSize"] == 1
    assert info["streamArn"] == STREAM_ARN
    assert info["shardId"] == "shardId-0001"
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["functionArn"] == FUNCTION_ARN
    assert document["responseContext"]["functionError"] == "Unhandled"
    assert consumer.checkpoint == "8" and consumer.finished


def test_bisection_does_not_use_up_retry_attempts() -> None:
    def respond(sequences: list[str]) -> InvokeResult:
        if "8" in sequences and len(sequences) > 1:
            return InvokeResult(error={"errorType": "E", "errorMessage": "x"})
        return InvokeResult(payload={})

    function = FakeFunction(respond)
    destination = FakeDestination()
    consume(
        FakeShard(records(8)),
        function,
        config(bisect_on_error=True, maximum_retry_attempts=0),
        destination=destination,
    )
    assert destination.documents == []  # halving down to ["8"] cost no retry
    assert function.batches[-1] == ["8"]


def test_retries_without_bisect_then_give_up_and_move_on() -> None:
    attempts: list[list[str]] = []

    def respond(sequences: list[str]) -> InvokeResult:
        attempts.append(sequences)
        if sequences[0] == "1":
            return InvokeResult(
                error={"errorType": "E", "errorMessage": "always"}, timed_out=len(attempts) == 2
            )
        return InvokeResult(payload={})

    function = FakeFunction(respond)
    destination = FakeDestination()
    consumer = consume(
        FakeShard(records(12)),
        function,
        config(batch_size=10, maximum_retry_attempts=1),
        destination=destination,
    )
    assert function.batches[:2] == [[str(n) for n in range(1, 11)]] * 2
    assert function.batches[2] == ["11", "12"]
    assert len(destination.documents) == 1
    info = destination.documents[0]["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("1", "10", 10)
    assert destination.documents[0]["requestContext"]["approximateInvokeCount"] == 2
    assert consumer.stats.records_discarded == 10
    assert consumer.checkpoint == "12"


def test_partial_failures_count_as_retries() -> None:
    function = FakeFunction(
        lambda s: InvokeResult(payload={"batchItemFailures": [{"itemIdentifier": s[-1]}]})
    )
    destination = FakeDestination()
    consume(FakeShard(records(3)), function, config(maximum_retry_attempts=2), destination=destination)
    assert function.batches == [["1", "2", "3"], ["3"], ["3"]]
    assert destination.documents[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == "3"


def test_records_older_than_the_maximum_age_are_not_invoked() -> None:
    time = FakeTime(start=10_000.0)
    old = [record(n, arrival=10_000.0 - 500) for n in (1, 2)]
    fresh = [record(n, arrival=10_000.0 - 5) for n in (3, 4)]
    function = FakeFunction()
    destination = FakeDestination()
    consumer = consume(
        FakeShard(old + fresh),
        function,
        config(maximum_record_age_seconds=60),
        time=time,
        destination=destination,
    )
    assert function.batches == [["3", "4"]]
    assert destination.documents[0]["requestContext"]["condition"] == "RecordAgeExceeded"
    assert destination.documents[0]["DDBStreamBatchInfo"]["batchSize"] == 2
    assert consumer.checkpoint == "4"


def test_records_that_age_out_while_retrying_are_given_up() -> None:
    time = FakeTime(start=10_000.0)

    def respond(_sequences: list[str]) -> InvokeResult:
        time.now += 40  # each failed attempt takes a while
        return InvokeResult(error={"errorType": "E", "errorMessage": "down"})

    function = FakeFunction(respond)
    destination = FakeDestination()
    consume(
        FakeShard([record(1, arrival=10_000.0)]),
        function,
        config(maximum_record_age_seconds=60),
        time=time,
        destination=destination,
    )
    assert len(function.batches) == 2
    assert destination.documents[0]["requestContext"]["condition"] == "RecordAgeExceeded"


def test_latest_skips_what_was_there_before() -> None:
    shard = FakeShard(records(3), closed=False)
    function = FakeFunction()
    time = FakeTime()
    consumer = ShardConsumer(
        config(),
        shard,
        function,
        None,
        start=Position(LATEST),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    consumer.step()
    shard.records.extend([record(4), record(5)])
    shard.closed = True
    for _ in range(20):
        if consumer.finished:
            break
        consumer.step()
    assert function.delivered() == ["4", "5"]


def test_an_expired_iterator_is_replaced_after_the_last_record_read() -> None:
    shard = FakeShard(records(30))
    function = FakeFunction()
    time = FakeTime()
    consumer = ShardConsumer(
        config(batch_size=10),
        shard,
        function,
        None,
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    consumer.step()
    shard.expire_next = 1
    for _ in range(50):
        if consumer.finished:
            break
        consumer.step()
    assert function.delivered() == [str(n) for n in range(1, 31)]
    assert consumer.stats.iterator_refreshes == 1
    assert shard.iterators_made[-1] == Position.after("10")


def test_old_iterators_are_renewed_before_they_expire() -> None:
    shard = FakeShard([], closed=False)
    time = FakeTime()
    consumer = ShardConsumer(
        config(),
        shard,
        FakeFunction(),
        None,
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    consumer.step()
    made = len(shard.iterators_made)
    time.now += 3600
    consumer.step()
    assert len(shard.iterators_made) == made + 1


def test_snapshot_reports_idle_and_caught_up_only_after_an_empty_read() -> None:
    shard = FakeShard(records(2), closed=False)
    time = FakeTime()
    consumer = ShardConsumer(
        config(),
        shard,
        FakeFunction(),
        None,
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    assert consumer.snapshot() == (True, None, 0)
    consumer.step()  # reads two records and invokes at once (no window)
    idle, caught_up, read = consumer.snapshot()
    assert idle and caught_up is None and read == 2
    before = time.now
    consumer.step()  # an empty read
    idle, caught_up, read = consumer.snapshot()
    assert idle and caught_up is not None and caught_up >= before and read == 2


def test_a_finished_shard_calls_back_and_is_always_caught_up() -> None:
    finished: list[ShardConsumer] = []
    time = FakeTime()
    consumer = ShardConsumer(
        config(),
        FakeShard(records(1)),
        FakeFunction(),
        None,
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
        on_finished=finished.append,
    )
    for _ in range(5):
        consumer.step()
    assert finished == [consumer]
    assert consumer.snapshot() == (True, float("inf"), 1)


def test_the_payload_limit_splits_batches() -> None:
    big = [record(n, size=2_500_000) for n in range(1, 4)]
    function = FakeFunction()
    consume(FakeShard(big), function, config(batch_size=100))
    assert function.batches == [["1", "2"], ["3"]]


def test_mapping_config_reads_the_lambda_api_shape() -> None:
    mapping = {
        "UUID": "abc",
        "BatchSize": 500,
        "EventSourceArn": STREAM_ARN,
        "FunctionArn": FUNCTION_ARN,
        "State": "Enabled",
        "StartingPosition": "LATEST",
        "MaximumBatchingWindowInSeconds": 1,
        "BisectBatchOnFunctionError": True,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws-cn:sqs:cn-north-1:1:q"}},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "MaximumRecordAgeInSeconds": 21600,
        "MaximumRetryAttempts": -1,
        "ParallelizationFactor": 1,
    }
    parsed = MappingConfig.from_api(mapping)
    assert parsed.batch_size == 500
    assert parsed.batching_window_seconds == 1.0
    assert parsed.starting_position == LATEST
    assert parsed.bisect_on_error and parsed.report_batch_item_failures
    assert parsed.on_failure_destination == "arn:aws-cn:sqs:cn-north-1:1:q"
    assert parsed.maximum_record_age_seconds == 21600 and parsed.maximum_retry_attempts == -1
    assert parsed.kind == "dynamodb" and parsed.enabled
    bare = MappingConfig.from_api({"UUID": "x", "EventSourceArn": STREAM_ARN, "FunctionArn": FUNCTION_ARN})
    assert (bare.batch_size, bare.maximum_retry_attempts, bare.on_failure_destination) == (100, -1, None)
    assert not MappingConfig.from_api({**mapping, "State": "Disabled"}).enabled


def test_shards_found_later_start_at_their_beginning() -> None:
    latest = config(starting_position=LATEST)
    assert initial_position(latest, present_at_start=True) == Position(LATEST)
    assert initial_position(latest, present_at_start=False) == Position(TRIM_HORIZON)
    assert initial_position(config(), present_at_start=True) == Position(TRIM_HORIZON)


# -- how often a shard is read: the mapping's source decides, as Lambda documents it ---------------

KINESIS_ARN = "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/ddbrep-cn-inbox"
CONSUMER_ARN = f"{KINESIS_ARN}/consumer/ddbrep-cn-replicator:1767225600"


class ArrivingShard(FakeShard):
    """An open shard whose records become readable at their arrival time."""

    def __init__(self, records: list[Any], time: FakeTime) -> None:
        super().__init__(records, closed=False)
        self.time = time
        self.read_times: list[float] = []

    def read(self, iterator: str, limit: int) -> Any:
        self.read_times.append(self.time.now)
        start = int(iterator)
        visible = [r for r in self.records[start : start + limit] if r.arrival <= self.time.now]
        return type(super().read(iterator, 0))(visible, str(start + len(visible)))


def mapping_of(event_source_arn: str) -> MappingConfig:
    """As the runner reads it from the Lambda API (the module's mapping, batching window 0)."""
    return MappingConfig.from_api(
        {"UUID": "u", "FunctionArn": FUNCTION_ARN, "EventSourceArn": event_source_arn, "BatchSize": 100}
    )


@pytest.mark.parametrize(
    ("event_source_arn", "seconds_between_reads"),
    [(STREAM_ARN, 0.25), (KINESIS_ARN, 1.0)],
    ids=["dynamodb-stream-four-times-a-second", "kinesis-standard-iterator-once-a-second"],
)
def test_an_idle_shard_is_read_at_lambdas_documented_rate(
    event_source_arn: str, seconds_between_reads: float
) -> None:
    time = FakeTime()
    shard = ArrivingShard([], time)
    consumer = ShardConsumer(
        mapping_of(event_source_arn),
        shard,
        FakeFunction(),
        None,
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    for _ in range(12):
        consumer.step()
    gaps = [later - earlier for earlier, later in zip(shard.read_times, shard.read_times[1:], strict=False)]
    assert len(gaps) >= 10
    assert gaps == pytest.approx([seconds_between_reads] * len(gaps), abs=0.002)


def mean_wait(event_source_arn: str) -> tuple[float, float]:
    """(mean, longest) seconds from a record's arrival to its invocation, over arrivals spread evenly
    across two seconds of an otherwise idle shard."""
    waits = []
    for step in range(200):
        time = FakeTime()
        arrival = time.now + 0.5 + step * 0.01
        function = FakeFunction()
        consumer = ShardConsumer(
            mapping_of(event_source_arn),
            ArrivingShard([record(1, arrival)], time),
            function,
            None,
            start=Position(TRIM_HORIZON),
            clock=time.clock,
            monotonic=time.monotonic,
            sleep=time.sleep,
        )
        while not function.batches:
            consumer.step()
        waits.append(time.now - arrival)
    return sum(waits) / len(waits), max(waits)


def test_an_enhanced_fan_out_consumer_gets_a_record_70_ms_after_its_write_on_average() -> None:
    # Kinesis pushes to an enhanced fan-out consumer, "typically an average of 70 ms" after the write
    # (Kinesis Data Streams developer guide, "Develop enhanced fan-out consumers with dedicated throughput").
    mean, longest = mean_wait(CONSUMER_ARN)
    assert mean == pytest.approx(0.070, abs=0.005)
    assert longest <= 0.141


def test_a_standard_iterator_leaves_a_record_half_a_poll_on_average() -> None:
    mean, longest = mean_wait(KINESIS_ARN)
    assert mean == pytest.approx(0.5, abs=0.02)
    assert longest <= 1.001


def test_a_consumer_mapping_reads_the_consumers_stream() -> None:
    mapping = mapping_of(CONSUMER_ARN)
    assert mapping.enhanced_fan_out and mapping.kind == "kinesis"
    assert mapping.stream_arn == KINESIS_ARN
    assert not mapping_of(KINESIS_ARN).enhanced_fan_out and mapping_of(KINESIS_ARN).stream_arn == KINESIS_ARN


# -- on_read: each read's records, once, for the observations (watcher.Observations) -----------------


class ObservedReads:
    """What a consumer's ``on_read`` was given: (sequence numbers, read_at) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, records: list[Any], read_at: float) -> None:
        self.calls.append(([r.sequence_number for r in records], read_at))

    def sequences(self) -> list[str]:
        return [sequence for sequences, _ in self.calls for sequence in sequences]


def observed_consumer(
    shard: FakeShard, mapping: MappingConfig, time: FakeTime, reads: Any, **kwargs: Any
) -> ShardConsumer:
    return ShardConsumer(
        mapping,
        shard,
        kwargs.pop("function", FakeFunction()),
        kwargs.pop("destination", None),
        start=Position(TRIM_HORIZON),
        clock=time.clock,
        monotonic=time.monotonic,
        sleep=time.sleep,
        on_read=reads,
        **kwargs,
    )


class LoggedShard(ArrivingShard):
    """An arriving shard that notes each read: (when it began, the sequence numbers it returned)."""

    def __init__(self, records: list[Any], time: FakeTime) -> None:
        super().__init__(records, time)
        self.log: list[tuple[float, list[str]]] = []

    def read(self, iterator: str, limit: int) -> Any:
        began = self.time.now
        result = super().read(iterator, limit)
        self.log.append((began, [r.sequence_number for r in result.records]))
        return result


def test_on_read_gets_each_non_empty_read_in_order_with_the_time_the_read_began() -> None:
    time = FakeTime()
    arrivals = [1000.0] * 25 + [1010.1, 1010.1, 1012.3]
    shard = LoggedShard([record(n, at) for n, at in enumerate(arrivals, start=1)], time)
    reads = ObservedReads()
    consumer = observed_consumer(shard, config(batch_size=10), time, reads)
    while time.now < 1015.0:
        consumer.step()
    expected = [(sequences, began) for began, sequences in shard.log if sequences]
    assert [sequences for sequences, _ in expected] == [
        [str(n) for n in range(1, 11)],
        [str(n) for n in range(11, 21)],
        [str(n) for n in range(21, 26)],
        ["26", "27"],
        ["28"],
    ]
    assert reads.calls == expected
    assert len(shard.log) > len(expected) + 30  # the empty reads in between, given to no one


def test_on_read_is_not_called_for_an_empty_read() -> None:
    time = FakeTime()
    reads = ObservedReads()
    consumer = observed_consumer(FakeShard([], closed=False), config(), time, reads)
    for _ in range(10):
        consumer.step()
    assert reads.calls == []


def test_on_read_does_not_see_records_again_when_their_batch_is_retried_or_bisected() -> None:
    def respond(sequences: list[str]) -> InvokeResult:
        if "5" in sequences:
            return InvokeResult(error={"errorType": "ValueError", "errorMessage": "poison"})
        return InvokeResult(payload={"batchItemFailures": []})

    function = FakeFunction(respond)
    reads = ObservedReads()
    consumer = observed_consumer(
        FakeShard(records(8)),
        config(bisect_on_error=True, maximum_retry_attempts=2),
        FakeTime(),
        reads,
        function=function,
        destination=FakeDestination(),
    )
    for _ in range(100):
        if consumer.finished:
            break
        consumer.step()
    assert consumer.finished and len(function.batches) > 3  # retried and bisected
    assert reads.sequences() == [str(n) for n in range(1, 9)]


class TrimmedOnceShard(FakeShard):
    """Refuses the first iterator after a sequence number, as a stream does once that position has
    been trimmed (TrimmedDataAccessException): the consumer starts again from TRIM_HORIZON."""

    def __init__(self, records: list[Any]) -> None:
        super().__init__(records)
        self.trimmed = False

    def iterator(self, position: Position) -> str:
        if position.sequence_number is not None and not self.trimmed:
            self.trimmed = True
            raise DataTrimmed("TrimmedDataAccessException")
        return super().iterator(position)


def test_on_read_leaves_out_what_is_read_again_after_data_trimmed() -> None:
    shard = TrimmedOnceShard(records(30))
    function = FakeFunction()
    reads = ObservedReads()
    consumer = observed_consumer(shard, config(batch_size=10), FakeTime(), reads, function=function)
    consumer.step()
    shard.expire_next = 1  # the next iterator is made after "10", and refused
    for _ in range(50):
        if consumer.finished:
            break
        consumer.step()
    assert shard.trimmed and function.delivered()[:20] == [str(n) for n in range(1, 11)] * 2
    assert reads.sequences() == [str(n) for n in range(1, 31)]


def test_a_failing_on_read_is_logged_and_the_shard_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def fail(_records: list[Any], _read_at: float) -> None:
        raise ValueError("observer broke")

    function = FakeFunction()
    consumer = observed_consumer(
        FakeShard(records(25)), config(batch_size=10), FakeTime(), fail, function=function
    )
    for _ in range(50):
        if consumer.finished:
            break
        consumer.step()
    assert consumer.finished and function.delivered() == [str(n) for n in range(1, 26)]
    assert consumer.stats.poll_errors == 0
    assert caplog.text.count("read observer failed") == 3
