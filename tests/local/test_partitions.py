"""The moto launcher: one partition per process, its own Lambda dispatch off, records left in the streams."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from replication_ops.local import moto_launcher
from replication_ops.local.aws import SideClients
from replication_ops.local.partitions import LocalPartition


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _function(clients: SideClients, name: str) -> str:
    role = clients.iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return clients.__getattr__("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": _zip()}
    )["FunctionArn"]


def test_the_launcher_patch_turns_off_every_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda.models import LambdaBackend

    for name in ("send_dynamodb_items", "send_kinesis_message", "send_sqs_batch"):
        monkeypatch.setattr(LambdaBackend, name, getattr(LambdaBackend, name))  # restored after the test
    assert not moto_launcher.lambda_dispatch_disabled()
    moto_launcher.disable_lambda_dispatch()
    assert moto_launcher.lambda_dispatch_disabled()
    backend: Any = object.__new__(LambdaBackend)
    assert backend.send_dynamodb_items("arn", [object()], "source") is None
    assert backend.send_kinesis_message(function_name="f", kinesis_stream="s") is None
    assert backend.send_sqs_batch("arn", [], "queue") is False


def test_the_partition_listens_on_loopback_in_its_partition(partition: LocalPartition) -> None:
    assert partition.endpoint_url.startswith("http://127.0.0.1:")
    assert partition.alive()
    clients = SideClients(partition.endpoint_url, "cn-north-1")
    arn = clients.sts.get_caller_identity()["Arn"]
    assert arn.startswith("arn:aws-cn:")


def test_stream_records_stay_readable_when_a_mapping_exists(partition: LocalPartition) -> None:
    clients = SideClients(partition.endpoint_url, "cn-north-1")
    table = clients.dynamodb.create_table(
        TableName="launcher-check",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    stream_arn = table["LatestStreamArn"]
    function_arn = _function(clients, "launcher-check")
    clients.__getattr__("lambda").create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function_arn, StartingPosition="TRIM_HORIZON"
    )
    # A binary attribute made moto's own dispatch fail the write (HTTP 500): not any more.
    clients.dynamodb.put_item(TableName="launcher-check", Item={"pk": {"S": "a"}, "b": {"B": b"\x00\xff"}})
    clients.dynamodb.delete_item(TableName="launcher-check", Key={"pk": {"S": "a"}})
    streams = clients.dynamodbstreams
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]


def test_kinesis_records_stay_readable_when_a_mapping_exists(partition: LocalPartition) -> None:
    clients = SideClients(partition.endpoint_url, "cn-north-1")
    clients.kinesis.create_stream(StreamName="launcher-inbox", ShardCount=1)
    stream_arn = clients.kinesis.describe_stream_summary(StreamName="launcher-inbox")[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    function_arn = _function(clients, "launcher-inbox")
    clients.__getattr__("lambda").create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function_arn, StartingPosition="TRIM_HORIZON"
    )
    clients.kinesis.put_records(
        StreamName="launcher-inbox",
        Records=[{"Data": b"one", "PartitionKey": "k"}, {"Data": b"two", "PartitionKey": "k"}],
    )
    shard = clients.kinesis.list_shards(StreamName="launcher-inbox")["Shards"][0]["ShardId"]
    iterator = clients.kinesis.get_shard_iterator(
        StreamName="launcher-inbox", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert [r["Data"] for r in clients.kinesis.get_records(ShardIterator=iterator)["Records"]] == [
        b"one",
        b"two",
    ]


def test_a_partition_stops_when_asked(tmp_path: Any) -> None:
    from replication_ops.local.config import SIDES

    own = LocalPartition(SIDES["us-east-1"], tmp_path / "moto.log")
    own.start()
    process = own.process
    assert process is not None and own.alive()
    own.stop()
    assert process.poll() is not None
    assert not own.alive()
