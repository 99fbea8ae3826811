"""One endpoint, many tables: the table map (TABLES, one parameter per table) parsed, the logical
table on the wire, routing in both functions, one tombstone table with table-qualified rows (issue 11,
slice 1)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from replication.applying import Replicator
from replication.changes import Change
from replication.errors import ConfigurationError
from replication.forwarding import Forwarder
from replication.keys import key_digest
from replication.kinesis_sender import OutgoingRecord
from replication.routing import forward_batch
from replication.settings import ReplicatorSettings, SideSettings, parse_tables, table_arn_of_stream
from replication.table_writer import TableWriter
from replication.versions import Version
from replication.wire import KIND_CHANGES, PARTITION_KEY_BYTES, Envelope, decode, encode

from .harness import LOGICAL, NAMES, TABLE, TOMBSTONES, Side, no_sleep_backoff, served_table, tables_entry

ORDERS = "orders"  # a second logical table, with a hash-only numeric key
ORDERS_TABLE = "orders-table"
PEER = "cn-north-1"
TS = "1764200000.25"
KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}


def side_settings() -> SideSettings:
    return SideSettings(TOMBSTONES, "us-east-1", NAMES, 86400)


def tables_env(**entries: dict[str, Any]) -> dict[str, str]:
    """The table map's parameter values: logical name -> entry as JSON."""
    return {name: json.dumps(entry) for name, entry in entries.items()}


def profiles_entry(**changes: Any) -> dict[str, Any]:
    return {**tables_entry(served_table("us-east-1")), **changes}


def orders_entry(**changes: Any) -> dict[str, Any]:
    entry = {
        "table_name": ORDERS_TABLE,
        "table_arn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{ORDERS_TABLE}",
        "peer_table_name": "orders-cn",
        "replicate_ttl_deletes": True,
        "key_schema": [{"AttributeName": "id", "KeyType": "HASH", "AttributeType": "N"}],
    }
    return {**entry, **changes}


# -- TABLES ---------------------------------------------------------------------------------------


