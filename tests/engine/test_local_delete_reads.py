"""Specification: the forwarder enforces a local delete against an older replicated upsert that put
the item back before the delete's tombstone existed by reading the deleted items, strongly
consistent, once per batch after their tombstones, and removing only what it finds older; no write
is made for an item that is gone (docs/conflict-rules.md, "The write protocol and what it costs").

A strongly consistent read "returns a result that reflects all writes that received a successful
response prior to the read" (DynamoDB developer guide, "DynamoDB read consistency"): an upsert it
misses was acknowledged after the tombstone was written, and its own read after the put finds it.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from replication.keys import key_digest
from replication.table_writer import TableWriter

from .harness import TABLE, TOMBSTONES, side_settings
from .test_created_items import key, recorded_pair


def test_the_local_deletes_of_a_batch_write_their_tombstones_then_read_their_items_together() -> None:
    with mock_aws():
        pair, us = recorded_pair()
        for number in range(150):
            pair.us.put(key(number), {"city": {"S": "Boston"}}, "1764200000")
        pair.us.forward()
        for number in range(150):
            pair.us.delete(key(number))
        us.calls.clear()

        report = pair.us.forward()

        assert report.first_failure is None
        assert [call[:2] for call in us.calls] == [("PutItem", TOMBSTONES)] * 150 + [
            ("BatchGetItem", TABLE)
        ] * 2
        assert [call[2] for call in us.calls if call[0] == "BatchGetItem"] == [100, 50]


def test_an_older_upsert_put_back_before_the_tombstone_is_the_only_item_removed() -> None:
    with mock_aws():
        pair, us = recorded_pair()
        for number in range(3):
            pair.china.put(key(number), {"city": {"S": "Beijing"}}, "1764200000")
        pair.settle()
        pair.china.put(key(0), {"city": {"S": "Shanghai"}}, "1764200001")
        pair.china.forward()
        older_upsert = pair.china.sender.outbox
        pair.china.sender.outbox = []
        for number in range(3):
            pair.us.delete(key(number))
        pair.us.replicate(older_upsert)  # key 0 is back on us-east-1, older than its delete
        us.calls.clear()

        assert pair.us.forward().first_failure is None

        writes = [call[:2] for call in us.calls if call[0] in ("UpdateItem", "DeleteItem")]
        assert writes == [("UpdateItem", TABLE), ("DeleteItem", TABLE)]  # mark and remove key 0 only
        assert [pair.us.get(key(number)) for number in range(3)] == [None, None, None]


def test_a_throttled_read_stops_the_batch_at_its_first_delete_and_the_retry_removes_the_older_item() -> None:
    with mock_aws():
        pair, us = recorded_pair()
        pair.china.put(key(0), {"city": {"S": "Beijing"}}, "1764200000")
        pair.settle()
        pair.china.put(key(0), {"city": {"S": "Shanghai"}}, "1764200001")
        pair.china.forward()
        older_upsert = pair.china.sender.outbox
        pair.china.sender.outbox = []
        pair.us.put(key(1), {"city": {"S": "Boston"}}, "1764200002")
        pair.us.delete(key(0))
        pair.us.replicate(older_upsert)

        def throttled(inner: Any, request: dict[str, Any]) -> dict[str, Any]:
            ((table, _),) = request["RequestItems"].items()
            if table != TABLE:
                return inner.batch_get_item(**request)
            raise ClientError(
                {
                    "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "..."},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "BatchGetItem",
            )

        us.batch_get = throttled
        first = pair.us.forward()
        # The put of key 1 (record 0) is sent; the delete (record 1) and what follows are not.
        assert (first.first_failure, first.transient_errors, first.changes_sent) == (1, 1, 1)
        assert pair.us.get(key(0)) is not None

        us.batch_get = None
        assert pair.us.forward().first_failure is None  # Lambda retries from the delete

        assert pair.us.get(key(0)) is None
        pair.settle()
        assert pair.china.items() == pair.us.items()


def test_an_item_found_with_its_number_key_spelled_otherwise_counts_as_found() -> None:
    """DynamoDB compares number keys by value; the key a stream record names and the one a read
    returns need not be the same text."""
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="accounts",
            KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        db.put_item(TableName="accounts", Item={"account_id": {"N": "1.5"}})
        writer = TableWriter(db, side_settings("us-east-1").table("accounts", "accounts"))
        spelled, again, absent = (
            {"account_id": {"N": "1.50"}},
            {"account_id": {"N": "15E-1"}},
            {"account_id": {"N": "2"}},
        )

        assert writer.existing([spelled, again, absent]) == {key_digest(spelled), key_digest(again)}


def test_no_keys_no_read() -> None:
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        writer = TableWriter(db, side_settings("us-east-1").table("accounts", "accounts"))

        assert writer.existing([]) == set()
