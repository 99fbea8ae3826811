"""Per-stage lag: the times a change passes (origin write, stream record, forwarder send, inbox
arrival, apply), carried in the envelope and measured by the replicator (replication.lag).

Sources of the times: DynamoDB Streams' ApproximateCreationDateTime is epoch seconds "rounded down to
the closest second" (DynamoDB Streams API reference, StreamRecord); a Kinesis record's
approximateArrivalTimestamp in a Lambda event is epoch seconds with a millisecond fraction (the Lambda
developer guide's Kinesis example event: ``"approximateArrivalTimestamp": 1545084650.987``).
"""

from __future__ import annotations

import json
import math
import zlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replication.changes import Change
from replication.kinesis_sender import OutgoingRecord
from replication.lag import (
    END_TO_END,
    FORWARDER_TO_INBOX,
    INBOX_TO_APPLY,
    STAGES,
    STREAM_TO_FORWARDER,
    Passage,
    arrival_time,
    origin_time,
    stage_lags,
)
from replication.settings import VersionAttributes
from replication.versions import Version
from replication.wire import Envelope, decode, encode, partition_key

from .events import kinesis_event_record
from .harness import LOGICAL, TABLE, Side

NAMES = VersionAttributes()
KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}

# The Lambda developer guide's Kinesis event record ("Using Lambda with Kinesis", example event).
AWS_KINESIS_EVENT_RECORD = {
    "kinesis": {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "1",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
        "approximateArrivalTimestamp": 1545084650.987,
    },
    "eventSource": "aws:kinesis",
    "eventVersion": "1.0",
    "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
    "eventName": "aws:kinesis:record",
    "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
    "awsRegion": "us-east-2",
    "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
}


def upsert(ts: str, created: int | None, index: int = 1) -> Change:
    key = {"pk": {"S": f"user#{index}"}, "sk": {"S": "profile"}}
    item = {**key, "city": {"S": "Beijing"}, NAMES.timestamp: {"N": ts}, NAMES.origin: {"S": "cn-north-1"}}
    return Change(key, Version(Decimal(ts), "cn-north-1"), item, created)


def delete(ts: str, created: int | None, index: int = 1) -> Change:
    key = {"pk": {"S": f"user#{index}"}, "sk": {"S": "profile"}}
    return Change(key, Version(Decimal(ts), "cn-north-1", True), stream_created=created)


def body_of(data: bytes) -> dict:
    return json.loads(zlib.decompress(data[4:]))


def envelope(*changes: Change, sent_at_ms: int = 1764200001600) -> Envelope:
    return Envelope("changes", "cn-north-1", TABLE, NAMES, sent_at_ms, changes, name=LOGICAL)


# -- the envelope -----------------------------------------------------------------------------


def test_each_change_comes_back_with_its_stream_records_second() -> None:
    sent = envelope(upsert("1764200000.5", 1764200000, 1), delete("1764200001", 1764200001, 2))
    decoded = decode(encode(sent))
    assert [c.stream_created for c in decoded.changes] == [1764200000, 1764200001]


def test_stream_seconds_travel_as_runs_not_one_per_change() -> None:
    changes = [upsert("1764200000.5", 1764200000, i) for i in range(3)] + [
        upsert("1764200001.2", 1764200001, 9)
    ]
    assert body_of(encode(envelope(*changes)))["sc"] == [[1764200000, 3], [1764200001, 1]]


def test_a_record_from_an_older_forwarder_without_stream_seconds_is_applied_untimed() -> None:
    """No ``sc``: the body an older forwarder sends; its changes decode, with no stream second."""
    body = body_of(encode(envelope(upsert("1764200000.5", None))))
    assert "sc" not in body
    raw = b"DR\x01\x01" + zlib.compress(json.dumps(body).encode())
    decoded = decode(raw)
    assert decoded.refused == ()
    assert decoded.changes == (upsert("1764200000.5", None),)
    assert decoded.changes[0].stream_created is None


@pytest.mark.parametrize(
    "runs",
    [
        "1764200000",
        [[1764200000, 2]],  # covers more changes than the record has
        [[1764200000, 0], [1764200000, 1]],
        [[1764200000.5, 1]],
        [[True, 1]],
        [[1764200000]],
    ],
)
def test_malformed_stream_seconds_only_untime_the_changes(runs: object) -> None:
    body = body_of(encode(envelope(upsert("1764200000.5", 1764200000))))
    body["sc"] = runs
    decoded = decode(b"DR\x01\x01" + zlib.compress(json.dumps(body).encode()))
    assert decoded.refused == ()
    assert [c.stream_created for c in decoded.changes] == [None]


def test_the_stream_second_is_not_part_of_what_a_change_is() -> None:
    """Coalescing and conflict rules compare changes: the time they were seen never decides."""
    assert upsert("1764200000.5", 1764200000) == upsert("1764200000.5", None)


# -- the forwarder --------------------------------------------------------------------------


def test_the_forwarder_sends_each_changes_stream_record_second(aws: None) -> None:
    china = Side("cn-north-1", "us-east-1")
    china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000.5")
    china.pending()[0]["dynamodb"]["ApproximateCreationDateTime"] = 1764200000
    china.forward()
    (record,) = china.sender.outbox
    assert [c.stream_created for c in decode(record.data).changes] == [1764200000]


