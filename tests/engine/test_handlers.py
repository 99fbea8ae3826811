"""Both Lambda handlers as Lambda runs them: real event shapes, moto for every AWS call."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from replication.changes import Change
from replication.telemetry import SERVICE
from replication.typed_values import to_client
from replication.wire import KIND_PROBE, Envelope, decode, encode
from tests.table_map import put_table_map

from .events import kinesis_event_record, stream_event_record, ttl_delete_record
from .harness import LOGICAL, NAMES, TABLE, TOMBSTONES, Side, create_tables, served_table, tables_entry
from .lambda_context import FakeLambdaContext
from .test_record_limits import items_at_the_limit

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
SECRET = "replication/peer-credentials"


def load_app(function: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(f"functions/{function}")
    sys.modules.pop("app", None)
    return importlib.import_module("app")


def emitted_metrics(output: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[definition["Name"]]
                found[definition["Name"]] = max(value) if isinstance(value, list) else value
    return found


@pytest.fixture
def china_table(aws: None) -> Iterator[str]:
    db = boto3.client("dynamodb", region_name="cn-north-1")
    yield create_tables(db)


def china_tables(stream_arn: str, replicate_ttl_deletes: bool = False) -> dict[str, Any]:
    """The China side's table map: its one table, whose stream is ``stream_arn``."""
    entry = tables_entry(served_table("cn-north-1", replicate_ttl_deletes=replicate_ttl_deletes))
    return {LOGICAL: {**entry, "table_arn": stream_arn.partition("/stream/")[0]}}


def deployed(region: str, tables: dict[str, Any]) -> dict[str, str]:
    """``tables`` deployed in ``region``'s Parameter Store as the module does; the functions' two
    variables that find it."""
    return put_table_map(boto3.client("ssm", region_name=region), tables)


@pytest.fixture
def peer_inbox(aws: None) -> Any:
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="inbox", ShardCount=1)
    return kinesis


@pytest.fixture
def forwarder(monkeypatch: pytest.MonkeyPatch, china_table: str, peer_inbox: Any) -> ModuleType:
    return load_app(
        "forwarder",
        monkeypatch,
        {
            "AWS_REGION": "cn-north-1",
            "AWS_DEFAULT_REGION": "cn-north-1",
            **deployed("cn-north-1", china_tables(china_table)),
            "TOMBSTONE_TABLE_NAME": TOMBSTONES,
            "PEER_REGION": "us-east-1",
            "PEER_STREAM_NAME": "inbox",
            "PEER_SECRET_ID": SECRET,
        },
    )


def put_secret(value: str) -> None:
    boto3.client("secretsmanager", region_name="cn-north-1").create_secret(Name=SECRET, SecretString=value)


def stream_records(region: str, stream_arn: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name=region)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    response = streams.get_records(ShardIterator=iterator["ShardIterator"])
    return [stream_event_record(r, stream_arn, region) for r in response["Records"]]


def inbox_contents(kinesis: Any) -> list[bytes]:
    shard = kinesis.list_shards(StreamName="inbox")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="inbox", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def write_profiles(count: int) -> None:
    db = boto3.client("dynamodb", region_name="cn-north-1")
    for i in range(count):
        db.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"user#{i}"},
                "sk": {"S": "profile"},
                "city": {"S": "Beijing"},
                NAMES.timestamp: {"N": f"1764200000.{i:06d}"},
                NAMES.origin: {"S": "cn-north-1"},
            },
        )


