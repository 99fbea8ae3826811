"""The demo's residency check: the canary is found wherever it is, on the wire once decoded."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import boto3
from moto import mock_aws

from replication.changes import Change
from replication.settings import VersionAttributes
from replication.versions import Version
from replication.wire import KIND_CHANGES, Envelope, encode
from replication_ops.local.residency_check import (
    all_items,
    canary_places,
    deployed_rules,
    queue_bodies,
    records_with,
    stream_records,
)
from tests.table_map import put_table_map

CANARY = "canary-0f3c"
KEY = {"pk": {"S": "user#cn-000001"}, "sk": {"S": "profile"}}


def record(**attributes: str) -> bytes:
    """A forwarder's record (the engine's wire encoder) with one upsert of ``attributes``."""
    item = {
        **KEY,
        **{name: {"S": value} for name, value in attributes.items()},
        "last_update_timestamp": {"N": "1764200000.5"},
        "last_updater_region": {"S": "cn-north-1"},
    }
    change = Change(KEY, Version(Decimal("1764200000.5"), "cn-north-1"), item)
    return encode(
        Envelope(KIND_CHANGES, "cn-north-1", "profiles", VersionAttributes(), 0, (change,), name="profiles")
    )


def test_a_record_is_searched_decoded_since_its_body_is_compressed() -> None:
    leaking = record(national_id=f"{CANARY}-1")
    assert CANARY.encode() not in leaking  # compressed: a search of the raw bytes would miss it
    assert records_with(CANARY, [leaking, record(city="Tianjin")]) == 1
    assert records_with(CANARY, [f"not a record {CANARY}".encode()]) == 1


def test_every_place_counts_each_finding_once(tmp_path: Path) -> None:
    log = tmp_path / "lambda-us-east-1-replicator.log"
    log.write_text(f"applied\nrefused {CANARY}\n{CANARY} again\n", encoding="utf-8")
    places = canary_places(
        CANARY,
        tables=[{**KEY, "national_id": {"S": CANARY}}, {**KEY, "city": {"S": "Boston"}}],
        inbox_records=[record(restricted_note=CANARY)],
        logs=[log],
        failure_messages=[json.dumps({"reason": "poison", "key_digest": "ab12"}), f"...{CANARY}..."],
    )
    assert places == {"tables": 1, "inbox_records": 1, "function_logs": 2, "failure_queue": 1}
    clean = canary_places("canary-other", tables=[], inbox_records=[], logs=[log], failure_messages=[])
    assert sum(clean.values()) == 0


def test_a_partition_is_read_whole_tables_inbox_and_failure_queue() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        for name in ("profiles", "tombstones"):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            dynamodb.put_item(TableName=name, Item={"pk": {"S": f"{name}#{CANARY}"}})
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="inbox", ShardCount=2)
        for n in range(5):
            kinesis.put_record(StreamName="inbox", Data=record(city=str(n)), PartitionKey=str(n))
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="failures")["QueueUrl"]
        for n in range(12):
            sqs.send_message(QueueUrl=url, MessageBody=f"message {n}")
        assert len(all_items(dynamodb)) == 2
        assert len(stream_records(kinesis, "inbox")) == 5
        assert sorted(queue_bodies(sqs, url)) == sorted(f"message {n}" for n in range(12))


def entry(table: str, residency: dict | None = None) -> dict:
    """A table map entry as the module writes it (modules/replication_endpoint/parameters.tf)."""
    return {
        "table_name": table,
        "table_arn": f"arn:aws-cn:dynamodb:cn-north-1:123456789012:table/{table}",
        "peer_table_name": table,
        "replicate_ttl_deletes": False,
        "key_schema": [{"AttributeName": "pk", "KeyType": "HASH", "AttributeType": "S"}],
        "residency": residency,
    }


def test_the_rules_are_read_from_the_deployed_table_map() -> None:
    rules = {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": ["national_id"]}
    with mock_aws():
        ssm = boto3.client("ssm", region_name="cn-north-1")
        variables = put_table_map(ssm, {"profiles": entry("profiles", rules), "accounts": entry("accounts")})
        deployed = deployed_rules({**variables, "TOMBSTONE_TABLE_NAME": "tombstones"}, "cn-north-1", ssm)
    assert deployed["profiles"].restricts and not deployed["accounts"].restricts
    assert deployed["profiles"].exportable({"residency": {"S": "CN-ONLY"}}) is None
    assert deployed["profiles"].exportable({"residency": {"S": "GLOBAL"}, "national_id": {"S": "1"}}) == {
        "residency": {"S": "GLOBAL"}
    }
