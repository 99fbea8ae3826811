"""End to end, roles_anywhere mode (the local environment's default, as `make up` starts it): no
long-lived access key crosses the border. After the environment is up and `ddb-replication
credentials` has probed both directions, IAM in both partitions holds no peer-writer user and no key
but the local stand-ins' (the administrator and operator, path /local/: in AWS the operator's own
sign-in), no secret holds an access key, and each inbox write of the peer forwarder was allowed by
the peer-writer role's policy to a role session (IAM enforced: ``iam_enforcement`` evaluates a
session from the emulated CreateSession against its role's policies)."""

from __future__ import annotations

import json

import pytest

from replication_ops.local.aws import SideClients
from replication_ops.local.iam_audit import Call, principal_kind
from replication_ops.local.terraform import terraform_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH"),
]

LOCAL_STAND_IN_PATH = "/local/"  # config: the launcher's administrator, credentials.create_operator_key


def _users_and_keys(clients: SideClients) -> dict[str, tuple[str, str, list[str]]]:
    """IAM user name -> (ARN, path, its access key ids), every user of the partition."""
    iam = clients.iam
    found = {}
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            keys = [
                key["AccessKeyId"]
                for key_page in iam.get_paginator("list_access_keys").paginate(UserName=user["UserName"])
                for key in key_page["AccessKeyMetadata"]
            ]
            found[user["UserName"]] = (user["Arn"], user["Path"], keys)
    return found


def test_the_local_pair_runs_in_roles_anywhere_mode_by_default(local_pair) -> None:
    env, path = local_pair
    assert env.options.peer_writer_authentication == "roles_anywhere"
    assert json.loads(path.read_text())["peer_writer_authentication"] == "roles_anywhere"
    for region, root in env.roots.items():
        assert root.outputs.get("peer_writer_user_name") is None, region  # a null output is left out
        assert root.outputs["peer_writer_role_arn"], region


def test_no_peer_writer_user_and_no_key_but_the_local_stand_ins_in_either_partition(local_pair) -> None:
    env, _ = local_pair
    for region, partition in env.partitions.items():
        users = _users_and_keys(SideClients(partition.endpoint_url, region))
        assert not [name for name, (arn, _, _) in users.items() if principal_kind(arn)], (region, users)
        outside = {
            name: keys for name, (_, user_path, keys) in users.items() if user_path != LOCAL_STAND_IN_PATH
        }
        assert outside == {}, f"{region}: IAM users besides the local stand-ins: {outside}"


def test_each_forwarders_secret_holds_a_certificate_and_no_access_key(local_pair) -> None:
    env, _ = local_pair
    for region, partition in env.partitions.items():
        secrets = SideClients(partition.endpoint_url, region).secretsmanager
        arn = env.roots[region].outputs["peer_credentials_secret_arn"]
        value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        assert value["auth"] == "roles_anywhere", region
        assert "BEGIN CERTIFICATE" in value["certificate"] and value["private_key"]
        assert not {"aws_access_key_id", "aws_secret_access_key"} & set(value), region
        peer = env.roots[partition.side.peer].outputs
        assert value["role_arn"] == peer["peer_writer_role_arn"]
        assert value["trust_anchor_arn"] == peer["roles_anywhere_trust_anchor_arn"]


def test_the_peer_writer_roles_policy_is_what_allows_the_inbox_writes(local_pair) -> None:
    env, _ = local_pair
    for region, partition in env.partitions.items():
        calls = [Call.parse(entry) for entry in partition.iam_calls()]
        writes = [
            c
            for c in calls
            if principal_kind(c.principal) == "peer-writer" and c.action.startswith("kinesis:Put")
        ]
        assert writes, f"no peer write recorded in {region} (the credentials probe writes one per direction)"
        role = env.roots[region].outputs["peer_writer_role_arn"].rsplit("/", 1)[-1]
        for call in writes:
            assert ":assumed-role/" in call.principal and f"/{role}/" in call.principal, call.describe()
            assert call.allowed and call.policy == f"role/{role}:write-inbox", call.describe()
            assert call.resource == env.roots[region].outputs["inbox_stream_arn"], call.describe()