def test_forwarder_sends_a_stream_batch_as_one_record_to_the_peer_inbox(
    forwarder: ModuleType, china_table: str, peer_inbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    write_profiles(20)
    event = {"Records": stream_records("cn-north-1", china_table)}

    response = forwarder.handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    sent = inbox_contents(peer_inbox)
    assert len(sent) == 1
    assert len(decode(sent[0]).changes) == 20
    assert emitted_metrics(capsys.readouterr().out)["ChangesForwarded"] == 20.0


def test_forwarder_delivers_items_whose_record_would_reach_the_limit_only_with_its_partition_key(
    forwarder: ModuleType, china_table: str, peer_inbox: Any
) -> None:
    # moto, like Kinesis, refuses a record whose data and partition key exceed 1 MiB together.
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    db = boto3.client("dynamodb", region_name="cn-north-1")
    for change in items_at_the_limit():
        db.put_item(TableName=TABLE, Item=to_client(change.item))
    records = stream_records("cn-north-1", china_table)

    response = forwarder.handler({"Records": records}, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    sent = inbox_contents(peer_inbox)
    assert sum(len(decode(data).changes) for data in sent) == 3


def test_forwarder_without_peer_credentials_fails_the_batch_from_its_first_record(
    forwarder: ModuleType,
    china_table: str,
    peer_inbox: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_profiles(3)
    records = stream_records("cn-north-1", china_table)

    response = forwarder.handler({"Records": records}, FakeLambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    assert "ddb-replication credentials" in caplog.text
    assert inbox_contents(peer_inbox) == []
    assert emitted_metrics(capsys.readouterr().out)["ConfigurationErrors"] == 1.0


def test_forwarder_with_a_malformed_secret_says_what_it_must_hold(
    forwarder: ModuleType, china_table: str, peer_inbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    put_secret(json.dumps({"key": "value"}))
    write_profiles(1)
    response = forwarder.handler({"Records": stream_records("cn-north-1", china_table)}, FakeLambdaContext())
    assert len(response["batchItemFailures"]) == 1
    assert "aws_secret_access_key" in caplog.text


def test_forwarder_skips_ttl_expiries_by_default(forwarder: ModuleType, peer_inbox: Any) -> None:
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    old = {**KEY, NAMES.timestamp: {"N": "1"}, NAMES.origin: {"S": "cn-north-1"}}
    response = forwarder.handler({"Records": [ttl_delete_record(KEY, old, "100")]}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert inbox_contents(peer_inbox) == []


def test_forwarder_replicates_ttl_expiries_when_asked(
    monkeypatch: pytest.MonkeyPatch, china_table: str, peer_inbox: Any
) -> None:
    app = load_app(
        "forwarder",
        monkeypatch,
        {
            "AWS_REGION": "cn-north-1",
            **deployed("cn-north-1", china_tables(china_table, replicate_ttl_deletes=True)),
            "TOMBSTONE_TABLE_NAME": TOMBSTONES,
            "PEER_REGION": "us-east-1",
            "PEER_STREAM_NAME": "inbox",
            "PEER_SECRET_ID": SECRET,
        },
    )
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    old = {**KEY, NAMES.timestamp: {"N": "1"}, NAMES.origin: {"S": "cn-north-1"}}
    app.handler({"Records": [ttl_delete_record(KEY, old, "100")]}, FakeLambdaContext())
    (sent,) = inbox_contents(peer_inbox)
    assert decode(sent).changes[0].is_delete


def test_forwarder_refuses_to_start_without_its_settings(monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    from replication.errors import ConfigurationError

    monkeypatch.delenv("PEER_STREAM_NAME", raising=False)
    with pytest.raises(ConfigurationError, match="PEER_STREAM_NAME"):
        load_app(
            "forwarder",
            monkeypatch,
            {
                "AWS_REGION": "cn-north-1",
                **deployed("cn-north-1", {LOGICAL: tables_entry(served_table("cn-north-1"))}),
                "TOMBSTONE_TABLE_NAME": "x",
                "PEER_REGION": "us-east-1",
                "PEER_SECRET_ID": "s",
            },
        )


def test_a_forwarder_whose_table_map_changed_does_not_start_and_its_next_start_reads_the_map_again(
    monkeypatch: pytest.MonkeyPatch, china_table: str, peer_inbox: Any
) -> None:
    # The table map is read in the Init phase: an error there fails the invocation (the batch is
    # retried) and Lambda runs Init again for the next one (Lambda developer guide, "Understanding the
    # Lambda execution environment lifecycle", failures during the Init phase): nothing is kept.
    from replication.errors import ConfigurationError

    variables = deployed("cn-north-1", china_tables(china_table))
    environment = {
        "AWS_REGION": "cn-north-1",
        **variables,
        "TOMBSTONE_TABLE_NAME": TOMBSTONES,
        "PEER_REGION": "us-east-1",
        "PEER_STREAM_NAME": "inbox",
        "PEER_SECRET_ID": SECRET,
    }
    changed = deployed("cn-north-1", china_tables(china_table, replicate_ttl_deletes=True))
    assert changed["TABLES_SHA256"] != variables["TABLES_SHA256"]
    with pytest.raises(ConfigurationError, match="not the map this function was deployed with"):
        load_app("forwarder", monkeypatch, environment)

    deployed("cn-north-1", china_tables(china_table))  # the deployment finishes: the map is its own again
    app = load_app("forwarder", monkeypatch, environment)

    assert not app.settings.tables[LOGICAL].replicate_ttl_deletes


# -- replicator ---------------------------------------------------------------------------------


@pytest.fixture
def replicator(monkeypatch: pytest.MonkeyPatch, aws: None) -> tuple[ModuleType, Side]:
    side = Side("us-east-1", "cn-north-1")
    app = load_app(
        "replicator",
        monkeypatch,
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **deployed("us-east-1", {LOGICAL: tables_entry(served_table("us-east-1"))}),
            "TOMBSTONE_TABLE_NAME": TOMBSTONES,
            "FAILURE_QUEUE_URL": side.queue_url,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        },
    )
    return app, side


def changes_from_china() -> list[dict[str, Any]]:
    china = Side("cn-north-1", "us-east-1")
    china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000.5")
    china.forward()
    return [
        kinesis_event_record(r, "arn:aws:kinesis:us-east-1:1:stream/inbox", "us-east-1")
        for r in china.sender.outbox
    ]


def test_replicator_applies_the_peer_changes(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    app, side = replicator
    response = app.handler({"Records": changes_from_china()}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert side.get(KEY)["city"] == {"S": "Beijing"}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["ChangesApplied"] == 1.0
    assert metrics["ReplicationLatency"] >= 0


def metric_dimensions(output: str) -> dict[str, list[dict[str, str]]]:
    """Metric name -> the dimensions of every EMF document that carries it."""
    found: dict[str, list[dict[str, str]]] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            directive = document["_aws"]["CloudWatchMetrics"][0]
            dimensions = {name: document[name] for names in directive["Dimensions"] for name in names}
            for definition in directive["Metrics"]:
                found.setdefault(definition["Name"], []).append(dimensions)
    return found


def test_the_replicator_counts_each_table_under_its_logical_name(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    app, _ = replicator
    app.handler({"Records": changes_from_china()}, FakeLambdaContext())
    found = metric_dimensions(capsys.readouterr().out)
    for name in ("ChangesReceived", "ChangesApplied", "ReplicationLatency", "ChangesRefused"):
        assert [d.get("table") for d in found[name]] == [LOGICAL], name
    # Records of no table, and the totals the endpoint's alarms watch, carry the service alone.
    assert [d.get("table") for d in found["PoisonMessages"]] == [None]
    assert sorted(str(d.get("table")) for d in found["ConfigurationErrors"]) == ["None", LOGICAL]


def test_the_replicator_emits_each_stage_of_the_lag_per_table(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    """Stream to forwarder, forwarder to inbox, inbox to apply (replication.lag), milliseconds."""
    app, _ = replicator
    app.handler({"Records": changes_from_china()}, FakeLambdaContext())
    output = capsys.readouterr().out
    found = metric_dimensions(output)
    for name in ("StreamToForwarderLatency", "ForwarderToInboxLatency", "InboxToApplyLatency"):
        assert [d.get("table") for d in found[name]] == [LOGICAL], name
        assert emitted_metrics(output)[name] >= 0


def test_the_forwarder_counts_each_table_under_its_logical_name(
    forwarder: ModuleType, china_table: str, peer_inbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    write_profiles(2)
    forwarder.handler({"Records": stream_records("cn-north-1", china_table)}, FakeLambdaContext())
    found = metric_dimensions(capsys.readouterr().out)
    for name in ("ChangesForwarded", "ChangesStamped", "RecordsSent", "ChangesRefused"):
        assert [d.get("table") for d in found[name]] == [LOGICAL], name
    assert sorted(str(d.get("table")) for d in found["ConfigurationErrors"]) == ["None", LOGICAL]


def conflict_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [vars(record) for record in caplog.records if record.getMessage() == "conflict resolved"]


def test_the_replicator_counts_a_conflict_per_table_and_kind_and_logs_it_without_the_key(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    app, side = replicator
    side.put(KEY, {"city": {"S": "New York"}}, "1764200010")  # newer than China's change below
    with caplog.at_level(logging.INFO, logger=SERVICE):
        app.handler({"Records": changes_from_china()}, FakeLambdaContext())
    found = metric_dimensions(capsys.readouterr().out)
    assert [(d.get("table"), d.get("kind")) for d in found["Conflicts"]] == [(LOGICAL, "stale-dropped")]
    (line,) = conflict_lines(caplog)
    assert (line["winner"]["timestamp"], line["loser"]["timestamp"]) == ("1764200010", "1764200000.5")
    assert "key" not in line


def test_the_forwarder_counts_a_stamp_per_table_and_kind_and_logs_it(
    forwarder: ModuleType,
    china_table: str,
    peer_inbox: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    db = boto3.client("dynamodb", region_name="cn-north-1")
    db.put_item(TableName=TABLE, Item={**KEY, "city": {"S": "Beijing"}})  # no version attributes
    with caplog.at_level(logging.INFO, logger=SERVICE):
        forwarder.handler({"Records": stream_records("cn-north-1", china_table)}, FakeLambdaContext())
    found = metric_dimensions(capsys.readouterr().out)
    assert [(d.get("table"), d.get("kind")) for d in found["Conflicts"]] == [(LOGICAL, "stamped")]
    (line,) = conflict_lines(caplog)
    assert (line["reason"], line["loser"], line["winner"]["origin"]) == ("absent", None, "cn-north-1")


def test_the_replicator_logs_a_conflicts_key_when_its_environment_says_so(
    monkeypatch: pytest.MonkeyPatch, replicator: tuple[ModuleType, Side], caplog: pytest.LogCaptureFixture
) -> None:
    _, side = replicator
    monkeypatch.setenv("CONFLICT_LOG_KEYS", "true")  # the module's conflict_log_keys
    app = load_app("replicator", monkeypatch, {})
    side.put(KEY, {"city": {"S": "New York"}}, "1764200010")
    with caplog.at_level(logging.INFO, logger=SERVICE):
        app.handler({"Records": changes_from_china()}, FakeLambdaContext())
    (line,) = conflict_lines(caplog)
    assert line["key"] == KEY


def test_replicator_routes_a_poison_message_to_the_failure_queue_and_keeps_going(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    app, side = replicator
    good = changes_from_china()
    poison = json.loads(json.dumps(good[0]))
    poison["kinesis"]["data"] = base64.b64encode(b"DR\x01\x01garbage").decode()
    poison["kinesis"]["sequenceNumber"] = "1"

    response = app.handler({"Records": [poison, *good]}, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    assert side.get(KEY) is not None
    messages = side.sqs.receive_message(QueueUrl=side.queue_url)["Messages"]
    body = json.loads(messages[0]["Body"])
    assert (body["kind"], body["sequenceNumber"]) == ("poison", "1")
    output = capsys.readouterr().out
    assert emitted_metrics(output)["PoisonMessages"] == 1.0
    assert "garbage" not in output


def test_replicator_refuses_messages_for_another_table(
    replicator: tuple[ModuleType, Side],
) -> None:
    app, side = replicator
    record = changes_from_china()[0]
    changes = decode(base64.b64decode(record["kinesis"]["data"])).changes
    wrong = Envelope("changes", "cn-north-1", "orders", NAMES, 1, changes)
    record["kinesis"]["data"] = base64.b64encode(encode(wrong)).decode()
    app.handler({"Records": [record]}, FakeLambdaContext())
    body = json.loads(side.sqs.receive_message(QueueUrl=side.queue_url)["Messages"][0]["Body"])
    assert "orders" in body["reason"]


def test_replicator_records_a_credentials_probe(replicator: tuple[ModuleType, Side]) -> None:
    app, side = replicator
    probe = Envelope(KIND_PROBE, "cn-north-1", TABLE, NAMES, 1, probe_id="probe-123")
    record = changes_from_china()[0]
    record["kinesis"]["data"] = base64.b64encode(encode(probe)).decode()
    app.handler({"Records": [record]}, FakeLambdaContext())
    receipt = side.db.get_item(TableName=TOMBSTONES, Key={"k": {"S": "probe#probe-123"}})
    assert receipt["Item"]["o"] == {"S": "cn-north-1"}


def test_replicator_reports_the_records_it_could_not_apply(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    app, side = replicator
    records = changes_from_china()
    side.db.delete_table(TableName=TABLE)  # every write now fails
    response = app.handler({"Records": records}, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": records[0]["kinesis"]["sequenceNumber"]}]}
    assert emitted_metrics(capsys.readouterr().out)["ConfigurationErrors"] == 1.0


def test_forwarder_counts_the_writes_it_stamps_by_why_they_needed_a_stamp(
    forwarder: ModuleType, china_table: str, peer_inbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    db = boto3.client("dynamodb", region_name="cn-north-1")
    now = int(time.time())
    writes = {
        "malformed": {NAMES.timestamp: {"S": str(now)}, NAMES.origin: {"S": "cn-north-1"}},
        "milliseconds": {NAMES.timestamp: {"N": str(now * 1000)}, NAMES.origin: {"S": "cn-north-1"}},
        "reserved": {
            NAMES.timestamp: {"N": str(now)},
            NAMES.origin: {"S": "cn-north-1"},
            "_ddbrep_deleting": {"S": f"{now} us-east-1"},
        },
    }
    for name, version in writes.items():
        db.put_item(TableName=TABLE, Item={"pk": {"S": name}, "sk": {"S": "profile"}, **version})

    forwarder.handler({"Records": stream_records("cn-north-1", china_table)}, FakeLambdaContext())

    found = emitted_metrics(capsys.readouterr().out)
    assert {name: found[name] for name in ("InvalidVersionsStamped", "VersionsAheadStamped")} == {
        "InvalidVersionsStamped": 1.0,
        "VersionsAheadStamped": 1.0,
    }
    assert (found["ReservedAttributesStamped"], found["ChangesStamped"], found["ItemsTooLargeToVersion"]) == (
        1.0,
        3.0,
        0.0,
    )


def test_replicator_refuses_a_change_ahead_of_its_clock_and_counts_it(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    app, side = replicator
    china = Side("cn-north-1", "us-east-1", clock=lambda: time.time() + 3600)  # its clock an hour fast
    china.put(KEY, {"city": {"S": "Beijing"}}, str(int(time.time()) + 3000))
    china.forward()
    records = [
        kinesis_event_record(r, "arn:aws:kinesis:us-east-1:1:stream/inbox", "us-east-1")
        for r in china.sender.outbox
    ]

    response = app.handler({"Records": records}, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    assert side.get(KEY) is None
    found = emitted_metrics(capsys.readouterr().out)
    assert (found["VersionsAheadRefused"], found["ReservedAttributesRefused"], found["ChangesApplied"]) == (
        1.0,
        0.0,
        0.0,
    )
    assert found["ChangesRefused"] == 1.0


def test_replicator_counts_a_refused_change_and_acknowledges_its_record(
    replicator: tuple[ModuleType, Side], capsys: pytest.CaptureFixture[str]
) -> None:
    app, side = replicator
    record = changes_from_china()[0]
    (change,) = decode(base64.b64decode(record["kinesis"]["data"])).changes
    wrong_type = Change({"pk": {"N": "1"}, "sk": {"S": "profile"}}, change.version, None)
    refused = Envelope("changes", "cn-north-1", TABLE, NAMES, 1, (change, wrong_type))
    record["kinesis"]["data"] = base64.b64encode(encode(refused)).decode()

    response = app.handler({"Records": [record]}, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    assert side.get(KEY) is not None
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["ChangesRefused"], metrics["ChangesApplied"], metrics["PoisonMessages"]) == (
        1.0,
        1.0,
        0.0,
    )


def test_the_forwarder_applies_the_tables_residency_rules_and_counts_what_they_keep(
    monkeypatch: pytest.MonkeyPatch,
    china_table: str,
    peer_inbox: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = "CANARY-110101199003077777"
    tables = china_tables(china_table)
    tables[LOGICAL]["residency"] = {
        "export_filter": "residency == 'GLOBAL'",
        "excluded_attributes": ["national_id"],
    }
    app = load_app(
        "forwarder",
        monkeypatch,
        {
            "AWS_REGION": "cn-north-1",
            "AWS_DEFAULT_REGION": "cn-north-1",
            **deployed("cn-north-1", tables),
            "TOMBSTONE_TABLE_NAME": TOMBSTONES,
            "PEER_REGION": "us-east-1",
            "PEER_STREAM_NAME": "inbox",
            "PEER_SECRET_ID": SECRET,
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
        },
    )
    put_secret(json.dumps({"aws_access_key_id": "AKIAPEER", "aws_secret_access_key": "secret"}))
    db = boto3.client("dynamodb", region_name="cn-north-1")
    for pk, residency in (("user#1", "GLOBAL"), (f"user#{canary}", "CN-ONLY")):
        item = {**KEY, "pk": {"S": pk}, "residency": {"S": residency}, "national_id": {"S": canary}}
        item |= {NAMES.timestamp: {"N": "1764200000"}, NAMES.origin: {"S": "cn-north-1"}}
        db.put_item(TableName=TABLE, Item=item)

    with caplog.at_level(logging.DEBUG, logger=SERVICE):
        app.handler({"Records": stream_records("cn-north-1", china_table)}, FakeLambdaContext())

    (sent,) = inbox_contents(peer_inbox)
    (change,) = decode(sent).changes
    assert change.key["pk"] == {"S": "user#1"} and "national_id" not in (change.item or {})
    output = capsys.readouterr().out
    found = emitted_metrics(output)
    assert (found["ResidencyFiltered"], found["ResidencyRemovals"], found["ResidencyFilterErrors"]) == (
        1,
        0,
        0,
    )
    assert [d.get("table") for d in metric_dimensions(output)["ResidencyFiltered"]] == [LOGICAL]
    assert canary not in output
    # Every log line with its extra fields, as Powertools writes them.
    assert any(record.getMessage() == "batch forwarded" for record in caplog.records)
    assert all(canary not in json.dumps(vars(record), default=str) for record in caplog.records)
