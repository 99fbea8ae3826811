"""moto as DynamoDB documents it (replication_ops/local/moto_fidelity.py), in both worlds the project
runs on: the in-process ``mock_aws`` of the tests and the moto server of the local environment.

Each expected value is the documented one; stock moto 5.2.5 fails 41 of the 51 in-process DynamoDB
cases and 9 of the 10 CloudWatch ones. Sources: the DynamoDB developer guide (DG) and API reference
(API), the CloudWatch user guide (CWUG) and API reference (CW), as cited per test.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from replication_ops.local import moto_fidelity
from replication_ops.local.aws import SideClients

REGION = "cn-north-1"
LIMIT = 409_600  # DG "Service, account, and table quotas": 400 KB, attribute names included


@dataclass
class World:
    db: Any
    streams: Any

    def table(self, key_type: str = "S", *, stream: bool = True) -> tuple[str, str]:
        """A new table keyed ``pk`` of ``key_type``: (name, stream ARN or "")."""
        name = f"fidelity-{uuid.uuid4().hex[:12]}"
        extra = (
            {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
            if stream
            else {}
        )
        description = self.db.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": key_type}],
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )["TableDescription"]
        return name, description.get("LatestStreamArn", "")

    def records(self, stream_arn: str) -> list[dict[str, Any]]:
        shard = self.streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
        iterator = self.streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        return self.streams.get_records(ShardIterator=iterator)["Records"]

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.db.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


@pytest.fixture(params=["mock_aws", "moto server"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "mock_aws":
        with mock_aws():
            yield World(boto3.client("dynamodb", REGION), boto3.client("dynamodbstreams", REGION))
    else:
        clients = SideClients(request.getfixturevalue("partition").endpoint_url, REGION)
        yield World(clients.dynamodb, clients.dynamodbstreams)


def refused(call: Any, message: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["Error"]["Message"] == message


# -- numbers: DG "Supported data types and naming rules", Number -----------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("007.50", "7.5"),
        ("-0", "0"),
        ("0.000", "0"),
        ("+3", "3"),
        (".125", "0.125"),
        ("1.5E2", "150"),
        ("100", "100"),
        ("-12.3400e-2", "-0.1234"),
        ("0e1000", "0"),
    ],
)
def test_numbers_are_stored_with_leading_and_trailing_zeros_trimmed(
    world: World, written: str, stored: str
) -> None:
    table, stream = world.table()
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": written}})
    assert world.get(table, {"pk": {"S": "k"}}) == {"pk": {"S": "k"}, "n": {"N": stored}}
    assert world.records(stream)[0]["dynamodb"]["NewImage"]["n"] == {"N": stored}


# Any number in DynamoDB's domain: up to 38 significant digits, magnitudes 1E-130 to 9.99..E+125.
dynamodb_numbers = st.builds(
    lambda sign, digits, exponent, zeros: f"{sign}{'0' * zeros}{digits}E{exponent - len(digits) + 1}",
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[1-9][0-9]{0,37}", fullmatch=True),
    st.integers(-130, 125),
    st.integers(0, 3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=dynamodb_numbers)
def test_every_number_in_dynamodbs_domain_is_kept_exactly(world: World, written: str) -> None:
    table, _ = world.table(stream=False)
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": written}})
    stored = world.get(table, {"pk": {"S": "k"}})["n"]["N"]  # type: ignore[index]
    # the same value in plain digits, zeros trimmed (normalize() is exact in a 100-digit context)
    assert stored == format(Decimal(written).normalize(Context(prec=100)), "f")


def test_38_significant_digits_are_accepted_and_trailing_zeros_do_not_count(world: World) -> None:
    table, _ = world.table(stream=False)
    digits38 = "1764200000.7111830711364746093750000001"  # a Decimal(time.time()) stamp, 38 digits
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": digits38 + "000"}})
    assert world.get(table, {"pk": {"S": "k"}})["n"] == {"N": digits38}  # type: ignore[index]


def test_a_number_with_more_than_38_significant_digits_is_refused(world: World) -> None:
    table, _ = world.table(stream=False)
    refused(
        lambda: world.db.put_item(
            TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "1764200000.71118307113647460937500000001"}}
        ),
        moto_fidelity.TOO_MANY_DIGITS,
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("1E+126", moto_fidelity.OVERFLOW),
        ("-1E+126", moto_fidelity.OVERFLOW),
        ("11E+125", moto_fidelity.OVERFLOW),
        ("1E-131", moto_fidelity.UNDERFLOW),
        ("-0.9E-130", moto_fidelity.UNDERFLOW),
    ],
)
def test_a_number_outside_dynamodbs_range_is_refused(world: World, written: str, message: str) -> None:
    table, _ = world.table(stream=False)
    refused(lambda: world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": written}}), message)


@pytest.mark.parametrize("written", ["NaN", "Infinity", " 1", "1 ", "1_000", "dog", "."])
def test_text_that_is_not_a_number_is_refused(world: World, written: str) -> None:
    table, _ = world.table(stream=False)
    refused(
        lambda: world.db.update_item(
            TableName=table,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": written}},
        ),
        moto_fidelity.NOT_A_NUMBER.format(written),
    )


def test_a_condition_holding_a_number_outside_the_domain_is_refused(world: World) -> None:
    table, _ = world.table(stream=False)
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "1"}})
    refused(
        lambda: world.db.put_item(
            TableName=table,
            Item={"pk": {"S": "k"}, "n": {"N": "2"}},
            ConditionExpression="n < :n",
            ExpressionAttributeValues={":n": {"N": "1" * 39}},
        ),
        moto_fidelity.TOO_MANY_DIGITS,
    )


def test_number_keys_are_one_item_whatever_their_written_form(world: World) -> None:
    table, stream = world.table("N")
    world.db.put_item(TableName=table, Item={"pk": {"N": "1.50"}, "v": {"S": "first"}})
    world.db.put_item(TableName=table, Item={"pk": {"N": "01.5"}, "v": {"S": "second"}})
    assert world.get(table, {"pk": {"N": "1.5000"}}) == {"pk": {"N": "1.5"}, "v": {"S": "second"}}
    assert [r["dynamodb"]["Keys"] for r in world.records(stream)] == [{"pk": {"N": "1.5"}}] * 2


def test_update_arithmetic_is_exact_to_38_digits(world: World) -> None:
    table, _ = world.table(stream=False)
    world.db.update_item(
        TableName=table,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET n = :a + :b",
        ExpressionAttributeValues={":a": {"N": "1" + "0" * 36}, ":b": {"N": "0.1"}},
    )
    assert world.get(table, {"pk": {"S": "k"}})["n"] == {"N": "1" + "0" * 36 + ".1"}  # type: ignore[index]


# -- stream records: DG "Change data capture for DynamoDB Streams" ---------------------------------


def test_a_put_that_changes_nothing_writes_no_stream_record(world: World) -> None:
    table, stream = world.table()
    item = {
        "pk": {"S": "k"},
        "n": {"N": "1.0"},
        "tags": {"SS": ["a", "b"]},
        "m": {"M": {"x": {"B": b"\x00"}}},
    }
    world.db.put_item(TableName=table, Item=item)
    same = {**item, "n": {"N": "1"}, "tags": {"SS": ["b", "a"]}}  # the same data, written differently
    world.db.put_item(TableName=table, Item=same)
    assert [r["eventName"] for r in world.records(stream)] == ["INSERT"]


def test_an_update_that_changes_nothing_writes_no_stream_record(world: World) -> None:
    table, stream = world.table()
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "city": {"S": "Boston"}})
    world.db.update_item(
        TableName=table,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET city = :c",
        ExpressionAttributeValues={":c": {"S": "Boston"}},
    )
    assert [r["eventName"] for r in world.records(stream)] == ["INSERT"]


def test_a_write_that_changes_one_type_tag_is_a_change(world: World) -> None:
    table, stream = world.table()
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "m": {"M": {"x": {"BOOL": True}}}})
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "m": {"M": {"x": {"N": "1"}}}})
    assert [r["eventName"] for r in world.records(stream)] == ["INSERT", "MODIFY"]


def test_an_update_that_creates_the_item_writes_one_insert_with_the_whole_item(world: World) -> None:
    table, stream = world.table()
    world.db.update_item(
        TableName=table,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET city = :c",
        ExpressionAttributeValues={":c": {"S": "Boston"}},
    )
    records = world.records(stream)
    assert [r["eventName"] for r in records] == ["INSERT"]
    assert records[0]["dynamodb"]["NewImage"] == {"pk": {"S": "k"}, "city": {"S": "Boston"}}
    assert "OldImage" not in records[0]["dynamodb"]


def test_updates_from_several_threads_each_write_their_one_record(world: World) -> None:
    # the engine writes different keys from worker threads (replication/parallel.py)
    table, stream = world.table()

    def update(index: int) -> None:
        for round_ in range(5):
            world.db.update_item(
                TableName=table,
                Key={"pk": {"S": f"k{index}"}},
                UpdateExpression="SET n = :n",
                ExpressionAttributeValues={":n": {"N": str(round_)}},
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(update, range(4)))
    events = Counter(r["eventName"] for r in world.records(stream))
    assert events == {"INSERT": 4, "MODIFY": 16}


# -- conditions between different types: API "Condition" ------------------------------------------


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("n = :six", False),
        ("n <> :six", True),
        ("n < :six", False),
        ("n <= :six", False),
        ("n > :six", False),
        ("n >= :six", False),
        ("n BETWEEN :six AND :six", False),
        ("n IN (:six)", False),
        ("flag = :one", False),
        ("flag IN (:one)", False),
    ],
)
def test_a_condition_comparing_different_types_is_false(world: World, condition: str, holds: bool) -> None:
    table, _ = world.table(stream=False)
    world.db.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"S": "6"}, "flag": {"BOOL": True}})
    values = {":six": {"N": "6"}, ":one": {"N": "1"}}

    def write() -> None:
        world.db.put_item(
            TableName=table,
            Item={"pk": {"S": "k"}, "n": {"S": "7"}},
            ConditionExpression=condition,
            ExpressionAttributeValues={k: v for k, v in values.items() if k in condition},
        )

    if holds:
        write()
    else:
        with pytest.raises(world.db.exceptions.ConditionalCheckFailedException):
            write()


# -- item size: DG "DynamoDB item sizes and formats" ---------------------------------------------


def _item_of(size: int, *, name: str = "d") -> dict[str, Any]:
    """An item of exactly ``size`` bytes by DynamoDB's accounting: "pk"+"k" (3) + name + its string."""
    return {"pk": {"S": "k"}, name: {"S": "x" * (size - 3 - len(name))}}


