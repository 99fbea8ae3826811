"""Sending to the peer inbox: limits, retries of rejected records only, credential refresh."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from replication.backoff import Backoff
from replication.failures import FailureKind
from replication.kinesis_sender import MAX_REQUEST_BYTES, KinesisSender, OutgoingRecord, request_groups


class ScriptedKinesis:
    """put_records answers from a script: per call, an exception or the indices to reject."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[list[bytes]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([r["Data"] for r in Records])
        step = self.script.pop(0) if self.script else set()
        if isinstance(step, Exception):
            raise step
        return {
            "FailedRecordCount": len(step),
            "Records": [
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
                if i in step
                else {"SequenceNumber": "1", "ShardId": "shardId-0"}
                for i in range(len(Records))
            ],
        }


class FakeSession:
    def __init__(self, client: ScriptedKinesis) -> None:
        self.client = client
        self.refreshes = 0

    def kinesis(self, *, refresh: bool = False) -> ScriptedKinesis:
        self.refreshes += refresh
        return self.client


def sender(client: ScriptedKinesis, session: FakeSession | None = None) -> KinesisSender:
    return KinesisSender(
        session or FakeSession(client),  # type: ignore[arg-type]
        "inbox",
        backoff_factory=lambda: Backoff(sleep=lambda _: None, max_attempts=4),
    )


def records(count: int, size: int = 10) -> list[OutgoingRecord]:
    return [OutgoingRecord(bytes([i % 256]) * size, f"key{i}") for i in range(count)]


def test_requests_hold_at_most_500_records() -> None:
    assert [len(group) for group in request_groups(records(1201))] == [500, 500, 201]


def test_requests_stay_under_the_request_byte_limit() -> None:
    big = records(12, size=1024 * 1024 - 10)
    groups = request_groups(big)
    assert all(sum(big[i].size for i in group) <= MAX_REQUEST_BYTES for group in groups)
    assert sorted(i for group in groups for i in group) == list(range(12))


def test_only_rejected_records_are_sent_again() -> None:
    client = ScriptedKinesis([{1, 3}, set()])
    result = sender(client).send(records(5))
    assert result.delivered == {0, 1, 2, 3, 4}
    assert client.calls[1] == [client.calls[0][1], client.calls[0][3]]


def test_records_still_rejected_when_retries_run_out_are_reported_undelivered() -> None:
    client = ScriptedKinesis([{0}] * 10)
    result = sender(client).send(records(2))
    assert result.undelivered == {0}
    assert result.delivered == {1}
    assert result.last_error == "ProvisionedThroughputExceededException"


def test_an_unreachable_peer_leaves_everything_undelivered() -> None:
    client = ScriptedKinesis([EndpointConnectionError(endpoint_url="https://kinesis")] * 10)
    result = sender(client).send(records(3))
    assert result.undelivered == {0, 1, 2}
    assert not result.delivered


def test_rejected_credentials_are_read_again_once_then_the_send_succeeds() -> None:
    denied = ClientError(
        {"Error": {"Code": "UnrecognizedClientException", "Message": "bad key"}}, "PutRecords"
    )
    client = ScriptedKinesis([denied, set()])
    session = FakeSession(client)
    result = sender(client, session).send(records(2))
    assert session.refreshes == 1
    assert result.delivered == {0, 1}


def test_no_call_is_started_that_could_outlast_the_invocation() -> None:
    client = ScriptedKinesis([set()])
    short = KinesisSender(
        FakeSession(client),  # type: ignore[arg-type]
        "inbox",
        backoff_factory=lambda: Backoff(sleep=lambda _: None, deadline=5.0, clock=lambda: 0.0),
    )
    result = short.send(records(2))
    assert client.calls == []
    assert result.undelivered == {0, 1}


def test_a_missing_inbox_is_a_configuration_failure() -> None:
    missing = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "Stream inbox not found"}}, "PutRecords"
    )
    result = sender(ScriptedKinesis([missing] * 10)).send(records(1))
    assert result.undelivered == {0}
    assert result.failure_kind is FailureKind.CONFIGURATION


def test_a_request_the_inbox_refuses_as_invalid_is_a_configuration_failure() -> None:
    # A record above the stream's maximum record size: MAX_RECORD_BYTES does not match the stream.
    too_large = ClientError({"Error": {"Code": "ValidationException", "Message": "..."}}, "PutRecords")
    result = sender(ScriptedKinesis([too_large] * 10)).send(records(1))
    assert result.failure_kind is FailureKind.CONFIGURATION


def test_records_still_throttled_are_a_transient_failure() -> None:
    result = sender(ScriptedKinesis([{0}] * 10)).send(records(1))
    assert result.failure_kind is FailureKind.TRANSIENT
