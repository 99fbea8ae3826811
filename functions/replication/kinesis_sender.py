"""PutRecords into the peer inbox: request limits, retries of rejected records only, credential refresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from replication.backoff import Backoff
from replication.failures import FailureKind, classify_failure
from replication.peer_session import (
    LONGEST_CALL_SECONDS,
    PeerSession,
    is_auth_error,
    is_refused_session,
    session_errors,
)
from replication.telemetry import logger

# PutRecords: "up to 500 records. Each record in the request can be as large as 10 MiB, up to a limit
# of 10 MiB for the entire request, including partition keys" (Kinesis API reference, PutRecords; a
# record's own limit is the stream's maximum record size, 1 MiB unless raised with
# UpdateMaxRecordSize). Requests here stay at half that: a forwarder's batch (at most 6 MB of event)
# needs at most two, a smaller request is cheaper to send again across the partition boundary, and it
# is the limit older documentation (and moto 5.2.5) still state. A single record larger than this is
# sent alone, within the 10 MiB.
MAX_RECORDS_PER_REQUEST = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
# The forwarder stops sending this long before Lambda's deadline, to report its batch in time. With
# LONGEST_CALL_SECONDS, what one PutRecords attempt needs of an invocation: the module's
# forwarder_timeout may not be shorter (tests/terraform/test_module_bounds.py).
DEADLINE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class OutgoingRecord:
    data: bytes
    partition_key: str

    @property
    def size(self) -> int:
        """What Kinesis counts against its record and request limits: the data and the partition key."""
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass
class SendResult:
    delivered: set[int] = field(default_factory=set)
    undelivered: set[int] = field(default_factory=set)
    attempts: int = 0
    bytes_sent: int = 0
    last_error: str | None = None
    # Of the last failure: PutRecords refusing a request outright for a reason other than throttling
    # (access denied, no such stream, a record above the stream's size limit) is CONFIGURATION.
    failure_kind: FailureKind | None = None


def request_groups(records: Sequence[OutgoingRecord]) -> list[list[int]]:
    """Indices of records grouped into PutRecords requests within the count and byte limits."""
    groups: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, record in enumerate(records):
        if current and (
            len(current) == MAX_RECORDS_PER_REQUEST or current_bytes + record.size > MAX_REQUEST_BYTES
        ):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += record.size
    if current:
        groups.append(current)
    return groups


def _refusal(error: Exception) -> tuple[str, FailureKind, bool]:
    """(error code, failure kind, whether the peer refused the credentials) of a PutRecords that the
    inbox refused, or whose role session IAM Roles Anywhere could not renew during the call."""
    if isinstance(error, ClientError):
        kind = classify_failure(error)
        # A request the inbox refuses as it is cannot be fixed by the forwarder: configuration.
        kind = FailureKind.CONFIGURATION if kind is FailureKind.PERMANENT else kind
        return error.response.get("Error", {}).get("Code", "ClientError"), kind, is_auth_error(error)
    refused = is_refused_session(error)
    kind = FailureKind.CONFIGURATION if refused else FailureKind.TRANSIENT
    return f"CreateSession: {error}", kind, refused


class KinesisSender:
    def __init__(
        self,
        session: PeerSession,
        stream_name: str,
        *,
        backoff_factory: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._session = session
        self._stream_name = stream_name
        self._backoff_factory = backoff_factory

    def send(self, records: Sequence[OutgoingRecord]) -> SendResult:
        """Deliver records; what is returned as delivered is durably in the peer inbox."""
        result = SendResult()
        for group in request_groups(records):
            self._send_group(records, group, result)
        return result

    def _send_group(self, records: Sequence[OutgoingRecord], group: list[int], result: SendResult) -> None:
        pending = list(group)
        backoff = self._backoff_factory()
        refreshed = refresh = False
        while pending:
            time_left = backoff.time_left()
            if time_left is not None and time_left < LONGEST_CALL_SECONDS:
                result.last_error = result.last_error or "no time left in this invocation"
                result.failure_kind = result.failure_kind or FailureKind.TRANSIENT
                break
            result.attempts += 1
            try:
                client = self._session.kinesis(refresh=refresh)
                refresh = False
                response = client.put_records(
                    StreamName=self._stream_name,
                    Records=[
                        {"Data": records[i].data, "PartitionKey": records[i].partition_key} for i in pending
                    ],
                )
            except (ClientError, *session_errors()) as error:
                result.last_error, result.failure_kind, rejected = _refusal(error)
                if rejected and not refreshed:
                    # The key or certificate may have been rotated: read the secret again, retry at once.
                    refreshed = refresh = True
                    logger.warning("peer rejected the credentials; re-reading the secret")
                    continue
                logger.warning("PutRecords failed", extra={"error_code": result.last_error})
            except BotoCoreError as error:
                result.last_error = error.__class__.__name__
                result.failure_kind = classify_failure(error)
                logger.warning("PutRecords did not reach the peer", extra={"error": result.last_error})
            else:
                failed = []
                for index, entry in zip(pending, response["Records"], strict=True):
                    if entry.get("ErrorCode"):
                        failed.append(index)
                        result.last_error = entry["ErrorCode"]
                        # Per record: ProvisionedThroughputExceededException or InternalFailure.
                        result.failure_kind = FailureKind.TRANSIENT
                    else:
                        result.delivered.add(index)
                        result.bytes_sent += records[index].size
                pending = failed
                if not pending:
                    return
            if not backoff.wait():
                break
        result.undelivered.update(pending)