# -- the times and the stages ---------------------------------------------------------------


def test_the_arrival_time_is_the_kinesis_records_approximate_arrival_timestamp() -> None:
    assert arrival_time(AWS_KINESIS_EVENT_RECORD) == 1545084650.987


def test_a_kinesis_record_without_an_arrival_time_has_none() -> None:
    record = {**AWS_KINESIS_EVENT_RECORD, "kinesis": {"data": "AA=="}}
    assert arrival_time(record) is None


def test_the_origin_is_the_version_timestamp_within_its_stream_records_second() -> None:
    assert origin_time(Decimal("1764200000.25"), 1764200000) == 1764200000.25


def test_a_version_older_than_its_stream_record_starts_at_the_stream_records_second() -> None:
    """A backfilled or long-unchanged version is not the write's time."""
    assert origin_time(Decimal("1700000000"), 1764200000) == 1764200000.0


def test_without_a_stream_second_the_origin_is_the_version_timestamp() -> None:
    assert origin_time(Decimal("1764200000.25"), None) == 1764200000.25


def test_a_negative_stage_from_clock_skew_is_clamped_to_zero() -> None:
    """The peer partition's Kinesis clock 0.2 s behind the forwarder's: arrival before send."""
    lags = stage_lags(100.0, Passage(sent=100.5, arrived=100.3), applied=101.0)
    assert lags[FORWARDER_TO_INBOX] == 0.0
    assert lags[INBOX_TO_APPLY] == pytest.approx(0.7)
    assert lags[END_TO_END] == pytest.approx(1.0)


def test_without_an_arrival_time_only_the_first_stage_and_end_to_end_are_known() -> None:
    lags = stage_lags(100.0, Passage(sent=100.5, arrived=None), applied=101.0)
    assert set(lags) == {STREAM_TO_FORWARDER, END_TO_END}


times = st.floats(min_value=0, max_value=30, allow_nan=False)


@given(origin=st.floats(min_value=1.7e9, max_value=1.8e9), gaps=st.tuples(times, times, times))
def test_stages_sum_to_end_to_end_when_the_clocks_agree(origin: float, gaps: tuple[float, ...]) -> None:
    sent = origin + gaps[0]
    arrived = sent + gaps[1]
    applied = arrived + gaps[2]
    lags = stage_lags(origin, Passage(sent, arrived), applied)
    assert math.isclose(sum(lags[s] for s in STAGES), lags[END_TO_END], abs_tol=1e-6)


@given(
    origin=st.floats(min_value=1.7e9, max_value=1.8e9),
    skews=st.tuples(*[st.floats(min_value=-5, max_value=5)] * 3),
)
def test_no_stage_is_ever_negative_and_skew_never_shrinks_the_sum(
    origin: float, skews: tuple[float, ...]
) -> None:
    lags = stage_lags(origin, Passage(origin + skews[0], origin + skews[1]), origin + skews[2])
    assert all(value >= 0 for value in lags.values())
    assert sum(lags[s] for s in STAGES) >= lags[END_TO_END] - 1e-6


# -- the replicator -------------------------------------------------------------------------


def test_the_replicator_times_each_stage_of_an_applied_change(aws: None) -> None:
    """Written at .1 (its version), stream record in that second, sent at .6, in the inbox at .75,
    applied at 2.0 by the replicator's clock."""
    us = Side("us-east-1", "cn-north-1", clock=lambda: 1764200002.0)
    data = encode(envelope(upsert("1764200001.1", 1764200001), sent_at_ms=1764200001600))
    record = kinesis_event_record(
        OutgoingRecord(data, partition_key(upsert("1764200001.1", None))),
        "arn:aws:kinesis:us-east-1:1:stream/inbox",
        "us-east-1",
    )
    record["kinesis"]["approximateArrivalTimestamp"] = 1764200001.75
    tally = us.replicator.process([record]).tables[LOGICAL]
    lags = tally.stage_lags_ms
    assert lags[STREAM_TO_FORWARDER] == [pytest.approx(500, abs=0.01)]
    assert lags[FORWARDER_TO_INBOX] == [pytest.approx(150, abs=0.01)]
    assert lags[INBOX_TO_APPLY] == [pytest.approx(250, abs=0.01)]
    assert lags[END_TO_END] == [pytest.approx(900, abs=0.01)]
    assert tally.latencies_ms == lags[END_TO_END]


def test_an_applied_delete_is_not_timed(aws: None) -> None:
    """A delete's version is made from its stream record's second: too coarse for a lag."""
    us = Side("us-east-1", "cn-north-1", clock=lambda: 1764200002.0)
    change = delete("1764200001", 1764200001)
    record = kinesis_event_record(
        OutgoingRecord(encode(envelope(change)), partition_key(change)),
        "arn:aws:kinesis:us-east-1:1:stream/inbox",
        "us-east-1",
    )
    report = us.replicator.process([record])
    assert report.tables[LOGICAL].changes_received == 1
    assert report.tables[LOGICAL].stage_lags_ms == {}