def test_an_item_of_exactly_409600_bytes_is_stored(world: World) -> None:
    table, _ = world.table(stream=False)
    world.db.put_item(TableName=table, Item=_item_of(LIMIT))
    assert len(world.get(table, {"pk": {"S": "k"}})["d"]["S"]) == LIMIT - 4  # type: ignore[index]


def test_an_item_one_byte_over_the_limit_is_refused(world: World) -> None:
    table, _ = world.table(stream=False)
    refused(
        lambda: world.db.put_item(TableName=table, Item=_item_of(LIMIT + 1)),
        "Item size has exceeded the maximum allowed size",
    )


def test_attribute_names_count_towards_the_limit(world: World) -> None:
    table, _ = world.table(stream=False)
    item = _item_of(LIMIT - 1000)
    item["n" * 1001] = {"BOOL": True}  # 1,001 bytes of name and 1 of value: 2 bytes over
    refused(
        lambda: world.db.put_item(TableName=table, Item=item),
        "Item size has exceeded the maximum allowed size",
    )


def test_numbers_count_by_significant_digits_not_characters(world: World) -> None:
    table, _ = world.table(stream=False)
    item = _item_of(LIMIT - 1 - 2)  # room for a one-letter name and a number of 1 or 2 digits: 2 bytes
    item["z"] = {"N": "1" + "0" * 125}  # 126 characters, 1 significant digit
    world.db.put_item(TableName=table, Item=item)
    assert world.get(table, {"pk": {"S": "k"}})["z"] == {"N": "1" + "0" * 125}  # type: ignore[index]


