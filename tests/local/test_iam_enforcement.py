"""IAM enforced in a local partition (``moto_launcher --enforce-iam``): real signed requests, allowed or
denied by the caller's policies in that partition's IAM, answered and recorded as AWS would.

Denials: "User: <arn> is not authorized to perform: <action> on resource: <arn> because no
identity-based policy allows the <action> action" (IAM user guide, troubleshoot_access-denied);
DynamoDB, Kinesis and Secrets Manager answer ``AccessDeniedException`` (HTTP 400), Kinesis
``KMSAccessDeniedException`` when the stream's key may not be used, IAM ``AccessDenied`` (HTTP 403).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from replication.settings import TableSettings, VersionAttributes
from replication.table_writer import TableWriter
from replication.versions import Version
from replication_ops.local.aws import AwsCredentials, SideClients, assume_execution_role
from replication_ops.local.config import SIDES
from replication_ops.local.partitions import LocalPartition

REGION = "cn-north-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws-cn:dynamodb:{REGION}:{ACCOUNT}:table"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
# The replicator's table permissions before the delete mark (what issue 10 found on AWS).
OLD_REPLICATOR_STATEMENT = {
    "Sid": "ApplyChanges",
    "Effect": "Allow",
    "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem"],
    "Resource": [f"{ARN}/items", f"{ARN}/tombstones"],
}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def partition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPartition]:
    started = LocalPartition(SIDES[REGION], tmp_path_factory.mktemp("iam") / "moto.log", enforce_iam=True)
    started.start()
    admin = SideClients(started.endpoint_url, REGION)
    for table, key in (("items", "pk"), ("tombstones", "k")):
        admin.dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    try:
        yield started
    finally:
        started.stop()


def admin(partition: LocalPartition) -> SideClients:
    return SideClients(partition.endpoint_url, REGION)


def role_with(
    partition: LocalPartition, *statements: dict[str, Any], trust: dict | None = None
) -> SideClients:
    """A role with these statements, assumed as the Lambda service assumes an execution role."""
    iam = admin(partition).iam
    name = f"test-role-{next(_names)}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or LAMBDA_TRUST))
    iam.put_role_policy(
        RoleName=name,
        PolicyName="inline",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    arn = f"arn:aws-cn:iam::{ACCOUNT}:role/{name}"
    return SideClients(
        partition.endpoint_url,
        REGION,
        credentials=assume_execution_role(partition.endpoint_url, REGION, arn, name),
    )


def user_with(partition: LocalPartition, *statements: dict[str, Any]) -> tuple[SideClients, str]:
    iam = admin(partition).iam
    name = f"test-user-{next(_names)}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="inline",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    credentials = AwsCredentials(key["AccessKeyId"], key["SecretAccessKey"])
    return SideClients(partition.endpoint_url, REGION, credentials=credentials), name


def denied(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response


def recorded(partition: LocalPartition, action: str, resource: str) -> list[dict[str, Any]]:
    return [c for c in partition.iam_calls() if c["action"] == action and c["resource"] == resource]


def writer(clients: SideClients) -> TableWriter:
    settings = TableSettings("items", "items", "tombstones", REGION, VersionAttributes(), 86400)
    return TableWriter(clients.dynamodb, settings)


def test_the_replicators_old_policy_denies_every_engine_delete(partition: LocalPartition) -> None:
    role = role_with(partition, OLD_REPLICATOR_STATEMENT)
    admin(partition).dynamodb.put_item(
        TableName="items",
        Item={
            "pk": {"S": "k1"},
            "last_update_timestamp": {"N": "1"},
            "last_updater_region": {"S": "us-east-1"},
        },
    )
    response = denied(
        lambda: writer(role).delete_if_older({"pk": {"S": "k1"}}, Version(Decimal(2), "us-east-1", True))
    )
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = response["Error"]["Message"]
    assert message.startswith(f"User: arn:aws-cn:sts::{ACCOUNT}:assumed-role/test-role-")
    assert message.endswith(
        f"is not authorized to perform: dynamodb:UpdateItem on resource: {ARN}/items because no "
        "identity-based policy allows the dynamodb:UpdateItem action"
    )
    [entry] = [
        e for e in recorded(partition, "dynamodb:UpdateItem", f"{ARN}/items") if "test-role" in e["principal"]
    ]
    assert entry["decision"] == "no identity-based policy allows"
    assert admin(partition).dynamodb.get_item(TableName="items", Key={"pk": {"S": "k1"}}).get("Item")


def test_the_replicators_policy_now_lets_the_engine_delete(partition: LocalPartition) -> None:
    role = role_with(
        partition,
        {
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Resource": f"{ARN}/items",
        },
        {
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
            "Resource": f"{ARN}/tombstones",
        },
    )
    admin(partition).dynamodb.put_item(
        TableName="items",
        Item={
            "pk": {"S": "k2"},
            "last_update_timestamp": {"N": "1"},
            "last_updater_region": {"S": "us-east-1"},
        },
    )
    engine = writer(role)
    version = Version(Decimal(2), "us-east-1", True)
    assert engine.remember_delete({"pk": {"S": "k2"}}, version, "replicated")
    assert engine.delete_if_older({"pk": {"S": "k2"}}, version).value == "removed"


def test_a_changed_policy_is_enforced_from_the_next_request(partition: LocalPartition) -> None:
    # Policies are parsed once per text: a replaced, removed or restored policy still counts at once.
    grant = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": f"{ARN}/tombstones"}
    role = role_with(partition, grant)
    role_name = role.sts.get_caller_identity()["Arn"].split("/")[1]
    iam = admin(partition).iam

    def put(name: str, document: dict[str, Any]) -> None:
        iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))

    def write() -> None:
        role.dynamodb.put_item(TableName="tombstones", Item={"k": {"S": "changed"}})

    write()
    put("inline", {"Version": "2012-10-17", "Statement": [{**grant, "Action": "dynamodb:GetItem"}]})
    assert denied(write)["Error"]["Code"] == "AccessDeniedException"
    put("inline", {"Version": "2012-10-17", "Statement": [grant]})
    write()
    put("deny", {"Version": "2012-10-17", "Statement": [{**grant, "Effect": "Deny"}]})
    assert "explicit deny" in denied(write)["Error"]["Message"]
    iam.delete_role_policy(RoleName=role_name, PolicyName="deny")
    write()


def test_a_grant_on_another_table_denies(partition: LocalPartition) -> None:
    # moto's own server-mode check authorizes DynamoDB calls against "*": the table ARN is ours.
    role = role_with(
        partition, {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": f"{ARN}/tombstones"}
    )
    response = denied(lambda: role.dynamodb.put_item(TableName="items", Item={"pk": {"S": "x"}}))
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert f"dynamodb:PutItem on resource: {ARN}/items" in response["Error"]["Message"]
    role.dynamodb.put_item(TableName="tombstones", Item={"k": {"S": "x"}})


def test_transact_write_items_is_authorized_item_by_item(partition: LocalPartition) -> None:
    role = role_with(partition, {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": f"{ARN}/items"})
    response = denied(
        lambda: role.dynamodb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": "tombstones",
                        "Key": {"k": {"S": "t"}},
                        "ConditionExpression": "attribute_not_exists(k)",
                    }
                },
                {"Put": {"TableName": "items", "Item": {"pk": {"S": "t"}}}},
            ]
        )
    )
    assert f"dynamodb:ConditionCheckItem on resource: {ARN}/tombstones" in response["Error"]["Message"]
    assert not admin(partition).dynamodb.get_item(TableName="items", Key={"pk": {"S": "t"}}).get("Item")


def test_parameters_by_path_are_authorized_against_the_requested_path(partition: LocalPartition) -> None:
    # "GetParametersByPath ... authorizes against the path in the request rather than against the
    # parameters it returns" (Systems Manager user guide, "How Parameter Store authorizes parameter
    # retrieval"): the functions' grant on their table map's path, and no more.
    path = "/ddb-replication/iam/tables"
    admin(partition).ssm.put_parameter(Name=f"{path}/profiles", Value="{}", Type="String")
    role = role_with(
        partition,
        {
            "Effect": "Allow",
            "Action": "ssm:GetParametersByPath",
            "Resource": f"arn:aws-cn:ssm:{REGION}:{ACCOUNT}:parameter{path}",
        },
    )

    found = role.ssm.get_parameters_by_path(Path=path, Recursive=False)["Parameters"]
    response = denied(lambda: role.ssm.get_parameters_by_path(Path="/ddb-replication/iam"))

    assert [p["Name"] for p in found] == [f"{path}/profiles"]
    assert response["Error"]["Code"] == "AccessDeniedException"
    parent = f"arn:aws-cn:ssm:{REGION}:{ACCOUNT}:parameter/ddb-replication/iam"
    assert f"ssm:GetParametersByPath on resource: {parent} " in response["Error"]["Message"]


def test_a_parameters_tags_are_authorized_against_the_parameter(partition: LocalPartition) -> None:
    # ListTagsForResource names the parameter by ResourceType and ResourceId (Systems Manager API
    # reference; Terraform's aws_ssm_parameter reads its tags back so): authorized on that parameter,
    # as every request naming a parameter (that this one is, is not confirmed in AWS's own words).
    name = "/ddb-replication/iam/tagged"
    admin(partition).ssm.put_parameter(Name=name, Value="{}", Type="String")
    arn = f"arn:aws-cn:ssm:{REGION}:{ACCOUNT}:parameter{name}"
    role = role_with(partition, {"Effect": "Allow", "Action": "ssm:ListTagsForResource", "Resource": arn})

    role.ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)

    assert recorded(partition, "ssm:ListTagsForResource", arn)


def test_an_explicit_deny_wins(partition: LocalPartition) -> None:
    role = role_with(
        partition,
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": f"{ARN}/items"},
    )
    response = denied(lambda: role.dynamodb.delete_item(TableName="items", Key={"pk": {"S": "x"}}))
    assert response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")
    role.dynamodb.delete_item(TableName="tombstones", Key={"k": {"S": "x"}})


@pytest.fixture(scope="module")
def inbox(partition: LocalPartition) -> tuple[str, str]:
    """A KMS-encrypted stream, as the module's inbox: (stream ARN, key ARN)."""
    clients = admin(partition)
    key = clients.kms.create_key()["KeyMetadata"]["Arn"]
    clients.kinesis.create_stream(StreamName="inbox", ShardCount=1)
    clients.kinesis.start_stream_encryption(StreamName="inbox", EncryptionType="KMS", KeyId=key)
    return f"arn:aws-cn:kinesis:{REGION}:{ACCOUNT}:stream/inbox", key


