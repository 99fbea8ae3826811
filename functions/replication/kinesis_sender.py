"""PutRecords into the peer inbox: request limits, retries of rejected records only, credential refresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from replication.backoff import Backoff
from replication.peer_session import LONGEST_CALL_SECONDS, PeerSession, is_auth_error
from replication.telemetry import logger

MAX_RECORDS_PER_REQUEST = 500
# PutRecords takes up to 10 MiB per request in current AWS; 5 MiB keeps older limits safe.
MAX_REQUEST_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class OutgoingRecord:
    data: bytes
    partition_key: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass
class SendResult:
    delivered: set[int] = field(default_factory=set)
    undelivered: set[int] = field(default_factory=set)
    attempts: int = 0
    bytes_sent: int = 0
    last_error: str | None = None


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
        refreshed = False
        while pending:
            time_left = backoff.time_left()
            if time_left is not None and time_left < LONGEST_CALL_SECONDS:
                result.last_error = result.last_error or "no time left in this invocation"
                break
            result.attempts += 1
            try:
                response = self._session.kinesis(refresh=False).put_records(
                    StreamName=self._stream_name,
                    Records=[
                        {"Data": records[i].data, "PartitionKey": records[i].partition_key} for i in pending
                    ],
                )
            except ClientError as error:
                result.last_error = error.response.get("Error", {}).get("Code", "ClientError")
                if is_auth_error(error) and not refreshed:
                    # The key may have been rotated: read the secret again and retry at once.
                    refreshed = True
                    logger.warning("peer rejected the credentials; re-reading the secret")
                    self._session.kinesis(refresh=True)
                    continue
                logger.warning("PutRecords failed", extra={"error_code": result.last_error})
            except BotoCoreError as error:
                result.last_error = error.__class__.__name__
                logger.warning("PutRecords did not reach the peer", extra={"error": result.last_error})
            else:
                failed = []
                for index, entry in zip(pending, response["Records"], strict=True):
                    if entry.get("ErrorCode"):
                        failed.append(index)
                        result.last_error = entry["ErrorCode"]
                    else:
                        result.delivered.add(index)
                        result.bytes_sent += records[index].size
                pending = failed
                if not pending:
                    return
            if not backoff.wait():
                break
        result.undelivered.update(pending)
