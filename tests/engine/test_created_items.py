"""Specification: the replicator reads the tombstones of the items a run's puts created together, after
all of that run's puts, and a created item older than a delete remembered on its side is deleted
again (docs/conflict-rules.md, "Deletes and tombstones" and "The created-item window").

BatchGetItem takes at most 100 keys, may answer part of them in ``UnprocessedKeys``, and answers
``ProvisionedThroughputExceededException`` when it can read none of them (DynamoDB API reference,
BatchGetItem: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from moto import mock_aws

from replication.table_writer import Outcome

from .harness import TABLE, TOMBSTONES, Pair, Side


def key(number: int) -> dict[str, Any]:
    return {"pk": {"S": f"user#{number}"}, "sk": {"S": "profile"}}


class Recording:
    """us-east-1's engine client: logs each DynamoDB write and read (operation, table, keys read), and answers
    a BatchGetItem with ``batch_get`` when set (for throttling and partial answers)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[tuple[str, str, int]] = []
        self.batch_get: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def put_item(self, **request: Any) -> Any:
        self.calls.append(("PutItem", request["TableName"], 1))
        return self._inner.put_item(**request)

    def update_item(self, **request: Any) -> Any:
        self.calls.append(("UpdateItem", request["TableName"], 1))
        return self._inner.update_item(**request)

    def delete_item(self, **request: Any) -> Any:
        self.calls.append(("DeleteItem", request["TableName"], 1))
        return self._inner.delete_item(**request)

    def batch_get_item(self, **request: Any) -> Any:
        ((table, asked),) = request["RequestItems"].items()
        assert asked["ConsistentRead"] is True
        self.calls.append(("BatchGetItem", table, len(asked["Keys"])))
        if self.batch_get is not None:
            return self.batch_get(self._inner, request)
        return self._inner.batch_get_item(**request)


def recorded_pair() -> tuple[Pair, Recording]:
    clients: dict[str, Recording] = {}

    def engine_client(side: Side, inner: Any) -> Any:
        if side.region != "us-east-1":
            return inner
        clients["us"] = Recording(inner)
        return clients["us"]

    return Pair(engine_client=engine_client), clients["us"]


def delete_remembered_on_us_and_an_older_upsert_from_china(pair: Pair, number: int) -> None:
    """The item on both sides; us-east-1's application deletes it (remembered there) while
    cn-north-1's application writes it with an older version (concurrently: not yet replicated)."""
    pair.china.put(key(number), {"city": {"S": "Beijing"}}, "1764200000")
    pair.settle()
    pair.us.delete(key(number))
    pair.us.forward()  # the tombstone is written; the delete is in flight
    pair.china.put(key(number), {"city": {"S": "Shanghai"}}, "1764200001")  # older than the delete


def test_the_tombstones_of_a_runs_created_items_are_read_together_after_all_its_puts() -> None:
    with mock_aws():
        pair, us = recorded_pair()
        for number in range(150):
            pair.china.put(key(number), {"city": {"S": "Beijing"}}, "1764200000")
        pair.china.forward()
        us.calls.clear()

        report = pair.us.replicate(pair.china.sender.outbox)["report"]

        assert report.outcomes[Outcome.APPLIED] == 150
        assert [call[0] for call in us.calls] == ["PutItem"] * 150 + ["BatchGetItem"] * 2
        assert [call[2] for call in us.calls if call[0] == "BatchGetItem"] == [100, 50]
        assert {call[1] for call in us.calls} == {TABLE, TOMBSTONES}
        assert len(pair.us.items()) == 150


def test_a_created_item_older_than_a_delete_remembered_here_is_deleted_and_the_rest_of_its_run_stays() -> (
    None
):
    with mock_aws():
        pair, us = recorded_pair()
        delete_remembered_on_us_and_an_older_upsert_from_china(pair, 0)
        pair.china.put(key(1), {"city": {"S": "Beijing"}}, "1764200001")
        pair.china.forward()
        us.calls.clear()

        report = pair.us.replicate(pair.china.sender.outbox)["report"]

        assert (report.outcomes[Outcome.TOMBSTONED], report.outcomes[Outcome.APPLIED]) == (1, 1)
        assert pair.us.get(key(0)) is None
        assert pair.us.get(key(1)) is not None
        reads = [call for call in us.calls if call[0] == "BatchGetItem"]
        assert reads == [("BatchGetItem", TOMBSTONES, 2)]


def test_keys_a_tombstone_read_left_unprocessed_are_read_again() -> None:
    with mock_aws():
        pair, us = recorded_pair()
        delete_remembered_on_us_and_an_older_upsert_from_china(pair, 0)
        for number in range(1, 4):
            pair.china.put(key(number), {"city": {"S": "Beijing"}}, "1764200001")
        pair.china.forward()

        def partly(inner: Any, request: dict[str, Any]) -> dict[str, Any]:
            """The first answer reads one key and leaves the others unprocessed."""
            us.batch_get = None
            ((table, asked),) = request["RequestItems"].items()
            first, *rest = asked["Keys"]
            answer = inner.batch_get_item(RequestItems={table: {**asked, "Keys": [first]}})
            answer["UnprocessedKeys"] = {table: {**asked, "Keys": rest}}
            return answer

        us.batch_get = partly
        us.calls.clear()
        report = pair.us.replicate(pair.china.sender.outbox)["report"]

        assert [call[2] for call in us.calls if call[0] == "BatchGetItem"] == [4, 3]
        assert (report.outcomes[Outcome.TOMBSTONED], report.outcomes[Outcome.APPLIED]) == (1, 3)
        assert pair.us.get(key(0)) is None


def test_a_run_whose_tombstone_read_stays_throttled_is_retried_and_the_retry_deletes_the_older_item() -> None:
    with mock_aws():
        pair, us = recorded_pair()
        delete_remembered_on_us_and_an_older_upsert_from_china(pair, 0)
        pair.china.put(key(1), {"city": {"S": "Beijing"}}, "1764200001")
        pair.china.forward()
        delivered = pair.china.sender.outbox

        def throttled(inner: Any, request: dict[str, Any]) -> dict[str, Any]:
            raise ClientError(
                {
                    "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "..."},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "BatchGetItem",
            )

        us.batch_get = throttled
        first = pair.us.replicate(delivered)["report"]
        # The window: the older item is on us-east-1 until the retry reads the tombstone.
        assert first.failed == {0} and first.transient_errors == 2
        assert pair.us.get(key(0)) is not None

        us.batch_get = None
        retried = pair.us.replicate(delivered)["report"]  # Lambda delivers the batch again

        assert retried.failed == set()
        assert (retried.outcomes[Outcome.TOMBSTONED], retried.outcomes[Outcome.STALE]) == (1, 1)
        assert pair.us.get(key(0)) is None
        assert pair.us.get(key(1)) is not None
        pair.settle()
        assert pair.china.items() == pair.us.items()