def test_binary_values_count_their_raw_bytes(world: World) -> None:
    table, _ = world.table(stream=False)
    item = _item_of(LIMIT - 1 - 3000)
    item["b"] = {"B": b"\xff" * 3000}  # 4,000 characters of base64 on the wire
    world.db.put_item(TableName=table, Item=item)
    assert world.get(table, {"pk": {"S": "k"}})["b"] == {"B": b"\xff" * 3000}  # type: ignore[index]


def test_an_update_past_the_limit_is_refused_and_changes_nothing(world: World) -> None:
    table, stream = world.table()
    world.db.put_item(TableName=table, Item=_item_of(LIMIT - 10))
    refused(
        lambda: world.db.update_item(
            TableName=table,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET mark = :m",  # 4 + 7 bytes: one over
            ExpressionAttributeValues={":m": {"S": "x" * 7}},
        ),
        "Item size to update has exceeded the maximum allowed size",
    )
    assert world.get(table, {"pk": {"S": "k"}}) == _item_of(LIMIT - 10)
    assert [r["eventName"] for r in world.records(stream)] == ["INSERT"]


def test_an_update_that_would_create_a_too_large_item_leaves_nothing(world: World) -> None:
    table, stream = world.table()
    refused(
        lambda: world.db.update_item(
            TableName=table,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET d = :d",
            ExpressionAttributeValues={":d": {"S": "x" * (LIMIT - 3)}},
        ),
        "Item size to update has exceeded the maximum allowed size",
    )
    assert world.get(table, {"pk": {"S": "k"}}) is None
    assert world.records(stream) == []


