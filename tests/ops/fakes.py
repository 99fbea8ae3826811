"""A two-sided deployment in moto shaped like the Terraform roots' outputs, and a stand-in for the
replicators (the real engine code reading the real inbox streams) for the credentials probes."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from replication.applying import Replicator
from replication.settings import (
    KeyAttribute,
    KeySchema,
    ReplicatorSettings,
    ServedTable,
    SideSettings,
    TableSettings,
    VersionAttributes,
)
from replication.table_writer import TableWriter
from replication_ops.lambda_events import kinesis_event_record
from tests.table_map import put_table_map

NAMES = VersionAttributes()
KEY_SCHEMA = KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "S"))  # the table create() makes
TABLE = "profiles"
LOGICAL = "profiles"  # the table's logical name in both table maps
TOMBSTONES = "profiles-tombstones"
REGIONS = {"cn": "cn-north-1", "us": "us-east-1"}
PARTITIONS = {"cn": "aws-cn", "us": "aws"}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@dataclass
class FakeSide:
    label: str
    peer: str
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return REGIONS[self.label]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)

    def create(self, *, with_functions: bool = True) -> None:
        db = self.client("dynamodb")
        created = db.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        db.create_table(
            TableName=TOMBSTONES,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        kinesis = self.client("kinesis")
        inbox = f"ddbrep-{self.label}-inbox"
        kinesis.create_stream(StreamName=inbox, ShardCount=1)
        inbox_arn = kinesis.describe_stream_summary(StreamName=inbox)["StreamDescriptionSummary"]["StreamARN"]
        iam = self.client("iam")
        user = iam.create_user(UserName=f"ddbrep-{self.label}-peer-writer")["User"]
        secret = self.client("secretsmanager").create_secret(Name=f"ddbrep-{self.label}-peer-credentials")
        queue = self.client("sqs").create_queue(QueueName=f"ddbrep-{self.label}-failures")["QueueUrl"]
        self.outputs = {
            "region": self.region,
            "partition": PARTITIONS[self.label],
            "inbox_stream_name": inbox,
            "inbox_stream_arn": inbox_arn,
            "table_names": {LOGICAL: TABLE},
            "table_arns": {LOGICAL: created["TableDescription"]["TableArn"]},
            "table_stream_arns": {LOGICAL: created["TableDescription"]["LatestStreamArn"]},
            "peer_table_names": {LOGICAL: TABLE},
            "tombstone_table_name": TOMBSTONES,
            "peer_writer_user_name": user["UserName"],
            "peer_writer_user_arn": user["Arn"],
            "peer_credentials_secret_name": f"ddbrep-{self.label}-peer-credentials",
            "peer_credentials_secret_arn": secret["ARN"],
            "nat_public_ips": [],
            "forwarder_function_name": f"ddbrep-{self.label}-forwarder",
            "replicator_function_name": f"ddbrep-{self.label}-replicator",
            "failure_queue_url": queue,
            "failure_queue_arn": self.client("sqs").get_queue_attributes(
                QueueUrl=queue, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"],
            "dashboard_name": None,
        }
        if with_functions:
            self._functions()

    def _functions(self) -> None:
        role = self.client("iam").create_role(
            RoleName=f"ddbrep-{self.label}-lambda",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        common = {
            # The table map as the module deploys it (modules/replication_endpoint/parameters.tf).
            **put_table_map(self.client("ssm"), {LOGICAL: self.table_entry()}, self.tables_path),
            "TOMBSTONE_TABLE_NAME": TOMBSTONES,
            "LOCAL_REGION": self.region,
            "POWERTOOLS_METRICS_NAMESPACE": "DynamoDBReplication",
        }
        peer_region = REGIONS[self.peer]
        environments = {
            "forwarder": {
                **common,
                "PEER_REGION": peer_region,
                "PEER_STREAM_NAME": f"ddbrep-{self.peer}-inbox",
                "PEER_SECRET_ID": self.outputs["peer_credentials_secret_arn"],
                "SECRET_MAX_AGE_SECONDS": "300",
                "FAILURE_QUEUE_URL": self.outputs["failure_queue_url"],
            },
            "replicator": {
                **common,
                "FAILURE_QUEUE_URL": self.outputs["failure_queue_url"],
            },
        }
        lam = self.client("lambda")
        for kind, variables in environments.items():
            lam.create_function(
                FunctionName=f"ddbrep-{self.label}-{kind}",
                Runtime="python3.12",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": _zip()},
                Environment={"Variables": variables},
            )

    @property
    def tables_path(self) -> str:
        return f"/ddb-replication/ddbrep-{self.label}/tables"

    def table_entry(self, residency: dict[str, Any] | None = None) -> dict[str, Any]:
        """The one table's entry in the table map, as the module writes it."""
        return {
            "table_name": TABLE,
            "table_arn": self.outputs["table_arns"][LOGICAL],
            "peer_table_name": TABLE,
            "replicate_ttl_deletes": False,
            "key_schema": [
                {"AttributeName": a.name, "KeyType": kind, "AttributeType": a.type}
                for a, kind in zip(KEY_SCHEMA.attributes, ("HASH", "RANGE"), strict=True)
            ],
            "residency": residency,
        }

    def set_residency(self, rules: dict[str, Any] | None) -> None:
        """Deploy ``rules`` as this side's TABLES[profiles].residency as the module does: the table's
        parameter, and the new digest in both functions' TABLES_SHA256."""
        variables = put_table_map(self.client("ssm"), {LOGICAL: self.table_entry(rules)}, self.tables_path)
        lam = self.client("lambda")
        for kind in ("forwarder", "replicator"):
            name = self.outputs[f"{kind}_function_name"]
            environment = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
            lam.update_function_configuration(
                FunctionName=name, Environment={"Variables": {**environment, **variables}}
            )

    def write_outputs(self, directory: Path) -> Path:
        path = directory / f"{self.label}.json"
        document = {
            name: {"sensitive": False, "type": "string", "value": value}
            for name, value in self.outputs.items()
        }
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    # -- data ------------------------------------------------------------------------------------

    def put(
        self,
        pk: str,
        sk: str = "profile",
        ts: str | None = "100",
        origin: str | None = None,
        **attributes: str,
    ) -> None:
        item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sk}}
        item.update({name: {"S": value} for name, value in attributes.items()})
        if ts is not None:
            item[NAMES.timestamp] = {"N": ts}
            item[NAMES.origin] = {"S": origin or self.region}
        self.client("dynamodb").put_item(TableName=TABLE, Item=item)

    def get(self, pk: str, sk: str = "profile") -> dict[str, Any] | None:
        return (
            self.client("dynamodb")
            .get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)
            .get("Item")
        )

    def count(self) -> int:
        return len(self.client("dynamodb").scan(TableName=TABLE)["Items"])

    def side_settings(self) -> SideSettings:
        return SideSettings(TOMBSTONES, self.region, NAMES, 86400)

    def table_settings(self) -> TableSettings:
        return self.side_settings().table(LOGICAL, TABLE)

    def served(self) -> ServedTable:
        return ServedTable(self.table_settings(), self.outputs["table_arns"][LOGICAL], TABLE, KEY_SCHEMA)

    def writer(self) -> TableWriter:
        return TableWriter(self.client("dynamodb"), self.table_settings())

    def secret(self) -> dict[str, str] | None:
        try:
            value = self.client("secretsmanager").get_secret_value(
                SecretId=self.outputs["peer_credentials_secret_arn"]
            )
        except self.client("secretsmanager").exceptions.ResourceNotFoundException:
            return None
        return json.loads(value["SecretString"])

    def peer_writer_keys(self) -> list[str]:
        keys = self.client("iam").list_access_keys(UserName=self.outputs["peer_writer_user_name"])
        return [k["AccessKeyId"] for k in keys["AccessKeyMetadata"]]


class InboxReplicators:
    """Runs the real Replicator on each side's inbox, as the deployed replicator would."""

    def __init__(self, sides: list[FakeSide]) -> None:
        self._sides = sides
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.probes = 0

    def __enter__(self) -> InboxReplicators:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        readers = []
        for side in self._sides:
            kinesis = side.client("kinesis")
            stream = side.outputs["inbox_stream_name"]
            shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            settings = ReplicatorSettings(
                side.side_settings(), {LOGICAL: side.served()}, side.outputs["failure_queue_url"], 2
            )
            replicator = Replicator(settings, {LOGICAL: side.writer()}, side.client("sqs"))
            readers.append([side, kinesis, shard, iterator, replicator])
        while not self._stop.wait(0.1):
            for reader in readers:
                side, kinesis, shard, iterator, replicator = reader
                response = kinesis.get_records(ShardIterator=iterator)
                reader[3] = response["NextShardIterator"]
                records = [
                    kinesis_event_record(
                        r, shard_id=shard, stream_arn=side.outputs["inbox_stream_arn"], region=side.region
                    )
                    for r in response["Records"]
                ]
                if records:
                    self.probes += replicator.process(records).probes
