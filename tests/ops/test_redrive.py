"""redrive: failed stream batches read again from their stream and processed again; poison
messages listed and left; expired ranges reported with a pointer to verify --repair."""

from __future__ import annotations

import importlib
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from replication.changes import Change
from replication.telemetry import metrics
from replication.versions import Version
from replication.wire import KIND_CHANGES, Envelope, decode, encode
from replication_ops.errors import EXIT_DIFFERENCES, EXIT_OK
from replication_ops.sides import Side

from .fakes import NAMES


def _queue_messages(side) -> list[dict]:
    sqs = side.client("sqs")
    messages = sqs.receive_message(QueueUrl=side.outputs["failure_queue_url"], MaxNumberOfMessages=10).get(
        "Messages", []
    )
    for message in messages:  # make them visible again for the next look
        sqs.change_message_visibility(
            QueueUrl=side.outputs["failure_queue_url"],
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )
    return [json.loads(m["Body"]) for m in messages]


def _send(side, document: dict) -> None:
    side.client("sqs").send_message(
        QueueUrl=side.outputs["failure_queue_url"], MessageBody=json.dumps(document)
    )


def _invocation_record(kind: str, info: dict, function: str) -> dict:
    return {
        "requestContext": {
            "requestId": "c9b8fa9f-5a7f-4c2b-9e7a-1a1a1a1a1a1a",
            "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:00.000Z",
        kind: {
            **info,
            "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
            "batchSize": info.get("batchSize", 1),
        },
    }


def _stream_range(side) -> dict:
    streams = side.client("dynamodbstreams")
    arn = side.outputs["table_stream_arns"]["profiles"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return {
        "shardId": shard,
        "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
        "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
        "batchSize": len(records),
        "streamArn": arn,
    }


def _inbox_records(side) -> list[bytes]:
    kinesis = side.client("kinesis")
    stream = side.outputs["inbox_stream_name"]
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


def _fill_secret(side) -> None:
    side.client("secretsmanager").put_secret_value(
        SecretId=side.outputs["peer_credentials_secret_arn"],
        SecretString='{"aws_access_key_id": "AKIATESTTESTTEST", "aws_secret_access_key": "test"}',
    )


def test_a_failed_forwarder_batch_is_read_again_and_forwarded(deployment, run):
    cn, us = deployment.cn, deployment.us
    _fill_secret(cn)
    cn.put("user#1", ts="100", city="Beijing")
    cn.put("user#2", ts="101", city="Harbin")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    result = run("redrive", *deployment.args(), "--side", "cn", "--via", "local", "--json")
    assert result.code == EXIT_OK, result.out + result.err
    [entry] = result.json["entries"]
    assert (entry["kind"], entry["status"], entry["records"]) == ("batch", "redriven", 2)
    [record] = _inbox_records(us)
    envelope = decode(record)
    assert (envelope.origin, envelope.table) == ("cn-north-1", "profiles")
    assert [c.key["pk"]["S"] for c in envelope.changes] == ["user#1", "user#2"]
    assert _queue_messages(cn) == []


def _failed_inbox_batch(us) -> None:
    """A change from cn-north-1 in us-east-1's inbox, and the replicator's failure record for it."""
    change = Change({"pk": {"S": "user#9"}, "sk": {"S": "profile"}}, Version(100, "cn-north-1"))
    item = {
        **change.key,
        "city": {"S": "Xian"},
        NAMES.timestamp: {"N": "100"},
        NAMES.origin: {"S": "cn-north-1"},
    }
    data = encode(
        Envelope(
            KIND_CHANGES, "cn-north-1", "profiles", NAMES, 1, (Change(change.key, change.version, item),)
        )
    )
    put = us.client("kinesis").put_record(
        StreamName=us.outputs["inbox_stream_name"], Data=data, PartitionKey="p"
    )
    info = {
        "shardId": put["ShardId"],
        "startSequenceNumber": put["SequenceNumber"],
        "endSequenceNumber": put["SequenceNumber"],
        "streamArn": us.outputs["inbox_stream_arn"],
    }
    _send(us, _invocation_record("KinesisBatchInfo", info, "ddbrep-us-replicator"))


def test_a_failed_replicator_batch_is_read_again_and_applied(deployment, run):
    us = deployment.us
    _failed_inbox_batch(us)
    result = run("redrive", *deployment.args(), "--side", "us", "--via", "local")
    assert result.code == EXIT_OK, result.out + result.err
    assert us.get("user#9")["city"] == {"S": "Xian"}
    assert _queue_messages(us) == []


def test_an_expired_range_is_reported_left_in_place_and_points_to_repair(deployment, run):
    us = deployment.us  # the batch's stream is gone (deleted and created again, say)
    info = {
        "shardId": "shardId-000000000000",
        "startSequenceNumber": "49590000000000000000000000000000000000000000000000000100",
        "endSequenceNumber": "49590000000000000000000000000000000000000000000000000200",
        "streamArn": us.outputs["inbox_stream_arn"] + "-previous",
    }
    _send(us, _invocation_record("KinesisBatchInfo", info, "ddbrep-us-replicator"))
    result = run("redrive", *deployment.args(), "--side", "us", "--via", "local", "--json")
    assert result.code == EXIT_DIFFERENCES
    [entry] = result.json["entries"]
    assert entry["status"] == "expired"
    assert "verify --repair" in entry["detail"]
    assert len(_queue_messages(us)) == 1


def test_a_trimmed_range_is_expired_too(deployment, run, monkeypatch):
    cn = deployment.cn
    cn.put("user#1", ts="100")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    original = Side.client

    def client(self, service):
        made = original(self, service)
        if service == "dynamodbstreams":
            made.meta.events.register("before-call.dynamodbstreams.GetShardIterator", _trimmed)
        return made

    monkeypatch.setattr(Side, "client", client)
    result = run("redrive", *deployment.args(), "--side", "cn", "--via", "local", "--json")
    assert result.json["entries"][0]["status"] == "expired"
    assert "TrimmedDataAccessException" in result.json["entries"][0]["detail"]


def _trimmed(**_: object):
    class Http:
        status_code = 400

    return Http(), {"Error": {"Code": "TrimmedDataAccessException", "Message": "beyond the trim horizon"}}


def test_poison_messages_are_listed_with_their_reason_and_left_in_place(deployment, run):
    us = deployment.us
    poison = {
        "kind": "poison",
        "reason": "unsupported format version 9",
        "sequenceNumber": "42",
        "data": None,
    }
    _send(us, poison)
    result = run("redrive", *deployment.args(), "--side", "us")
    assert result.code == EXIT_DIFFERENCES
    assert "unsupported format version 9" in result.out
    assert _queue_messages(us) == [poison]


def test_delete_poison_removes_them(deployment, run):
    _send(deployment.us, {"kind": "poison", "reason": "bad magic bytes"})
    result = run("redrive", *deployment.args(), "--side", "us", "--delete-poison", "--json")
    assert result.code == EXIT_OK
    assert result.json["entries"][0]["status"] == "deleted"
    assert _queue_messages(deployment.us) == []


def test_dry_run_lists_and_changes_nothing(deployment, run):
    cn = deployment.cn
    cn.put("user#1", ts="100")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    result = run("redrive", *deployment.args(), "--dry-run", "--json")
    assert result.code == EXIT_OK
    assert [e["status"] for e in result.json["entries"]] == ["listed"]
    assert len(_queue_messages(cn)) == 1
    assert _inbox_records(deployment.us) == []


def test_a_batch_that_fails_again_stays_in_the_queue(deployment, run):
    cn = deployment.cn  # its secret is empty: the forwarder has no peer credentials
    cn.put("user#1", ts="100")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    result = run("redrive", *deployment.args(), "--side", "cn", "--via", "local", "--json")
    assert result.code == EXIT_DIFFERENCES
    assert result.json["entries"][0]["status"] == "failed"
    assert len(_queue_messages(cn)) == 1


def test_empty_queues_are_fine(deployment, run):
    result = run("redrive", *deployment.args())
    assert result.code == EXIT_OK
    assert "empty" in result.out


# -- --via invoke: what runs by default against AWS ------------------------------------------

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


class HandlersInProcess:
    """Lambda Invoke without Docker (moto cannot run code without it): the function's own handler
    from functions/, in-process, with the function's configured environment, answering as Invoke
    answers (Payload stream, FunctionError when the handler raises)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.invoked: list[str] = []

    def install(self) -> None:
        original = Side.client
        handlers = self

        def client(side: Side, service: str) -> Any:
            real = original(side, service)
            return _LambdaClient(real, side.region, handlers) if service == "lambda" else real

        self.monkeypatch.setattr(Side, "client", client)

    def invoke(self, real: Any, region: str, name: str, event: dict[str, Any]) -> dict[str, Any]:
        self.invoked.append(name)
        variables = real.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        for key, value in {**variables, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}.items():
            self.monkeypatch.setenv(key, value)
        self.monkeypatch.syspath_prepend(str(FUNCTIONS / name.rsplit("-", 1)[1]))
        sys.modules.pop("app", None)
        app = importlib.import_module("app")
        context = SimpleNamespace(
            function_name=name,
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{region}:123456789012:function:{name}",
            memory_limit_in_mb=256,
            aws_request_id="00000000-0000-0000-0000-000000000001",
            get_remaining_time_in_millis=lambda: 60_000,
        )
        try:
            answer = app.handler(event, context)
        except Exception as error:  # Lambda reports an unhandled error the same way
            payload = {"errorMessage": str(error), "errorType": type(error).__name__}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(payload).encode()),
            }
        finally:
            sys.modules.pop("app", None)
            metrics.clear_metrics()
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


class _LambdaClient:
    def __init__(self, real: Any, region: str, handlers: HandlersInProcess) -> None:
        self._real, self._region, self._handlers = real, region, handlers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:
        assert InvocationType == "RequestResponse"
        return self._handlers.invoke(self._real, self._region, FunctionName, json.loads(Payload))


@pytest.fixture
def lambda_invoke(monkeypatch: pytest.MonkeyPatch) -> HandlersInProcess:
    handlers = HandlersInProcess(monkeypatch)
    handlers.install()
    return handlers


def test_by_invoke_the_replicator_applies_the_batch_read_again(deployment, run, lambda_invoke):
    us = deployment.us
    _failed_inbox_batch(us)
    result = run("redrive", *deployment.args(), "--side", "us", "--via", "invoke")
    assert result.code == EXIT_OK, result.out + result.err
    assert lambda_invoke.invoked == ["ddbrep-us-replicator"]
    assert us.get("user#9")["city"] == {"S": "Xian"}
    assert _queue_messages(us) == []


def test_by_invoke_the_forwarder_sends_the_batch_read_again(deployment, run, lambda_invoke):
    cn, us = deployment.cn, deployment.us
    _fill_secret(cn)
    cn.put("user#1", ts="100", city="Beijing")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    result = run("redrive", *deployment.args(), "--side", "cn", "--via", "invoke")
    assert result.code == EXIT_OK, result.out + result.err
    assert lambda_invoke.invoked == ["ddbrep-cn-forwarder"]
    [record] = _inbox_records(us)
    assert [c.key["pk"]["S"] for c in decode(record).changes] == ["user#1"]
    assert _queue_messages(cn) == []


def test_by_invoke_a_batch_the_function_reports_failed_stays_in_the_queue(deployment, run, lambda_invoke):
    cn = deployment.cn  # its secret is empty: the forwarder reports the batch as failed
    cn.put("user#1", ts="100")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    result = run("redrive", *deployment.args(), "--side", "cn", "--via", "invoke")
    assert result.code == EXIT_DIFFERENCES
    assert lambda_invoke.invoked == ["ddbrep-cn-forwarder"]
    assert "failed again" in result.out + result.err
    assert len(_queue_messages(cn)) == 1


def test_with_a_table_only_its_messages_are_touched_and_the_others_are_left(deployment, run):
    us = deployment.us
    other = {"kind": "poison", "table": "orders", "reason": "1 change(s) refused", "refused": []}
    mine = {"kind": "poison", "table": "profiles", "reason": "1 change(s) refused", "refused": []}
    _send(us, other)
    _send(us, mine)
    result = run(
        "redrive", *deployment.args(), "--side", "us", "--table", "profiles", "--delete-poison", "--json"
    )
    assert result.code == EXIT_OK
    assert sorted((e["table"], e["status"]) for e in result.json["entries"]) == [
        ("orders", "skipped"),
        ("profiles", "deleted"),
    ]
    assert _queue_messages(us) == [other]


def test_a_table_stream_batch_names_its_table(deployment, run):
    cn = deployment.cn
    cn.put("user#1", ts="100")
    _send(cn, _invocation_record("DDBStreamBatchInfo", _stream_range(cn), "ddbrep-cn-forwarder"))
    result = run("redrive", *deployment.args(), "--dry-run", "--json")
    assert [e["table"] for e in result.json["entries"]] == ["profiles"]
