"""The forwarder's failures, sorted as in docs/failure-handling.md: a local write DynamoDB refuses for
good goes to the failure queue and the batch goes on; configuration failures are retried and counted."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from replication.wire import decode

from .harness import NAMES, TABLE, Side

KEY = {"pk": {"S": "user#big"}, "sk": {"S": "profile"}}
OTHER = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}


def largest_item_the_table_takes(side: Side) -> int:
    """Length of a string attribute that makes KEY's item as large as the table accepts, found by
    asking the table (moto's accounting and DynamoDB's differ; either way, a byte more is refused)."""
    low, high = 1, 420 * 1024
    while low < high:
        middle = (low + high + 1) // 2
        try:
            side.db.put_item(TableName=TABLE, Item={**KEY, "bio": {"S": "b" * middle}})
            low = middle
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ValidationException"
            high = middle - 1
    side.db.delete_item(TableName=TABLE, Key=KEY)
    return low


def failure_messages(side: Side) -> list[dict[str, Any]]:
    messages = side.sqs.receive_message(QueueUrl=side.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_stamp_dynamodb_refuses_for_good_goes_to_the_failure_queue_and_the_batch_goes_on(aws: None) -> None:
    side = Side("cn-north-1", "us-east-1")
    side.read_stream()
    side._unread.clear()  # the probing writes above are not part of the test
    length = largest_item_the_table_takes(side)
    side.read_stream()
    side._unread.clear()
    # An unversioned write at the size limit: its version stamp can never be added.
    side.put(KEY, {"bio": {"S": "b" * length}}, None)
    side.put(OTHER, {"city": {"S": "Beijing"}}, "1764200000.5")

    report = side.forward()

    assert report.first_failure is None
    assert (report.refused, report.configuration_errors) == (1, 0)
    (message,) = failure_messages(side)
    # The forwarder sees before writing that the stamp cannot fit (classify: Action.TOO_LARGE).
    assert message["kind"] == "poison" and message["action"] == "too-large"
    assert "400 KB" in message["reason"]  # the item cannot carry a version
    assert "b" * 100 not in json.dumps(message)
    (sent,) = side.sender.outbox
    assert [change.key for change in decode(sent.data).changes] == [OTHER]
    assert NAMES.timestamp not in side.get(KEY)


def test_a_missing_tombstone_table_stops_the_batch_and_counts_as_configuration(aws: None) -> None:
    side = Side("cn-north-1", "us-east-1")
    side.put(OTHER, {"city": {"S": "Beijing"}}, "1764200000.5")
    side.db.delete_table(TableName="profiles-tombstones")

    report = side.forward()

    assert report.first_failure == 0
    assert report.configuration_errors == 1
    assert side.sender.outbox == []