def peer_writer(partition: LocalPartition, inbox: tuple[str, str], cidrs: list[str]) -> SideClients:
    """The module's peer-writer statements, with the source allowlist."""
    stream, key = inbox
    clients, _ = user_with(
        partition,
        {
            "Sid": "WriteInbox",
            "Effect": "Allow",
            "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
            "Resource": stream,
            "Condition": {"IpAddress": {"aws:SourceIp": cidrs}},
        },
        {
            "Sid": "EncryptInboxRecords",
            "Effect": "Allow",
            "Action": "kms:GenerateDataKey",
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": f"kinesis.{REGION}.amazonaws.com.cn"}},
        },
    )
    return clients


def test_the_peer_writer_writes_from_its_allowed_source_only(partition: LocalPartition, inbox) -> None:
    allowed = peer_writer(partition, inbox, ["127.0.0.1/32"])
    allowed.kinesis.put_record(StreamName="inbox", Data=b"x", PartitionKey="p")
    elsewhere = peer_writer(partition, inbox, ["203.0.113.10/32"])
    response = denied(lambda: elsewhere.kinesis.put_record(StreamName="inbox", Data=b"x", PartitionKey="p"))
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert f"kinesis:PutRecord on resource: {inbox[0]}" in response["Error"]["Message"]
    assert [
        c["source_ip"]
        for c in recorded(partition, "kinesis:PutRecord", inbox[0])
        if c["decision"] != "allowed"
    ]
    assert all(c["source_ip"] == "127.0.0.1" for c in recorded(partition, "kinesis:PutRecord", inbox[0]))