# -- binary keys of stream records: API "StreamRecord", "AttributeValue" ---------------------------


def test_binary_keys_of_stream_records_are_base64_once(world: World) -> None:
    table, stream = world.table("B")
    world.db.put_item(TableName=table, Item={"pk": {"B": b"\x01\x02\xff"}, "v": {"S": "x"}})
    world.db.delete_item(TableName=table, Key={"pk": {"B": b"\x01\x02\xff"}})
    records = world.records(stream)
    # boto3 decodes base64 once: a key encoded twice would come back as the text of its base64
    assert [r["dynamodb"]["Keys"] for r in records] == [{"pk": {"B": b"\x01\x02\xff"}}] * 2
    assert records[0]["dynamodb"]["NewImage"]["pk"] == {"B": b"\x01\x02\xff"}


# -- cancelled transactions: API "TransactWriteItems" ----------------------------------------------


def test_a_cancelled_transaction_writes_nothing_and_the_stream_goes_on(world: World) -> None:
    table, stream = world.table()
    shard = world.streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = world.streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    with pytest.raises(world.db.exceptions.TransactionCanceledException):
        world.db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "absent"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    world.db.put_item(TableName=table, Item={"pk": {"S": "after"}})
    keys = [
        r["dynamodb"]["Keys"]["pk"]["S"] for r in world.streams.get_records(ShardIterator=iterator)["Records"]
    ]
    assert keys == ["after"]
    assert world.get(table, {"pk": {"S": "new"}}) is None