def test_the_table_map_gives_each_logical_table_its_own_settings() -> None:
    tables = parse_tables(tables_env(profiles=profiles_entry(), orders=orders_entry()), side_settings())
    assert sorted(tables) == ["orders", "profiles"]
    orders = tables["orders"]
    assert (orders.name, orders.table.table_name, orders.peer_table_name) == (
        "orders",
        ORDERS_TABLE,
        "orders-cn",
    )
    assert orders.replicate_ttl_deletes and not tables["profiles"].replicate_ttl_deletes
    assert orders.key_schema.describe() == "id (N)"
    assert tables["profiles"].key_schema.describe() == "pk (S), sk (S)"
    assert orders.table.tombstone_table_name == tables["profiles"].table.tombstone_table_name == TOMBSTONES


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "at least one table"),
        ({"profiles": "[]"}, r"TABLES\['profiles'\] must be an object"),
        ({"profiles": "{not json"}, r"TABLES\['profiles'\] must be a JSON object"),
        (tables_env(**{"pro files": profiles_entry()}), "must be 1 to 64 of"),
        (tables_env(**{"a/b": profiles_entry()}), "must be 1 to 64 of"),
        (
            tables_env(profiles=profiles_entry(residency={"export_filter": "residency =="})),
            r"TABLES\['profiles'\].residency.export_filter is not a JMESPath expression",
        ),
        (
            tables_env(profiles=profiles_entry(residency={"excluded_attributes": ["pk"]})),
            "cannot hold 'pk'",
        ),
        (tables_env(profiles=profiles_entry(ttl=True)), "unknown key 'ttl'"),
        (
            tables_env(profiles={k: v for k, v in profiles_entry().items() if k != "peer_table_name"}),
            "'peer_table_name' is required",
        ),
        (tables_env(profiles=profiles_entry(replicate_ttl_deletes="yes")), "must be true or false"),
        (tables_env(profiles=profiles_entry(table_name="")), "table_name must be a non-empty string"),
        (tables_env(profiles=profiles_entry(table_arn="profiles")), "must be a table's ARN"),
        (
            tables_env(profiles=profiles_entry(table_arn=profiles_entry()["table_arn"] + "/stream/x")),
            "must be a table's ARN",
        ),
        (tables_env(profiles=profiles_entry(key_schema=[])), r"TABLES\['profiles'\].key_schema must be"),
        (tables_env(profiles=profiles_entry(), orders=orders_entry(table_name=TABLE)), "the same table_name"),
        (
            tables_env(profiles=profiles_entry(), orders=orders_entry(peer_table_name=TABLE)),
            "the same peer_table_name",
        ),
    ],
)
def test_a_wrong_table_map_is_refused_at_cold_start_naming_what_is_wrong(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_tables(env, side_settings())


def test_a_stream_arn_names_its_table() -> None:
    # DynamoDB Streams API reference, DescribeStream example.
    stream = "arn:aws:dynamodb:us-west-2:111122223333:table/Forum/stream/2015-05-20T20:51:10.252"
    assert table_arn_of_stream(stream) == "arn:aws:dynamodb:us-west-2:111122223333:table/Forum"


# -- the wire ---------------------------------------------------------------------------------------


def test_the_logical_table_round_trips_and_an_older_record_has_none() -> None:
    change = upsert(KEY)
    named = Envelope(KIND_CHANGES, PEER, TABLE, NAMES, 1, (change,), name="profiles")
    assert decode(encode(named)).name == "profiles"
    assert decode(encode(replace(named, name=None))).name is None


# -- the replicator ---------------------------------------------------------------------------------


def upsert(item_key: dict[str, Any], ts: str = TS, **attributes: Any) -> Change:
    item = {**item_key, **attributes, NAMES.timestamp: {"N": ts}, NAMES.origin: {"S": PEER}}
    return Change(item_key, Version(Decimal(ts), PEER), item)


def delete(item_key: dict[str, Any], ts: str = TS) -> Change:
    return Change(item_key, Version(Decimal(ts), PEER, True))


def record(name: str | None, sender_table: str, *changes: Change) -> OutgoingRecord:
    envelope = Envelope(KIND_CHANGES, PEER, sender_table, NAMES, 1764200000000, changes, name=name)
    return OutgoingRecord(encode(envelope), "0" * PARTITION_KEY_BYTES)


def two_table_side() -> Side:
    """The us side serving ``profiles`` (the harness's table) and a second logical table, ``orders``,
    whose local table has the same key schema and whose peer table is ``orders-cn``."""
    side = Side("us-east-1", PEER)
    side.db.create_table(
        TableName=ORDERS_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    orders = served_table("us-east-1", name=ORDERS, table=ORDERS_TABLE, peer_table="orders-cn")
    side.orders = orders  # type: ignore[attr-defined]
    tables = {LOGICAL: side.served, ORDERS: orders}
    writers = {
        LOGICAL: side.writer,
        ORDERS: TableWriter(side.db, orders.table, backoff_factory=no_sleep_backoff),
    }
    side.replicator = Replicator(
        ReplicatorSettings(side_settings(), tables, side.queue_url, 4), writers, side.sqs
    )
    return side


def orders_item(side: Side, item_key: dict[str, Any]) -> dict[str, Any] | None:
    return side.db.get_item(TableName=ORDERS_TABLE, Key=item_key, ConsistentRead=True).get("Item")


def failure_messages(side: Side) -> list[dict[str, Any]]:
    messages = side.sqs.receive_message(QueueUrl=side.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_each_change_goes_to_the_local_table_of_its_logical_table(aws: None) -> None:
    side = two_table_side()
    report = side.replicate(
        [
            record(LOGICAL, TABLE, upsert(KEY, city={"S": "Beijing"})),
            record(ORDERS, "orders-cn", upsert(KEY, total={"N": "7"})),
        ]
    )["report"]
    assert side.get(KEY)["city"] == {"S": "Beijing"} and "total" not in side.get(KEY)
    assert orders_item(side, KEY)["total"] == {"N": "7"}
    assert {name: tally.outcomes.total() for name, tally in report.tables.items()} == {LOGICAL: 1, ORDERS: 1}


def test_a_record_for_a_table_this_side_does_not_serve_goes_to_the_failure_queue_and_the_rest_is_applied(
    aws: None,
) -> None:
    side = two_table_side()
    report = side.replicate(
        [record("invoices", "invoices-cn", upsert(KEY)), record(LOGICAL, TABLE, upsert(KEY, city={"S": "x"}))]
    )["report"]
    assert (report.poison, report.failed) == (1, set())
    (message,) = failure_messages(side)
    assert "'invoices', which this replicator does not serve" in message["reason"]
    assert side.get(KEY)["city"] == {"S": "x"}


def test_a_record_naming_a_served_table_but_another_sender_table_is_refused(aws: None) -> None:
    side = two_table_side()
    report = side.replicate([record(ORDERS, TABLE, upsert(KEY))])["report"]
    assert report.poison == 1 and orders_item(side, KEY) is None
    (message,) = failure_messages(side)
    assert "from sender table 'profiles', expected 'orders-cn'" in message["reason"]


def test_a_record_from_a_forwarder_older_than_the_table_map_is_routed_by_its_sender_table(aws: None) -> None:
    side = two_table_side()
    side.replicate([record(None, "orders-cn", upsert(KEY, total={"N": "1"}))])
    assert orders_item(side, KEY)["total"] == {"N": "1"}
    side.replicate([record(None, "unknown-cn", upsert(KEY))])
    (message,) = failure_messages(side)
    assert "no served table's peer table" in message["reason"]


def test_tombstones_of_one_table_never_touch_another_table_with_the_same_key(aws: None) -> None:
    side = two_table_side()
    side.replicate([record(LOGICAL, TABLE, delete(KEY, ts="1764200000.9"))])
    side.replicate([record(ORDERS, "orders-cn", upsert(KEY, ts="1764200000.1", total={"N": "1"}))])
    assert orders_item(side, KEY) is not None  # an older upsert: only profiles' delete is newer
    side.replicate([record(LOGICAL, TABLE, upsert(KEY, ts="1764200000.1"))])
    assert side.get(KEY) is None  # in profiles, the delete wins
    rows = side.db.scan(TableName=TOMBSTONES)["Items"]
    assert [row["k"]["S"] for row in rows] == [f"{LOGICAL}/{key_digest(KEY)}"]


# -- the forwarder ------------------------------------------------------------------------------------


def test_a_forwarder_batch_is_forwarded_per_table_with_each_record_naming_its_logical_table(
    aws: None,
) -> None:
    china = Side("cn-north-1", "us-east-1")
    china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000.5")
    records = china.pending()
    other = json.loads(json.dumps(records[0]))
    other["eventSourceARN"] = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders-cn/stream/x"
    orders = served_table("cn-north-1", name=ORDERS, table="orders-cn", peer_table=ORDERS_TABLE)
    settings = replace(china.forwarder_settings, tables={LOGICAL: china.served, ORDERS: orders})
    forwarders = {
        LOGICAL: china.forwarder,
        ORDERS: Forwarder(settings, china.writer, china.sender, table=orders, sqs=china.sqs),  # type: ignore[arg-type]
    }
    batch = forward_batch(settings, forwarders, [*records, other])
    assert batch.first_failure is None
    assert [(run.name, run.start, run.stop) for run in batch.runs] == [(LOGICAL, 0, 1), (ORDERS, 1, 2)]
    sent = [decode(outgoing.data) for outgoing in china.sender.outbox]
    assert [(envelope.name, envelope.table) for envelope in sent] == [(LOGICAL, TABLE), (ORDERS, "orders-cn")]


def test_a_stream_record_of_a_stream_no_table_has_is_retried_as_a_configuration_error(aws: None) -> None:
    china = Side("cn-north-1", "us-east-1")
    china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000.5")
    china.put({**KEY, "pk": {"S": "user#2"}}, {"city": {"S": "Xi'an"}}, "1764200000.6")
    records = [json.loads(json.dumps(r)) for r in china.pending()]
    records[1]["eventSourceARN"] = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/unknown/stream/x"
    batch = forward_batch(china.forwarder_settings, {LOGICAL: china.forwarder}, records)
    assert (batch.first_failure, batch.unknown_streams) == (1, 1)
    assert [len(decode(o.data).changes) for o in china.sender.outbox] == [1]
