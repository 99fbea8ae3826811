"""Two sides of a replicated pair inside moto: real tables with streams, the real forwarder and
replicator code, and a 'network' between them that the test controls (order, loss, duplicates)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3

from replication.applying import Replicator
from replication.backoff import Backoff
from replication.forwarding import Forwarder, ForwardReport
from replication.keys import canonical_key
from replication.kinesis_sender import OutgoingRecord, SendResult
from replication.residency import ResidencyRules
from replication.settings import (
    ForwarderSettings,
    KeyAttribute,
    KeySchema,
    ReplicatorSettings,
    ServedTable,
    SideSettings,
    VersionAttributes,
)
from replication.table_writer import TableWriter
from replication.typed_values import from_client

from .events import kinesis_event_record, stream_event_record


@cache
def session() -> boto3.session.Session:
    """One session for every client: it loads the service models once instead of once per client
    (most of a Pair's set-up time). Made on first use, under mock_aws: moto intercepts the clients of
    sessions created after it is imported."""
    return boto3.session.Session()


TABLE = "profiles"
LOGICAL = "profiles"  # the table's logical name in both sides' table maps
GET_RECORDS_LIMIT = 1000  # GetRecords' default and maximum Limit (DynamoDB Streams API reference)
TOMBSTONES = "profiles-tombstones"
NAMES = VersionAttributes()


def key_schema(sort_key: bool = True, key_type: str = "S") -> KeySchema:
    """The schema ``create_tables`` gives the table (pk, and sk with ``sort_key``, of ``key_type``)."""
    return KeySchema(KeyAttribute("pk", key_type), KeyAttribute("sk", key_type) if sort_key else None)


def side_settings(region: str) -> SideSettings:
    return SideSettings(TOMBSTONES, region, NAMES, 86400)


def served_table(
    region: str,
    *,
    name: str = LOGICAL,
    table: str = TABLE,
    peer_table: str = TABLE,
    schema: KeySchema | None = None,
    replicate_ttl_deletes: bool = False,
    residency: ResidencyRules | None = None,
) -> ServedTable:
    """One entry of a side's table map, as ``settings.read_tables`` makes it from ``TABLES``."""
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    rules = residency or ResidencyRules()
    return ServedTable(
        side_settings(region).table(name, table, rules.excluded_attributes),
        f"arn:{partition}:dynamodb:{region}:123456789012:table/{table}",
        peer_table,
        schema or key_schema(),
        replicate_ttl_deletes,
        rules,
    )


def tables_entry(served: ServedTable) -> dict[str, Any]:
    """The ``TABLES`` entry (JSON) of a served table."""
    return {
        "table_name": served.table.table_name,
        "table_arn": served.table_arn,
        "peer_table_name": served.peer_table_name,
        "replicate_ttl_deletes": served.replicate_ttl_deletes,
        "key_schema": [
            {"AttributeName": a.name, "KeyType": kind, "AttributeType": a.type}
            for a, kind in zip(served.key_schema.attributes, ("HASH", "RANGE"), strict=False)
        ],
    }


def no_sleep_backoff() -> Backoff:
    return Backoff(sleep=lambda _: None, max_attempts=3)


def create_tables(
    db: Any,
    *,
    table: str = TABLE,
    tombstones: str = TOMBSTONES,
    sort_key: bool = True,
    key_type: str = "S",
) -> str:
    """The application's table (key ``pk``, and ``sk`` with ``sort_key``, both of ``key_type``: S, N
    or B) with its stream, and the tombstone table. Returns the stream's ARN."""
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": key_type}]
    if sort_key:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": key_type})
    created = db.create_table(
        TableName=table,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    db.create_table(
        TableName=tombstones,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return created["TableDescription"]["LatestStreamArn"]


class CapturingSender:
    """Stands in for KinesisSender: every record 'arrives' in ``outbox`` (the peer's inbox)."""

    def __init__(self) -> None:
        self.outbox: list[OutgoingRecord] = []
        self.sent: list[OutgoingRecord] = []  # every record ever put into the peer's inbox

    def send(self, records: list[OutgoingRecord]) -> SendResult:
        self.outbox.extend(records)
        self.sent.extend(records)
        result = SendResult(delivered=set(range(len(records))))
        result.bytes_sent = sum(record.size for record in records)
        return result


@dataclass
class Side:
    region: str
    peer_region: str
    sort_key: bool = True
    key_type: str = "S"
    clock: Callable[[], float] = time.time  # the engine's clock on this side (epoch seconds)
    # Wraps the client the engine (forwarder and replicator) uses; the application's writes below
    # go to ``db`` itself. The interleaving harness records and interleaves the engine's calls here.
    engine_client: Callable[[Side, Any], Any] | None = None
    # This side's residency rules for the table (what may leave it); none by default.
    residency: ResidencyRules | None = None
    db: Any = None
    stream_arn: str = ""
    sender: CapturingSender = field(default_factory=CapturingSender)
    _iterators: dict[str, str | None] = field(default_factory=dict)
    _unread: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.db = session().client("dynamodb", region_name=self.region)
        self.streams = session().client("dynamodbstreams", region_name=self.region)
        self.sqs = session().client("sqs", region_name=self.region)
        self.stream_arn = create_tables(self.db, sort_key=self.sort_key, key_type=self.key_type)
        self.queue_url = self.sqs.create_queue(QueueName="failures")["QueueUrl"]
        self.served = served_table(
            self.region, schema=key_schema(self.sort_key, self.key_type), residency=self.residency
        )
        table = self.table = self.served.table
        engine_db = self.engine_client(self, self.db) if self.engine_client else self.db
        self.writer = TableWriter(engine_db, table, backoff_factory=no_sleep_backoff, clock=self._now)
        tables = {LOGICAL: self.served}
        self.forwarder_settings = ForwarderSettings(
            side_settings(self.region),
            tables,
            self.peer_region,
            "inbox",
            "peer-secret",
            None,
            None,
            1024 * 1024,
            300,
            self.queue_url,
        )
        self.forwarder = Forwarder(
            self.forwarder_settings,
            self.writer,
            self.sender,  # type: ignore[arg-type]
            table=self.served,
            sqs=self.sqs,
            clock=self._now,
        )
        self.replicator = Replicator(
            ReplicatorSettings(side_settings(self.region), tables, self.queue_url, 4),
            {LOGICAL: self.writer},
            self.sqs,
            clock=self._now,
        )

    def _now(self) -> float:
        return self.clock()

    # -- the application's writes ------------------------------------------------------------

    def put(self, key: dict[str, Any], attributes: dict[str, Any], ts: str | None) -> None:
        item = {**key, **attributes}
        if ts is not None:
            item[NAMES.timestamp] = {"N": ts}
            item[NAMES.origin] = {"S": self.region}
        self.db.put_item(TableName=TABLE, Item=item)

    def update_field(self, key: dict[str, Any], name: str, value: str) -> None:
        """An UpdateItem of one field that leaves the version attributes as they are."""
        self.db.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #n = :v",
            ExpressionAttributeNames={"#n": name},
            ExpressionAttributeValues={":v": {"S": value}},
        )

    def delete(self, key: dict[str, Any]) -> None:
        self.db.delete_item(TableName=TABLE, Key=key)

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self.db.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
        return from_client(item) if item else None

    def items(self) -> dict[str, dict[str, Any]]:
        rows = self.db.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return {_key_text(row): from_client(row) for row in rows}

    # -- the pipeline -------------------------------------------------------------------------

    def read_stream(self) -> None:
        if not self._iterators:
            shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                self._iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        for shard_id in list(self._iterators):
            while self._iterators[shard_id]:
                response = self.streams.get_records(ShardIterator=self._iterators[shard_id])
                self._unread.extend(
                    stream_event_record(r, self.stream_arn, self.region) for r in response["Records"]
                )
                self._iterators[shard_id] = response.get("NextShardIterator")
                if len(response["Records"]) < GET_RECORDS_LIMIT:
                    break  # moto returns everything the shard holds up to the limit: drained

    def pending(self) -> list[dict[str, Any]]:
        """The stream records (Lambda event form) the forwarder has not processed yet, in order: a
        test may set what DynamoDB Streams decides, such as ``ApproximateCreationDateTime``."""
        self.read_stream()
        return self._unread

    def forward(self, max_records: int | None = None, *, retry_once: bool = False) -> ForwardReport:
        """Run the forwarder on the next stream batch, as Lambda would (retrying from the failure)."""
        self.read_stream()
        return self._forward_unread(max_records, retry_once=retry_once)

    def _forward_unread(self, max_records: int | None, *, retry_once: bool) -> ForwardReport:
        batch = self._unread[: max_records or len(self._unread)]
        report = self.forwarder.process(batch)
        if retry_once:  # Lambda redelivers a batch it could not confirm: duplicates must be harmless
            self.forwarder.process(batch)
        done = len(batch) if report.first_failure is None else report.first_failure
        del self._unread[:done]
        return report

    def forward_all(self, rng: random.Random | None = None) -> None:
        for _ in range(10_000):
            self.read_stream()
            if not self._unread:
                return
            size = rng.randint(1, 8) if rng else None
            self._forward_unread(size, retry_once=bool(rng and rng.random() < 0.2))
        raise AssertionError("the stream never drained")

    def replicate(self, records: list[OutgoingRecord]) -> dict[str, Any]:
        event = [
            kinesis_event_record(r, f"arn:aws:kinesis:{self.region}:1:stream/inbox", self.region)
            for r in records
        ]
        report = self.replicator.process(event)
        return {"report": report, "event": event}


def _key_text(row: dict[str, Any]) -> str:
    return canonical_key(from_client({name: row[name] for name in ("pk", "sk") if name in row}))


class Pair:
    def __init__(
        self,
        *,
        sort_key: bool = True,
        key_type: str = "S",
        clock: Callable[[], float] = time.time,
        engine_client: Callable[[Side, Any], Any] | None = None,
        china_residency: ResidencyRules | None = None,
    ) -> None:
        """``china_residency``: cn-north-1's rules, what may leave it (us-east-1 has none)."""
        self.china = Side(
            "cn-north-1", "us-east-1", sort_key, key_type, clock, engine_client, residency=china_residency
        )
        self.us = Side("us-east-1", "cn-north-1", sort_key, key_type, clock, engine_client)

    def sides(self) -> tuple[Side, Side]:
        return self.china, self.us

    def peer(self, side: Side) -> Side:
        return self.us if side is self.china else self.china

    def settle(self, rng: random.Random | None = None) -> None:
        """Run both pipelines until nothing is in flight (records delivered in random order if rng)."""
        for _ in range(100):
            for side in self.sides():
                side.forward_all(rng)
            moved = False
            for side in self.sides():
                inbox = side.sender.outbox
                if inbox:
                    moved = True
                    side.sender.outbox = []
                    if rng:
                        rng.shuffle(inbox)
                        inbox = inbox + [r for r in inbox if rng.random() < 0.2]  # duplicates
                    self.peer(side).replicate(inbox)
            if not moved:
                # forward_all returns once its stream is drained, and a forwarder writes only its own
                # table: with nothing delivered, both streams stay drained.
                return
        raise AssertionError("replication did not settle")
