"""The observations fed from the table streams' pollers (``watcher.table_stream_observer``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from replication_ops.local.config import ORIGIN_ATTRIBUTE, TIMESTAMP_ATTRIBUTE
from replication_ops.local.events import StreamRecord, dynamodb_record
from replication_ops.local.watcher import Observations, key_of, normalize_item, table_stream_observer

CN, US = "cn-north-1", "us-east-1"
STREAM_ARN = {
    CN: "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/accounts/stream/2026-01-01T00:00:00.000",
    US: "arn:aws:dynamodb:us-east-1:123456789012:table/accounts/stream/2026-01-01T00:00:00.000",
}


def item(account: int, timestamp: str, origin: str, **extra: Any) -> dict[str, Any]:
    return {
        "account_id": {"N": str(account)},
        TIMESTAMP_ATTRIBUTE: {"N": timestamp},
        ORIGIN_ATTRIBUTE: {"S": origin},
        **extra,
    }


def read(
    side: str, sequence: int, event_name: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> StreamRecord:
    """A GetRecords record of the side's table stream (boto3's shape: the creation time a datetime,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html), as the
    poller's reader turns it into the record of Lambda's event."""
    keys = {"account_id": (new or old or {})["account_id"]}
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": datetime.fromtimestamp(1796030000.7, tz=UTC),
        "Keys": keys,
        "SequenceNumber": str(100 + sequence),
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        stream["NewImage"] = new
    if old is not None:
        stream["OldImage"] = old
    raw = {"eventID": f"e{sequence}", "eventName": event_name, "dynamodb": stream}
    return dynamodb_record(raw, region=side, event_source_arn=STREAM_ARN[side])


def observer(observations: dict[str, Observations]) -> Any:
    return table_stream_observer(
        observations, timestamp_attribute=TIMESTAMP_ATTRIBUTE, origin_attribute=ORIGIN_ATTRIBUTE
    )


def test_a_peer_version_is_first_seen_when_the_read_that_returned_it_began() -> None:
    observations = {side: Observations(side) for side in (CN, US)}
    observe = observer(observations)
    replicated = item(1, "1796030000.5", US)
    observe(CN, [read(CN, 1, "INSERT", None, replicated)], 1796030001.25)
    observe(CN, [read(CN, 2, "MODIFY", replicated, replicated)], 1796030003.0)  # seen again: not first
    key = key_of({"account_id": {"N": "1"}})
    assert observations[CN].first_seen == {(key, (Decimal("1796030000.5"), US)): 1796030001.25}
    assert observations[US].records == 0 and observations[CN].records == 2


def test_each_side_read_goes_to_its_own_observations_in_order() -> None:
    observations = {side: Observations(side) for side in (CN, US)}
    observe = observer(observations)
    own = item(2, "1796030000.1", CN)
    stamped = item(2, "1796030000.9", CN)
    observe(CN, [read(CN, 1, "INSERT", None, own), read(CN, 2, "REMOVE", own, None)], 1796030001.0)
    observe(US, [read(US, 1, "INSERT", None, stamped)], 1796030002.0)
    key = key_of({"account_id": {"N": "2"}})
    assert [change.event for change in observations[CN].changes[key]] == ["INSERT", "REMOVE"]
    assert observations[CN].removes == {(key, normalize_item(own)): [1796030000.0]}
    assert [change.event for change in observations[US].changes[key]] == ["INSERT"]
    assert observations[US].first_seen == {(key, (Decimal("1796030000.9"), CN)): 1796030002.0}


def test_a_side_without_observations_is_an_error_the_runner_reports() -> None:
    observe = observer({CN: Observations(CN)})
    with pytest.raises(KeyError):
        observe(US, [read(US, 1, "INSERT", None, item(3, "1796030000.1", CN))], 1796030001.0)
