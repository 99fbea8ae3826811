"""The fault proxy does to AWS traffic what a bad link or a throttling AWS API would."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from moto.server import ThreadedMotoServer

from replication_ops.chaos.faults import FaultPlan, LinkState, Reset
from replication_ops.chaos.proxy import FaultProxy

# One attempt per call, so that every fault shows as the call's own error ("max_attempts" counts
# retries, "total_max_attempts" all attempts:
# https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html). A retried
# CreateStream whose first reply came late was answered ResourceInUseException on a loaded machine.
# The read timeout is generous (the server may be slow); a blackholed link is tested with a short one.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=60)
SHORT_READ_TIMEOUT = NO_RETRIES.merge(Config(read_timeout=1))


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


def kinesis(proxy: FaultProxy, config: Config = NO_RETRIES) -> object:
    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=proxy.url, config=config)


def records_in(endpoint: str, name: str) -> list[bytes]:
    """What the stream holds, read straight from the server (not through the proxy)."""
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)
    shard = client.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [r["Data"] for r in client.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def stream(client: object, name: str) -> str:
    client.create_stream(StreamName=name, ShardCount=1)  # type: ignore[attr-defined]
    return name


def test_traffic_passes_untouched_while_the_link_is_up(proxy: FaultProxy) -> None:
    client = kinesis(proxy)
    name = stream(client, "pass")
    response = client.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])  # type: ignore[attr-defined]
    assert response["FailedRecordCount"] == 0


def test_a_signed_request_reaches_an_enforcing_partition_with_its_signature_intact(tmp_path) -> None:
    """SigV4 signs the Host header: a proxy on the link must pass it as the client sent it."""
    from replication_ops.local.aws import client
    from replication_ops.local.config import SIDES
    from replication_ops.local.partitions import LocalPartition

    partition = LocalPartition(SIDES["us-east-1"], tmp_path / "moto.log", enforce_iam=True)
    partition.start()
    link = FaultProxy(partition.endpoint_url).start()
    try:
        assert client("dynamodb", endpoint_url=link.url, region="us-east-1").list_tables()["TableNames"] == []
        assert {c["decision"] for c in partition.iam_calls()} == {"allowed"}
    finally:
        link.stop()
        partition.stop()


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
    client = kinesis(proxy, SHORT_READ_TIMEOUT)
    proxy.set_state(LinkState.BLACKHOLE)
    with pytest.raises(ReadTimeoutError):
        client.list_streams()  # type: ignore[attr-defined]
    proxy.set_state(LinkState.UP)
    assert "StreamNames" in kinesis(proxy).list_streams()  # type: ignore[attr-defined]


def put_record_raw(proxy: FaultProxy, name: str) -> None:
    """One PutRecord request on one connection, no SDK retries (moto does not check signatures)."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    body = json.dumps({"StreamName": name, "Data": "eA==", "PartitionKey": "k"})
    headers = {
        "X-Amz-Target": "Kinesis_20131202.PutRecord",
        "Content-Type": "application/x-amz-json-1.1",
        # moto takes the region from the credential scope; without it the record lands elsewhere
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kinesis/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    connection.request("POST", "/", body=body, headers=headers)
    connection.getresponse()


def test_a_reset_before_forwarding_fails_the_call_and_writes_nothing(
    proxy: FaultProxy, moto_endpoint: str
) -> None:
    name = stream(kinesis(proxy), "reset-before")
    proxy.plan = FaultPlan(reset_share=1.0)  # the first reset comes before forwarding
    with pytest.raises(ConnectionError):
        put_record_raw(proxy, name)
    assert (proxy.counters.resets, proxy.counters.replies_lost) == (1, 0)
    assert records_in(moto_endpoint, name) == []


def test_a_lost_reply_fails_the_call_although_aws_wrote_the_record(
    proxy: FaultProxy, moto_endpoint: str
) -> None:
    name = stream(kinesis(proxy), "reply-lost")
    proxy.plan = FaultPlan(reset_share=1.0)
    proxy.plan.reset_due()  # the first reset (before forwarding) is spent: the next loses the reply
    with pytest.raises(ConnectionError):
        put_record_raw(proxy, name)
    assert (proxy.counters.resets, proxy.counters.replies_lost) == (1, 1)
    assert records_in(moto_endpoint, name) == [b"x"]


def test_resets_are_exactly_their_share_and_alternate_before_and_after_forwarding() -> None:
    plan = FaultPlan(reset_share=0.05, seed=2)
    resets = [r for r in (plan.reset_due() for _ in range(200)) if r is not None]
    assert len(resets) == 10
    assert resets[:2] == [Reset.BEFORE_FORWARDING, Reset.REPLY_LOST]


def test_a_new_plan_leaves_a_refused_link_refused(proxy: FaultProxy) -> None:
    proxy.set_state(LinkState.REFUSE)
    proxy.plan = FaultPlan()
    with pytest.raises(EndpointConnectionError):
        kinesis(proxy).list_streams()  # type: ignore[attr-defined]


def test_a_request_the_proxy_cannot_handle_is_answered_502_and_counted(proxy: FaultProxy) -> None:
    proxy.plan = FaultPlan(throttle={"PutRecords": 0.5})
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    connection.request("POST", "/", body=b"not json", headers={"X-Amz-Target": "Kinesis_20131202.PutRecords"})
    assert connection.getresponse().status == 502
    assert proxy.counters.proxy_errors == 1


def test_put_records_is_answered_with_some_records_rejected_and_only_the_rest_written(
    proxy: FaultProxy,
) -> None:
    client = kinesis(proxy)
    name = stream(client, "partial")
    proxy.plan = FaultPlan(throttle={"PutRecords": 0.5})
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
    proxy.plan = FaultPlan(throttle={"ListTables": 1.0})
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