def test_a_request_from_another_thread_waits_for_a_transaction_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each request is atomic (DG "Best practices for handling concurrent updates": "Individual write
    operations such as UpdateItem are atomic ... regardless of concurrency"; API "TransactWriteItems":
    all or nothing). A put from another thread while a transaction is being cancelled waits for it,
    and keeps its stream record: moto served threads unlocked, and the rollback cut the record.
    (In process only: the moto servers serve one request at a time, ``moto_launcher.serialized``.)"""
    rolling_back, put_done = threading.Event(), threading.Event()
    restore = moto_fidelity._transaction_restore

    def slow_restore(backend: Any, snapshot: Any) -> None:
        rolling_back.set()
        put_done.wait(timeout=1)  # an unlocked put runs now; a served-in-turn one cannot
        restore(backend, snapshot)

    monkeypatch.setattr(moto_fidelity, "_transaction_restore", slow_restore)
    with mock_aws():
        world = World(boto3.client("dynamodb", REGION), boto3.client("dynamodbstreams", REGION))
        table, stream = world.table()

        def put() -> None:
            assert rolling_back.wait(timeout=30)
            world.db.put_item(TableName=table, Item={"pk": {"S": "meanwhile"}})
            put_done.set()

        with ThreadPoolExecutor(max_workers=1) as pool:
            putting = pool.submit(put)
            with pytest.raises(world.db.exceptions.TransactionCanceledException):
                world.db.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": table, "Item": {"pk": {"S": "refused"}}}},
                        {
                            "ConditionCheck": {
                                "TableName": table,
                                "Key": {"pk": {"S": "absent"}},
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                    ]
                )
            putting.result()
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in world.records(stream)] == ["meanwhile"]
        assert world.get(table, {"pk": {"S": "refused"}}) is None


# -- CloudWatch percentiles: CWUG "Statistics definitions", CW "GetMetricStatistics", "MetricStat" --

# Each test's data puts every percentile it asks for inside a run of equal values, so that the value
# is the same whatever a definition does between two values (nearest rank or interpolation): 60
# values of 100 ms, 37 of 200 ms, 3 of 5,000 ms. At most 50 percent of them are above 100 and at least
# 50 percent at or below it: p50 is 100 ms; 97 are below 5,000 ms, 3 above none: p99 is 5,000 ms.
KNOWN = {"Values": [100.0, 200.0, 5000.0], "Counts": [60.0, 37.0, 3.0]}
KNOWN_PERCENTILES = {"p0": 100.0, "p50": 100.0, "p99": 5000.0, "p100": 5000.0}
NAMESPACE = "Fidelity"


@pytest.fixture(params=["mock_aws", "moto server"])
def cloudwatch(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "mock_aws":
        with mock_aws():
            yield boto3.client("cloudwatch", REGION)
    else:
        yield SideClients(request.getfixturevalue("partition").endpoint_url, REGION).cloudwatch


def _metric(cloudwatch: Any, **datum: Any) -> dict[str, Any]:
    """A new metric with one datum put now: its name and dimensions for the reads."""
    metric = {"MetricName": f"m{uuid.uuid4().hex[:12]}", "Dimensions": [{"Name": "table", "Value": "t"}]}
    now = datetime.now(UTC)
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[{**metric, "Timestamp": now, **datum}])
    return metric


def _window() -> dict[str, datetime]:
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return {"StartTime": end - timedelta(minutes=5), "EndTime": end}


def _extended(cloudwatch: Any, metric: dict[str, Any], statistics: list[str]) -> list[dict[str, Any]]:
    return cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, Period=300, ExtendedStatistics=statistics, **metric, **_window()
    )["Datapoints"]


def _metric_data(cloudwatch: Any, metric: dict[str, Any], stat: str) -> list[float]:
    query = {
        "Id": "q",
        "MetricStat": {"Metric": {"Namespace": NAMESPACE, **metric}, "Period": 300, "Stat": stat},
    }
    results = cloudwatch.get_metric_data(MetricDataQueries=[query], **_window())["MetricDataResults"]
    return results[0]["Values"]


def test_get_metric_statistics_gives_the_percentiles_of_the_values_put(cloudwatch: Any) -> None:
    metric = _metric(cloudwatch, **KNOWN, Unit="Milliseconds")
    [datapoint] = _extended(cloudwatch, metric, list(KNOWN_PERCENTILES))
    assert datapoint["ExtendedStatistics"] == KNOWN_PERCENTILES


def test_get_metric_data_gives_a_percentile_stat_of_the_values_put(cloudwatch: Any) -> None:
    metric = _metric(cloudwatch, **KNOWN)
    assert {stat: _metric_data(cloudwatch, metric, stat) for stat in ("p50", "p99")} == {
        "p50": [100.0],
        "p99": [5000.0],
    }


def test_a_negative_value_leaves_the_period_without_percentiles(cloudwatch: Any) -> None:
    """ "Percentile statistics are not available for metrics when any of the metric values are
    negative numbers" (CW "GetMetricStatistics")."""
    metric = _metric(cloudwatch, Values=[-1.0, 5.0])
    [datapoint] = _extended(cloudwatch, metric, ["p50"])
    assert "ExtendedStatistics" not in datapoint
    assert _metric_data(cloudwatch, metric, "p50") == []


@pytest.mark.parametrize(
    ("statistic_set", "p50"),
    [
        ({"SampleCount": 1, "Sum": 7.0, "Minimum": 7.0, "Maximum": 7.0}, 7.0),
        ({"SampleCount": 4, "Sum": 40.0, "Minimum": 10.0, "Maximum": 10.0}, 10.0),
        ({"SampleCount": 2, "Sum": 30.0, "Minimum": 10.0, "Maximum": 20.0}, None),
    ],
)
def test_a_statistic_set_gives_percentiles_only_with_one_sample_or_equal_minimum_and_maximum(
    cloudwatch: Any, statistic_set: dict[str, float], p50: float | None
) -> None:
    """ "CloudWatch needs raw data points to calculate percentile statistics. If you publish data
    using a statistic set instead, you can only retrieve percentile statistics for this data if ...
    The SampleCount value of the statistic set is 1 [or] The Min and the Max values of the statistic
    set are equal" (CW "GetMetricStatistics")."""
    metric = _metric(cloudwatch, StatisticValues=statistic_set)
    [datapoint] = _extended(cloudwatch, metric, ["p50"])
    assert datapoint.get("ExtendedStatistics", {}).get("p50") == p50


