"""The moto launcher: one partition per process, its own Lambda dispatch off, records left in the streams."""

from __future__ import annotations

import http.client
import io
import json
import threading
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


def _stream_table(clients: SideClients, name: str) -> str:
    clients.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return clients.dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def test_a_cancelled_transaction_leaves_no_trace_and_iterators_keep_working(
    partition: LocalPartition,
) -> None:
    clients = SideClients(partition.endpoint_url, "cn-north-1")
    stream_arn = _stream_table(clients, "tx-items")
    streams = clients.dynamodbstreams
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    clients.dynamodb.put_item(TableName="tx-items", Item={"pk": {"S": "kept"}, "v": {"N": "1"}})
    with pytest.raises(clients.dynamodb.exceptions.TransactionCanceledException):
        clients.dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "tx-items", "Item": {"pk": {"S": "new"}}}},
                {"Put": {"TableName": "tx-items", "Item": {"pk": {"S": "kept"}, "v": {"N": "2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "tx-items",
                        "Key": {"pk": {"S": "absent"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    # the engine's shape: a failing check on a table without a stream, then a put on the streamed table
    clients.dynamodb.create_table(
        TableName="tx-tombstones",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients.dynamodb.put_item(TableName="tx-tombstones", Item={"k": {"S": "new"}, "ts": {"N": "9"}})
    with pytest.raises(clients.dynamodb.exceptions.TransactionCanceledException):
        clients.dynamodb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": "tx-tombstones",
                        "Key": {"k": {"S": "new"}},
                        "ConditionExpression": "attribute_not_exists(k) OR ts < :ts",
                        "ExpressionAttributeValues": {":ts": {"N": "5"}},
                    }
                },
                {
                    "Put": {
                        "TableName": "tx-items",
                        "Item": {"pk": {"S": "new"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert "Item" not in clients.dynamodb.get_item(TableName="tx-items", Key={"pk": {"S": "new"}})
    kept = clients.dynamodb.get_item(TableName="tx-items", Key={"pk": {"S": "kept"}})["Item"]
    assert kept["v"] == {"N": "1"}
    clients.dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": "tx-items", "Item": {"pk": {"S": "after"}}}}]
    )
    clients.dynamodb.put_item(TableName="tx-items", Item={"pk": {"S": "last"}})
    response = streams.get_records(ShardIterator=iterator)
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in response["Records"]]
    assert keys == ["kept", "after", "last"]  # nothing of the cancelled transaction, nothing missed


def test_concurrent_conditional_writes_are_atomic(partition: LocalPartition) -> None:
    import threading

    clients = SideClients(partition.endpoint_url, "cn-north-1")
    _stream_table(clients, "tx-counter")
    clients.dynamodb.put_item(TableName="tx-counter", Item={"pk": {"S": "c"}, "n": {"N": "0"}})
    wins: list[int] = []

    def bump() -> None:
        for _ in range(15):
            current = clients.dynamodb.get_item(
                TableName="tx-counter", Key={"pk": {"S": "c"}}, ConsistentRead=True
            )
            n = int(current["Item"]["n"]["N"])
            try:
                clients.dynamodb.put_item(
                    TableName="tx-counter",
                    Item={"pk": {"S": "c"}, "n": {"N": str(n + 1)}},
                    ConditionExpression="n = :n",
                    ExpressionAttributeValues={":n": {"N": str(n)}},
                )
                wins.append(1)
            except clients.dynamodb.exceptions.ConditionalCheckFailedException:
                pass

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = clients.dynamodb.get_item(TableName="tx-counter", Key={"pk": {"S": "c"}})["Item"]["n"]["N"]
    assert int(final) == len(wins)


def test_an_unknown_stream_iterator_is_an_expired_one(partition: LocalPartition) -> None:
    from replication_ops.local.streams import DynamoDBShardReader, IteratorExpired

    clients = SideClients(partition.endpoint_url, "cn-north-1")
    stream_arn = _stream_table(clients, "expired-iterators")
    shard = clients.dynamodbstreams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    reader = DynamoDBShardReader(clients.dynamodbstreams, stream_arn, shard["ShardId"], "cn-north-1")
    with pytest.raises(IteratorExpired):
        reader.read(f"{stream_arn}|1|no-such-iterator", 10)


def test_mappings_and_alarms_filter_as_aws_does(partition: LocalPartition) -> None:
    clients = SideClients(partition.endpoint_url, "cn-north-1")
    stream_arn = _stream_table(clients, "filters")
    function_arn = _function(clients, "filters-fn")
    api = clients.__getattr__("lambda")
    api.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName="filters-fn")
    for name_or_arn in ("filters-fn", function_arn, f"{function_arn}:$LATEST"):
        assert len(api.list_event_source_mappings(FunctionName=name_or_arn)["EventSourceMappings"]) == 1
    assert api.list_event_source_mappings(FunctionName="other")["EventSourceMappings"] == []
    cloudwatch = clients.cloudwatch
    for name in ("filters-a", "filters-b", "elsewhere"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName="filters-b", StateValue="ALARM", StateReason="test")
    firing = cloudwatch.describe_alarms(AlarmNamePrefix="filters-", StateValue="ALARM")["MetricAlarms"]
    assert [a["AlarmName"] for a in firing] == ["filters-b"]
    assert len(cloudwatch.describe_alarms(AlarmNamePrefix="filters-")["MetricAlarms"]) == 2


def test_a_stream_consumer_is_an_event_source_as_lambda_documents(partition: LocalPartition) -> None:
    # KDS RegisterStreamConsumer: the consumer's ARN is the stream's + /consumer/<name>:<creation
    # timestamp>; Lambda CreateEventSourceMapping: a Kinesis EventSourceArn is "the ARN of the data
    # stream or a stream consumer" (moto_fidelity 11).
    clients = SideClients(partition.endpoint_url, "cn-north-1")
    clients.kinesis.create_stream(StreamName="efo-inbox", ShardCount=1)
    stream_arn = clients.kinesis.describe_stream_summary(StreamName="efo-inbox")["StreamDescriptionSummary"][
        "StreamARN"
    ]
    consumer_arn = clients.kinesis.register_stream_consumer(
        StreamARN=stream_arn, ConsumerName="efo-replicator"
    )["Consumer"]["ConsumerARN"]
    prefix, timestamp = consumer_arn.rsplit(":", 1)
    assert prefix == f"{stream_arn}/consumer/efo-replicator" and timestamp.isdigit()
    assert (
        clients.kinesis.describe_stream_consumer(ConsumerARN=consumer_arn)["ConsumerDescription"]["StreamARN"]
        == stream_arn
    )
    _function(clients, "efo-fn")
    api = clients.__getattr__("lambda")
    uuid = api.create_event_source_mapping(
        EventSourceArn=consumer_arn, FunctionName="efo-fn", StartingPosition="TRIM_HORIZON"
    )["UUID"]
    assert api.get_event_source_mapping(UUID=uuid)["EventSourceArn"] == consumer_arn


def _list_tables(connection: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
    """A DynamoDB ListTables call as botocore sends it (moto without IAM enforcement reads the
    region from the credential scope and checks no signature)."""
    connection.request(
        "POST",
        "/",
        body=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 "
            "Credential=AKIAEXAMPLE/20260101/cn-north-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    return connection.getresponse()


def test_the_partition_keeps_a_connection_open_for_the_next_request(partition: LocalPartition) -> None:
    """As AWS's endpoints do, HTTP/1.1 connections stay open between requests, so botocore's
    connection pool reuses them; each request's body is read whole, so the next request on the same
    connection is parsed from its own first byte."""
    port = int(partition.endpoint_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        addresses = set()
        for body in (b'{"Limit": 5}', b"{}", b'{"ExclusiveStartTableName": "a", "Limit": 100}'):
            response = _list_tables(connection, body)
            answer = json.loads(response.read())
            assert response.status == 200, answer
            assert "TableNames" in answer
            assert not response.will_close
            assert connection.sock is not None
            addresses.add(connection.sock.getsockname())
        assert len(addresses) == 1
    finally:
        connection.close()


def _serve_once_and_shut_down(app: Any) -> threading.Thread:
    server = moto_launcher.make_server("127.0.0.1", 0, app)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"ok"  # a connection left open does not hold it
    server.shutdown()  # while the worker that answered may still be finishing its task
    serving.join(timeout=30)
    connection.close()
    return serving


def test_a_kept_alive_server_stops_serving_when_shut_down() -> None:
    """Shut down right after a response, many times over: a worker finishing its task must not
    touch the server's descriptors once they are closed (it did about once in 300 before the workers
    were stopped first, and a shutdown failed with EBADF on a descriptor reused by the next server),
    and the worker's wake-up must not run the stop before shutdown has written to the trigger's pipe
    (about once in 10,000 until both were done under the trigger's lock: EBADF on the closed pipe)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    for _ in range(1000):
        assert not _serve_once_and_shut_down(app).is_alive()


def test_moto_modules_are_listed_once_with_the_same_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import backends

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)  # restored
    listed = list(backends.list_of_moto_modules())
    moto_launcher.list_moto_modules_once()

    def no_listing(path: str) -> list[str]:
        raise AssertionError(f"moto's folder listed again: {path}")

    monkeypatch.setattr(backends.os, "listdir", no_listing)
    assert list(backends.list_of_moto_modules()) == listed
    assert {"dynamodb", "dynamodbstreams", "kinesis", "sts"} <= set(listed)


def _serialize(service: str, operation: str, result: Any, transformers: Any = None) -> Any:
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    service_model = get_service_model(service)
    serializer = get_serializer_class(service, service_model.protocol)(
        operation_model=service_model.operation_model(operation),
        value_picker=XFormedAttributePicker(response_transformers=transformers),
    )
    return json.loads(serializer.serialize(result)["body"])


def test_attribute_values_are_serialized_directly_with_the_same_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    from moto.core.serialize import BaseJSONSerializer

    every_type = {
        "s": {"S": "text"},
        "n": {"N": "-12.500"},
        "b": {"B": b"\x00\xffbytes"},
        "b_text": {"B": "YWJj"},  # what moto holds for a binary written through its server
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"\x01", "AQ=="]},
        "null": {"NULL": True},
        "bool": {"BOOL": False},
        "empty_s": {"S": ""},
        "m": {
            "M": {"inner": {"L": [{"S": "x"}, {"M": {"deep": {"N": "1"}}}, {"NULL": True}]}, "e": {"M": {}}}
        },
        "l": {"L": []},
        "odd": {"S": "x", "Unknown": "kept the usual way"},  # a key that is no member: moto's own path
        "two": {"S": "a", "N": "1"},  # not valid DynamoDB, but serialized as moto would
    }
    record = {
        "eventID": "e1",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.0",
        "awsRegion": "cn-north-1",
        "dynamodb": {
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "ApproximateCreationDateTime": datetime.datetime(2026, 12, 1, 3, 4, 5, tzinfo=datetime.UTC),
            "SequenceNumber": "100",
            "SizeBytes": 123,
            "Keys": {"pk": {"S": "k"}, "sk": {"B": b"key"}},
            "NewImage": every_type,
            "OldImage": {"pk": {"S": "k"}, "sk": {"B": b"key"}},
        },
    }
    results = {
        ("dynamodbstreams", "GetRecords"): {
            "Records": [record, {**record, "eventName": "REMOVE"}],
            "NextShardIterator": "i",
        },
        ("dynamodb", "BatchGetItem"): {"Responses": {"t": [every_type]}, "UnprocessedKeys": {}},
        ("dynamodb", "TransactWriteItems"): {"ConsumedCapacity": [], "ItemCollectionMetrics": {}},
    }
    expected = {name: _serialize(*name, result) for name, result in results.items()}
    assert "Unknown" not in json.dumps(list(expected.values()))
    monkeypatch.setattr(
        BaseJSONSerializer, "_serialize_type_structure", BaseJSONSerializer._serialize_type_structure
    )
    moto_launcher.serialize_attribute_values_directly()
    assert getattr(BaseJSONSerializer._serialize_type_structure, "direct_attribute_values", False)
    for name, result in results.items():
        assert _serialize(*name, result) == expected[name], name
    # a response transformer may change any value: such responses take moto's own path
    transformers = {"S": lambda value: value.upper() if isinstance(value, str) else value}
    transformed = _serialize("dynamodb", "BatchGetItem", results[("dynamodb", "BatchGetItem")], transformers)
    assert transformed["Responses"]["t"][0]["s"] == {"S": "TEXT"}


def test_handler_methods_are_listed_once_with_the_same_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)  # restored
    classes = (DynamoHandler, DynamoDBStreamsHandler)
    expected = {clazz: utils.method_names_from_class(clazz) for clazz in classes}
    moto_launcher.list_handler_methods_once()
    assert {clazz: responses.method_names_from_class(clazz) for clazz in classes} == expected
    assert "put_item" in expected[DynamoHandler] and "get_records" in expected[DynamoDBStreamsHandler]

    def no_listing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a handler class listed again")

    monkeypatch.setattr(inspect, "getmembers", no_listing)
    assert {clazz: responses.method_names_from_class(clazz) for clazz in classes} == expected


def test_condition_expressions_are_cut_once_into_the_same_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    monkeypatch.setattr(
        ConditionExpressionParser,
        "_lex_condition_expression",
        ConditionExpressionParser._lex_condition_expression,
    )  # restored
    expressions = [
        "attribute_not_exists(#v) OR #v < :v",
        "(#a = :a AND #b <> :b) OR NOT (size(#c) >= :c)",
        "#n BETWEEN :lo AND :hi",
        "#s IN (:x, :y, :z)",
        "begins_with(#p.#q[1], :prefix)",
        "  #a   =   :a  ",
        "",
    ]
    names = {f"#{c}": c for c in "abcnpqsv"}
    values = {f":{v}": {"N": "1"} for v in ("a", "b", "c", "v", "lo", "hi", "x", "y", "z")}
    values[":prefix"] = {"S": "p"}

    def parsed(expression: str) -> tuple[list[Any], list[str], list[str]]:
        parser = ConditionExpressionParser(expression, names, values)
        lexed = list(parser._lex_condition_expression())
        parser = ConditionExpressionParser(expression, names, values)
        parser.parse()
        return lexed, parser.expr_attr_names_found, parser.expr_attr_values_found

    expected = {expression: parsed(expression) for expression in expressions}
    with pytest.raises(ValueError) as unpatched:
        parsed("#a = :a ; DROP")
    moto_launcher.lex_condition_expressions_once()
    assert getattr(ConditionExpressionParser._lex_condition_expression, "lexed_once", False)
    for _ in range(2):  # cut, then from the cache
        for expression in expressions:
            assert parsed(expression) == expected[expression], expression
        with pytest.raises(ValueError) as patched:
            parsed("#a = :a ; DROP")
        assert str(patched.value) == str(unpatched.value)
    # each parse gets its own tokens: one consumed or changed leaves the next untouched
    parser = ConditionExpressionParser(expressions[0], names, values)
    first = parser._lex_condition_expression()
    first[0].children.append("changed")
    first.clear()
    assert list(parser._lex_condition_expression()) == expected[expressions[0]][0]