def test_a_put_without_the_streams_key_is_refused_by_kinesis(partition: LocalPartition, inbox) -> None:
    stream, key = inbox
    clients, _ = user_with(
        partition,
        {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"], "Resource": stream},
    )
    response = denied(
        lambda: clients.kinesis.put_records(StreamName="inbox", Records=[{"Data": b"x", "PartitionKey": "p"}])
    )
    assert response["Error"]["Code"] == "KMSAccessDeniedException"
    assert f"kms:GenerateDataKey on resource: {key}" in response["Error"]["Message"]
    [entry] = [c for c in recorded(partition, "kms:GenerateDataKey", key) if c["decision"] != "allowed"]
    assert entry["via_service"] == f"kinesis.{REGION}.amazonaws.com.cn"


def test_iam_answers_access_denied_in_its_query_protocol(partition: LocalPartition) -> None:
    clients, _ = user_with(partition, {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"})
    response = denied(clients.iam.list_users)
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_deleted_key_and_a_wrong_secret_are_refused(partition: LocalPartition) -> None:
    clients, name = user_with(partition, {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
    clients.dynamodb.list_tables()
    credentials = clients.credentials
    forged = SideClients(
        partition.endpoint_url, REGION, credentials=AwsCredentials(credentials.access_key_id, "x" * 40)
    )
    assert denied(forged.dynamodb.list_tables)["Error"]["Code"] == "InvalidSignatureException"
    admin(partition).iam.delete_access_key(UserName=name, AccessKeyId=credentials.access_key_id)
    assert denied(clients.dynamodb.list_tables)["Error"]["Code"] == "UnrecognizedClientException"


def test_the_lambda_service_assumes_only_roles_that_trust_it(partition: LocalPartition) -> None:
    iam = admin(partition).iam
    trust = {
        **LAMBDA_TRUST,
        "Statement": [{**LAMBDA_TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}],
    }
    iam.create_role(RoleName="ec2-only", AssumeRolePolicyDocument=json.dumps(trust))
    arn = f"arn:aws-cn:iam::{ACCOUNT}:role/ec2-only"
    response = denied(lambda: assume_execution_role(partition.endpoint_url, REGION, arn, "session"))
    assert response["Error"]["Code"] == "AccessDenied"
    missing = f"arn:aws-cn:iam::{ACCOUNT}:role/no-such-role"
    assert (
        denied(lambda: assume_execution_role(partition.endpoint_url, REGION, missing, "session"))["Error"][
            "Code"
        ]
        == "AccessDenied"
    )


def test_every_decision_is_counted(partition: LocalPartition) -> None:
    clients, name = user_with(
        partition, {"Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": f"{ARN}/*"}
    )
    for _ in range(3):
        clients.dynamodb.describe_table(TableName="items")
    [entry] = [
        c
        for c in recorded(partition, "dynamodb:DescribeTable", f"{ARN}/items")
        if c["principal"].endswith(name)
    ]
    assert entry["count"] == 3 and entry["decision"] == "allowed" and entry["source_ip"] == "127.0.0.1"


def test_without_enforcement_nothing_is_recorded(tmp_path: Path) -> None:
    plain = LocalPartition(SIDES[REGION], tmp_path / "moto.log")
    plain.start()
    try:
        SideClients(
            plain.endpoint_url, REGION, credentials=AwsCredentials("AKIAANYTHING", "any")
        ).dynamodb.list_tables()
        assert plain.iam_calls() == []
    finally:
        plain.stop()
