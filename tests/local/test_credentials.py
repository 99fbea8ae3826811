"""Peer credentials installed with the plain IAM and Secrets Manager APIs (the CLI's fallback)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws


def test_peer_credentials_with_the_plain_api() -> None:
    from replication_ops.local.aws import SideClients
    from replication_ops.local.credentials import SideDeployment, install_peer_credentials

    with mock_aws():
        sides = {}
        for region, peer in (("cn-north-1", "us-east-1"), ("us-east-1", "cn-north-1")):
            clients = SideClients.__new__(SideClients)
            clients._clients = {
                name: boto3.client(name, region_name=region) for name in ("iam", "secretsmanager")
            }
            prefix = "ddbrep-" + region.split("-")[0]
            clients.iam.create_user(UserName=f"{prefix}-peer-writer")
            arn = clients.secretsmanager.create_secret(Name=f"{prefix}/peer-credentials")["ARN"]
            sides[region] = SideDeployment(region, peer, clients, {"peer_credentials_secret_arn": arn})
        installed = install_peer_credentials(sides)
        for region, side in sides.items():
            value = json.loads(
                side.clients.secretsmanager.get_secret_value(SecretId=side.peer_secret())["SecretString"]
            )
            assert value["aws_access_key_id"] == installed[region]
            assert value["aws_secret_access_key"]
            peer = sides[side.peer]
            keys = peer.clients.iam.list_access_keys(UserName=peer.peer_writer_user())["AccessKeyMetadata"]
            assert [k["AccessKeyId"] for k in keys] == [installed[region]]
