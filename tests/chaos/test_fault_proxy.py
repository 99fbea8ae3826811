"""The fault proxy does to AWS traffic what a bad link or a throttling AWS API would."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from moto.server import ThreadedMotoServer

from replication_ops.chaos.faults import FaultPlan, LinkState
from replication_ops.chaos.proxy import FaultProxy

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_endpoint).start()
    yield proxy
    proxy.stop()


def kinesis(proxy: FaultProxy) -> object:
    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=proxy.url, config=NO_RETRIES)


def stream(client: object, name: str) -> str:
    client.create_stream(StreamName=name, ShardCount=1)  # type: ignore[attr-defined]
    return name


def test_traffic_passes_untouched_while_the_link_is_up(proxy: FaultProxy) -> None:
    client = kinesis(proxy)
    name = stream(client, "pass")
    response = client.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])  # type: ignore[attr-defined]
    assert response["FailedRecordCount"] == 0


def test_a_refused_link_refuses_connections_until_healed(proxy: FaultProxy) -> None:
    client = kinesis(proxy)
    proxy.set_state(LinkState.REFUSE)
    with pytest.raises(EndpointConnectionError):
        client.list_streams()  # type: ignore[attr-defined]
    proxy.set_state(LinkState.UP)
    assert "StreamNames" in client.list_streams()  # type: ignore[attr-defined]


def test_a_refused_link_also_breaks_connections_already_open(proxy: FaultProxy) -> None:
    client = kinesis(proxy)
    client.list_streams()  # type: ignore[attr-defined]  # leaves a keep-alive connection open
    proxy.set_state(LinkState.REFUSE)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client.list_streams()  # type: ignore[attr-defined]
    proxy.set_state(LinkState.UP)
    assert "StreamNames" in client.list_streams()  # type: ignore[attr-defined]


def test_a_blackholed_link_accepts_and_never_answers(proxy: FaultProxy) -> None:
    client = kinesis(proxy)
    proxy.set_state(LinkState.BLACKHOLE)
    with pytest.raises(ReadTimeoutError):
        client.list_streams()  # type: ignore[attr-defined]
    proxy.set_state(LinkState.UP)
    assert "StreamNames" in kinesis(proxy).list_streams()  # type: ignore[attr-defined]


def test_reset_connections_fail_the_call(proxy: FaultProxy) -> None:
    proxy.plan.reset_share = 1.0
    with pytest.raises(ConnectionClosedError):
        kinesis(proxy).list_streams()  # type: ignore[attr-defined]
    assert proxy.counters.resets >= 1


def test_put_records_is_answered_with_some_records_rejected_and_only_the_rest_written(
    proxy: FaultProxy,
) -> None:
    client = kinesis(proxy)
    name = stream(client, "partial")
    proxy.plan.throttle["PutRecords"] = 0.5
    records = [{"Data": f"{i}".encode(), "PartitionKey": "k"} for i in range(40)]
    response = client.put_records(StreamName=name, Records=records)  # type: ignore[attr-defined]
    rejected = [i for i, r in enumerate(response["Records"]) if r.get("ErrorCode")]
    assert 0 < response["FailedRecordCount"] == len(rejected) < 40
    assert response["Records"][rejected[0]]["ErrorCode"] == "ProvisionedThroughputExceededException"
    shard = client.list_shards(StreamName=name)["Shards"][0]["ShardId"]  # type: ignore[attr-defined]
    iterator = client.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")  # type: ignore[attr-defined]
    written = client.get_records(ShardIterator=iterator["ShardIterator"])["Records"]  # type: ignore[attr-defined]
    assert sorted(int(r["Data"]) for r in written) == [i for i in range(40) if i not in rejected]


def test_a_throttled_operation_gets_the_throttling_error_aws_sends(proxy: FaultProxy) -> None:
    proxy.plan.throttle["ListTables"] = 1.0
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=proxy.url, config=NO_RETRIES)
    with pytest.raises(ClientError) as raised:
        client.list_tables()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


def test_latency_stays_within_its_jitter() -> None:
    plan = FaultPlan(latency_ms=300, jitter_ms=100)
    delays = [plan.delay_seconds() for _ in range(200)]
    assert min(delays) >= 0.2
    assert max(delays) <= 0.4


def test_binary_bodies_survive_the_proxy(proxy: FaultProxy) -> None:
    client = kinesis(proxy)
    name = stream(client, "binary")
    payload = bytes(range(256))
    client.put_record(StreamName=name, Data=payload, PartitionKey="k")  # type: ignore[attr-defined]
    shard = client.list_shards(StreamName=name)["Shards"][0]["ShardId"]  # type: ignore[attr-defined]
    iterator = client.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")  # type: ignore[attr-defined]
    (record,) = client.get_records(ShardIterator=iterator["ShardIterator"])["Records"]  # type: ignore[attr-defined]
    assert base64.b64encode(record["Data"]) == base64.b64encode(payload)
