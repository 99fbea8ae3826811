"""The event-source runner against a real moto partition, with a fake function zip."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replication_ops.local.aws import SideClients
from replication_ops.local.partitions import LocalPartition
from replication_ops.local.quiescence import wait_quiescent
from replication_ops.local.runner import (
    CodeMismatchError,
    EventSourceRunner,
    RunnerError,
    SideEndpoint,
    check_code,
    code_sha256,
    lambda_environment,
    zip_for_function,
)

from .conftest import write_fake_zip


def test_the_deployed_code_must_be_the_dist_zip(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    forwarder = write_fake_zip(dist / "forwarder.zip")
    write_fake_zip(dist / "replicator.zip", "def handler(e, c):\n    return None\n")
    assert zip_for_function("ddbrep-cn-forwarder", dist) == forwarder
    assert zip_for_function("something-else", dist) is None
    assert check_code("ddbrep-cn-forwarder", "cn-north-1", code_sha256(forwarder), dist) == forwarder
    with pytest.raises(CodeMismatchError, match="run `make package` and re-apply"):
        check_code("ddbrep-cn-forwarder", "cn-north-1", "c3RhbGU=", dist)
    with pytest.raises(CodeMismatchError, match="make package"):
        check_code("unknown", "cn-north-1", "c3RhbGU=", dist)


def test_code_sha256_is_lambdas_base64_digest(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"abc")
    assert code_sha256(path) == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="


def test_the_environment_is_the_deployed_one_plus_lambdas_own() -> None:
    configuration = {
        "FunctionName": "ddbrep-cn-forwarder",
        "FunctionArn": "arn:aws-cn:lambda:cn-north-1:1:function:ddbrep-cn-forwarder",
        "Runtime": "python3.12",
        "Handler": "app.handler",
        "MemorySize": 512,
        "Environment": {
            "Variables": {"TABLE_NAME": "t", "PEER_ENDPOINT_URL": "http://127.0.0.1:2", "AWS_REGION": "x"}
        },
    }
    env = lambda_environment(
        configuration, region="cn-north-1", endpoint_url="http://127.0.0.1:1", code_dir=Path("/c")
    )
    assert env["TABLE_NAME"] == "t"
    assert env["PEER_ENDPOINT_URL"] == "http://127.0.0.1:2"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "cn-north-1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ddbrep-cn-forwarder"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["LAMBDA_TASK_ROOT"] == "/c" and env["_HANDLER"] == "app.handler"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert "AWS_CA_BUNDLE" not in env


def test_the_local_ca_bundle_reaches_the_workers_as_aws_ca_bundle() -> None:
    """The forwarder's Roles Anywhere session verifies the emulator's TLS port with AWS_CA_BUNDLE
    (https://docs.aws.amazon.com/sdkref/latest/guide/feature-gtls.html)."""
    configuration = {
        "FunctionName": "ddbrep-cn-forwarder",
        "FunctionArn": "arn:aws-cn:lambda:cn-north-1:1:function:ddbrep-cn-forwarder",
        "Environment": {"Variables": {"PEER_ROLESANYWHERE_ENDPOINT": "localhost:4443"}},
    }
    env = lambda_environment(
        configuration,
        region="cn-north-1",
        endpoint_url="http://127.0.0.1:1",
        code_dir=Path("/c"),
        ca_bundle="/b/tls/local-ca.pem",
    )
    assert env["AWS_CA_BUNDLE"] == "/b/tls/local-ca.pem"
    assert env["PEER_ROLESANYWHERE_ENDPOINT"] == "localhost:4443"


class Deployment:
    """A table with a stream, an inbox, a failure queue, two fake functions and their mappings."""

    def __init__(self, partition: LocalPartition, dist: Path, suffix: str) -> None:
        self.clients = SideClients(partition.endpoint_url, "cn-north-1")
        self.suffix = suffix
        c = self.clients
        self.table = f"table-{suffix}"
        self.seen = f"seen-{suffix}"
        for name, stream in ((self.table, True), (self.seen, False)):
            spec: dict[str, Any] = {
                "TableName": name,
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if stream:
                spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            c.dynamodb.create_table(**spec)
        self.stream_arn = c.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        self.inbox = f"inbox-{suffix}"
        c.kinesis.create_stream(StreamName=self.inbox, ShardCount=2)
        self.inbox_arn = c.kinesis.describe_stream_summary(StreamName=self.inbox)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        self.queue_url = c.sqs.create_queue(QueueName=f"failures-{suffix}")["QueueUrl"]
        queue_arn = c.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        role = c.iam.create_role(RoleName=f"role-{suffix}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = (dist / "fake.zip").read_bytes()
        api = c.__getattr__("lambda")
        self.functions = []
        for source, arn, extra in (
            (
                "stream",
                self.stream_arn,
                {"BisectBatchOnFunctionError": True, "MaximumRetryAttempts": 1, "BatchSize": 10},
            ),
            ("inbox", self.inbox_arn, {"BatchSize": 5}),
        ):
            name = f"{source}-{suffix}-fake"
            api.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": code},
                Timeout=30,
                Environment={
                    "Variables": {"SEEN_TABLE": self.seen, "RUN_ID": suffix, "MARKER_DIR": str(dist.parent)}
                },
            )
            self.functions.append(name)
            api.create_event_source_mapping(
                EventSourceArn=arn,
                FunctionName=name,
                StartingPosition="TRIM_HORIZON",
                FunctionResponseTypes=["ReportBatchItemFailures"],
                DestinationConfig={"OnFailure": {"Destination": queue_arn}},
                **extra,
            )

    def seen_items(self) -> dict[str, dict[str, Any]]:
        items = self.clients.dynamodb.scan(TableName=self.seen)["Items"]
        return {item["pk"]["S"]: json.loads(item["body"]["S"]) for item in items}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    write_fake_zip(tmp_path / "dist" / "fake.zip")
    return tmp_path / "dist"


@pytest.fixture
def make_runner(
    fresh_partition: LocalPartition, tmp_path: Path
) -> Iterator[Callable[..., EventSourceRunner]]:
    """A runner of the fresh partition's mappings (``dist_dir`` and its options as given), stopped at
    the end of the test."""
    runners: list[EventSourceRunner] = []

    def make(dist_dir: Path, **options: Any) -> EventSourceRunner:
        runner = EventSourceRunner(
            [SideEndpoint("cn-north-1", fresh_partition.endpoint_url)],
            dist_dir=dist_dir,
            functions_dir=tmp_path / "functions",
            logs_dir=tmp_path / "logs",
            **options,
        )
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()


def test_the_runner_delivers_stream_and_kinesis_records_like_lambda(
    fresh_partition: LocalPartition, dist: Path, tmp_path: Path, make_runner: Callable[..., EventSourceRunner]
) -> None:
    deployment = Deployment(fresh_partition, dist, uuid.uuid4().hex[:8])
    clients = deployment.clients
    runner = make_runner(dist)
    runner.prepare()
    runner.start()
    keys = [f"k{n}" for n in range(12)] + ["fail-once", "poison", "after"]
    for key in keys:
        clients.dynamodb.put_item(TableName=deployment.table, Item={"pk": {"S": key}})
    clients.kinesis.put_records(
        StreamName=deployment.inbox,
        Records=[{"Data": f"d{n}".encode(), "PartitionKey": f"inbox-{n}"} for n in range(7)],
    )
    wait_quiescent(runner.consumers, timeout=60)
    seen = deployment.seen_items()
    expected = {k for k in keys if k != "poison"} | {f"inbox-{n}" for n in range(7)}
    assert set(seen) == expected
    assert seen["k0"]["region"] == "cn-north-1"
    assert seen["k0"]["arn"] == deployment.stream_arn
    assert seen["inbox-0"]["arn"] == deployment.inbox_arn
    assert seen["k0"]["zipped"] is True
    assert 0 < seen["k0"]["remaining"] <= 30_000
    messages = clients.sqs.receive_message(QueueUrl=deployment.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    document = json.loads(messages[0]["Body"])
    info = document["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == deployment.stream_arn
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    summary = runner.summary()["cn-north-1"]
    stream_summary = summary["fake"]
    assert stream_summary["records_discarded"] >= 1
    records, data = runner.inbox_totals("cn-north-1")
    assert (records, data) == (7, sum(len(f"d{n}") for n in range(7)))
    runner.stop()  # flushes the metrics publisher
    # Lambda's own metrics and the EMF ones reached the partition's CloudWatch
    names = {m["MetricName"] for m in clients.cloudwatch.list_metrics(Namespace="AWS/Lambda")["Metrics"]}
    assert {"Invocations", "Errors", "Duration", "IteratorAge"} <= names
    assert clients.cloudwatch.list_metrics(Namespace="T", MetricName="Records")["Metrics"]
    metrics = [
        f.runtime.metrics.total("Records")
        for f in runner.functions.values()
        if f.name in deployment.functions
    ]
    assert sum(metrics) >= len(keys) + 7  # EMF lines read from the workers' output
    logs = list((tmp_path / "logs").glob("lambda-*.log"))
    assert logs and "poison record" in "".join(path.read_text() for path in logs)


class TableStreamReads:
    """What ``observe_table_streams`` handed over: (side, key, event name, read_at) per record."""

    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[str, str, str, float]] = []
        self.arns: set[str] = set()
        self.fail = fail

    def __call__(self, side: str, records: list[Any], read_at: float) -> None:
        if self.fail:
            raise ValueError("observer broke")
        for record in records:
            event = record.event_record
            self.arns.add(event["eventSourceARN"])
            self.records.append((side, event["dynamodb"]["Keys"]["pk"]["S"], event["eventName"], read_at))

    def observed_keys(self) -> list[str]:
        return [key for _, key, _, _ in self.records]


def test_the_table_streams_reads_reach_the_observer_once_each_and_the_inbox_reads_never(
    fresh_partition: LocalPartition, dist: Path, make_runner: Callable[..., EventSourceRunner]
) -> None:
    deployment = Deployment(fresh_partition, dist, uuid.uuid4().hex[:8])
    clients = deployment.clients
    runner = make_runner(dist, publish_metrics=False)
    reads, broken = TableStreamReads(), TableStreamReads(fail=True)
    runner.prepare()
    runner.start()
    runner.observe_table_streams(reads)
    written_at = time.time()
    keys = [f"k{n}" for n in range(12)] + ["fail-once"]  # fail-once: its batch is retried
    for key in keys:
        clients.dynamodb.put_item(TableName=deployment.table, Item={"pk": {"S": key}})
    clients.dynamodb.delete_item(TableName=deployment.table, Key={"pk": {"S": "k0"}})
    clients.kinesis.put_records(
        StreamName=deployment.inbox,
        Records=[{"Data": b"d", "PartitionKey": f"inbox-{n}"} for n in range(3)],
    )
    wait_quiescent(runner.consumers, timeout=60)
    assert len(deployment.seen_items()) == len(keys) + 3  # the inbox was read, by its poller
    assert reads.observed_keys() == [*keys, "k0"]
    assert [name for *_, name, _ in reads.records] == ["INSERT"] * len(keys) + ["REMOVE"]
    assert {side for side, *_ in reads.records} == {"cn-north-1"}
    assert reads.arns == {deployment.stream_arn}
    assert all(written_at <= read_at <= time.time() for *_, read_at in reads.records)

    runner.observe_table_streams(None)
    clients.dynamodb.put_item(TableName=deployment.table, Item={"pk": {"S": "unobserved"}})
    wait_quiescent(runner.consumers, timeout=60)
    assert "unobserved" in deployment.seen_items() and "unobserved" not in reads.observed_keys()
    runner.check_health()

    runner.observe_table_streams(broken)
    clients.dynamodb.put_item(TableName=deployment.table, Item={"pk": {"S": "after"}})
    wait_quiescent(runner.consumers, timeout=60)
    assert "after" in deployment.seen_items()  # the poller went on
    with pytest.raises(RunnerError, match="table-stream observer failed: ValueError: observer broke"):
        runner.check_health()


def test_the_runner_refuses_code_that_is_not_the_dist_zip(
    fresh_partition: LocalPartition, dist: Path, make_runner: Callable[..., EventSourceRunner]
) -> None:
    Deployment(fresh_partition, dist, uuid.uuid4().hex[:8])
    write_fake_zip(dist / "fake.zip", "def handler(e, c):\n    return {}\n")  # rebuilt, not re-applied
    runner = make_runner(dist)
    with pytest.raises(CodeMismatchError, match="make package"):
        runner.prepare()


def test_a_function_failing_at_init_is_reported(
    fresh_partition: LocalPartition, tmp_path: Path, make_runner: Callable[..., EventSourceRunner]
) -> None:
    dist = tmp_path / "dist"
    write_fake_zip(dist / "fake.zip", "raise RuntimeError('bad config')\n")
    clients = SideClients(fresh_partition.endpoint_url, "cn-north-1")
    suffix = uuid.uuid4().hex[:8]
    clients.dynamodb.create_table(
        TableName=f"init-{suffix}",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = clients.dynamodb.describe_table(TableName=f"init-{suffix}")["Table"]["LatestStreamArn"]
    role = clients.iam.create_role(RoleName=f"init-{suffix}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    api = clients.__getattr__("lambda")
    api.create_function(
        FunctionName=f"init-{suffix}-fake",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": (dist / "fake.zip").read_bytes()},
    )
    api.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=f"init-{suffix}-fake")
    runner = make_runner(dist)
    with pytest.raises(RunnerError, match="bad config"):
        runner.prepare()
