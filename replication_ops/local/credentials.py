"""Peer credentials: each side's peer-writer access key goes into the other side's secret.

``install_credentials`` is the one place that does it: with the operations CLI's ``credentials``
command, the one users run (it creates the key, stores it and probes each direction end to end, so
the runner must be running), or with the plain IAM and Secrets Manager APIs when that command is not
available.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replication_ops.local.aws import SideClients

PEER_WRITER_SUFFIX = "-peer-writer"
PROBE_TIMEOUT_SECONDS = 90

log = logging.getLogger(__name__)


class CredentialsError(RuntimeError):
    pass


@dataclass(frozen=True)
class SideDeployment:
    """What Terraform says about one side (its outputs) and how to reach it."""

    region: str
    peer: str
    clients: SideClients
    outputs: dict[str, Any]

    def peer_writer_user(self) -> str:
        name = self.outputs.get("peer_writer_user_name")
        if name:
            return str(name)
        users = [
            user["UserName"]
            for page in self.clients.iam.get_paginator("list_users").paginate()
            for user in page["Users"]
            if user["UserName"].endswith(PEER_WRITER_SUFFIX)
        ]
        if len(users) != 1:
            raise RuntimeError(f"cannot tell the peer-writer user of {self.region}: found {users}")
        return users[0]

    def peer_secret(self) -> str:
        for name in ("peer_credentials_secret_arn", "peer_credentials_secret_name"):
            if self.outputs.get(name):
                return str(self.outputs[name])
        raise RuntimeError(f"Terraform outputs of {self.region} name no peer credentials secret")


def install_peer_credentials(sides: dict[str, SideDeployment]) -> dict[str, str]:
    """Create a key for each side's peer-writer user and store it in the peer's secret.

    Returns, per side, the access key id its forwarder now uses (a key of the peer's partition).
    """
    installed: dict[str, str] = {}
    for region, side in sides.items():
        peer = sides[side.peer]
        key = peer.clients.iam.create_access_key(UserName=peer.peer_writer_user())["AccessKey"]
        side.clients.secretsmanager.put_secret_value(
            SecretId=side.peer_secret(),
            SecretString=json.dumps(
                {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
            ),
        )
        installed[region] = key["AccessKeyId"]
    return installed


def install_credentials(
    environment_json: Path, outputs: dict[str, Path], sides: dict[str, SideDeployment]
) -> list[str]:
    """Install both directions' peer keys; return what was done, line by line."""
    try:
        from replication_ops import cli
    except ImportError:
        log.info("the operations CLI is not available: installing the keys with the plain API")
        installed = install_peer_credentials(sides)
        return [
            f"{region}: forwarder key {key[:4]}...{key[-4:]} installed" for region, key in installed.items()
        ]
    argv = ["credentials", "--local-env", str(environment_json), "--quiet"]
    for region, path in outputs.items():
        argv += [f"--{region.split('-', maxsplit=1)[0]}-outputs", str(path)]
    argv += ["--probe-timeout", str(PROBE_TIMEOUT_SECONDS)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    lines = [line for line in (out.getvalue() + err.getvalue()).splitlines() if line.strip()]
    if code != 0:
        raise CredentialsError(f"ddb-replication credentials failed (exit {code}): " + " | ".join(lines))
    return lines


OPERATOR_USER = "local-operator"
OPERATOR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def create_operator_key(clients: SideClients, user_name: str = OPERATOR_USER) -> tuple[str, str]:
    """An access key for the operator of the local pair: what ``environment.json`` hands the
    operations CLI (``--local-env``) and the README's examples. Terraform makes no operator policy;
    locally the operator is an administrator of its account (``Allow *``), its calls are recorded
    under its own name."""
    iam = clients.iam
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=user_name, Path="/local/")
        iam.put_user_policy(
            UserName=user_name, PolicyName="operator", PolicyDocument=json.dumps(OPERATOR_POLICY)
        )
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