def test_statistics_and_extended_statistics_together_are_refused(cloudwatch: Any) -> None:
    """ "you must specify either Statistics or ExtendedStatistics, but not both" (CW
    "GetMetricStatistics")."""
    metric = _metric(cloudwatch, Value=1.0)
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            Period=300,
            Statistics=["Average"],
            ExtendedStatistics=["p99"],
            **metric,
            **_window(),
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterCombination"


@pytest.mark.parametrize("statistic", ["p101", "p99.999", "median"])
def test_a_percentile_outside_p0_to_p100_with_two_decimals_is_refused(
    cloudwatch: Any, statistic: str
) -> None:
    metric = _metric(cloudwatch, Value=1.0)
    with pytest.raises(ClientError) as caught:
        _extended(cloudwatch, metric, [statistic])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 20).map(float), min_size=1, max_size=60),
    hundredths=st.integers(0, 10_000),
)
def test_a_percentile_has_that_share_of_the_values_at_or_below_it_and_less_below_it(
    values: list[float], hundredths: int
) -> None:
    """pNN: NN percent of the data at or below it, and it is the least such value that was put."""
    share = Fraction(hundredths, 10_000)
    found = moto_fidelity.percentile([(v, 1.0) for v in values], share)
    assert found in values
    assert sum(1 for v in values if v <= found) >= share * len(values)
    assert sum(1 for v in values if v < found) < share * len(values) or found == min(values)


def test_a_weighted_value_counts_as_often_as_its_count() -> None:
    weighted = list(zip(KNOWN["Values"], KNOWN["Counts"], strict=True))
    expanded = [(value, 1.0) for value, count in weighted for _ in range(int(count))]
    for name, share in (("p50", Fraction(1, 2)), ("p99", Fraction(99, 100))):
        assert moto_fidelity.percentile(weighted, share) == moto_fidelity.percentile(expanded, share)
        assert moto_fidelity.percentile(weighted, share) == KNOWN_PERCENTILES[name]


# -- the patches themselves ----------------------------------------------------------------------


def test_another_moto_version_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(moto_fidelity.MotoFidelityError, match=r"moto 5\.3\.0 is installed"):
        moto_fidelity.check_anchors()


def test_a_moved_moto_internal_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import StreamShard

    monkeypatch.delattr(StreamShard, "add")
    with pytest.raises(moto_fidelity.MotoFidelityError, match=r"StreamShard\.add"):
        moto_fidelity.check_anchors()


def test_a_changed_signature_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import StreamShard

    monkeypatch.setattr(StreamShard, "add", lambda self, new, old: None)
    with pytest.raises(moto_fidelity.MotoFidelityError, match="the patch expects"):
        moto_fidelity.check_anchors()


# -- 12. EventBridge rules' SNS topic targets ("Amazon EventBridge targets": Amazon SNS topics) -------


def test_a_rules_sns_topic_target_receives_the_event_beside_its_other_targets() -> None:
    with mock_aws():
        events, sns, sqs = (boto3.client(s, REGION) for s in ("events", "sns", "sqs"))
        topic = sns.create_topic(Name="alarms")["TopicArn"]

        def queue(name: str) -> tuple[str, str]:
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]

        (subscribed, subscribed_arn), (direct, direct_arn) = queue("subscribed"), queue("direct")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=subscribed_arn)
        events.put_rule(Name="expiry", EventPattern='{"source": ["aws.rolesanywhere"]}')
        events.put_targets(
            Rule="expiry", Targets=[{"Id": "topic", "Arn": topic}, {"Id": "queue", "Arn": direct_arn}]
        )
        events.put_events(Entries=[{"Source": "aws.rolesanywhere", "DetailType": "T", "Detail": '{"a": 1}'}])
        (message,) = sqs.receive_message(QueueUrl=subscribed)["Messages"]
        delivered = json.loads(json.loads(message["Body"])["Message"])
        assert (delivered["source"], delivered["detail"]) == ("aws.rolesanywhere", {"a": 1})
        assert delivered["time"].endswith("Z") and "ingestion-time" not in delivered
        assert len(sqs.receive_message(QueueUrl=direct)["Messages"]) == 1
