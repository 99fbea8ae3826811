"""Peer credentials: how each side's forwarder gets its right to write into the other side's inbox.

``install_credentials`` is the one place that installs them, with the operations CLI's
``credentials`` command, the one users run (the runner must be running: it probes each direction end
to end). In roles_anywhere mode (the module's ``peer_writer_authentication``, the local default) the
command issues each forwarder a leaf certificate of the pair's CA (``ensure_pair_ca``, the folder
``ddb-replication ca init`` makes) and stores it in the forwarder's secret; in access_key mode it
creates a peer-writer key. The mode of each link comes from the receiver's Terraform outputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

from replication_ops import certificates, cli
from replication_ops.local.aws import SideClients
from replication_ops.local.config import LOCAL_PAIR_CA_NAME

PROBE_TIMEOUT_SECONDS = 90

log = logging.getLogger(__name__)


class CredentialsError(RuntimeError):
    pass


def ensure_pair_ca(folder: Path, common_name: str = LOCAL_PAIR_CA_NAME) -> str:
    """The pair's CA certificate (PEM) from ``folder``, made there first when the folder holds none,
    as ``ddb-replication ca init --dir folder`` would (``certificates``: ca.pem, ca.key 0600); made
    once and reused, so runs on the same build folder share it. A folder holding half a CA is a
    ``ConfigError`` (certificates.load_authority): a CA is never overwritten."""
    if (
        not (folder / certificates.CA_CERTIFICATE_FILE).exists()
        and not (folder / certificates.CA_KEY_FILE).exists()
    ):
        certificates.write_authority(certificates.create_authority(common_name), folder)
        log.info("created the local pair's CA in %s", folder)
    return certificates.certificate_pem(certificates.load_authority(folder).certificate)


def credentials_arguments(ca_dir: Path | None) -> list[str]:
    """What ``credentials`` and ``rotate`` are given besides the sides: the pair's CA folder in
    roles_anywhere mode (``--ca-dir``), nothing in access_key mode."""
    return ["--ca-dir", str(ca_dir)] if ca_dir is not None else []


def install_credentials(
    environment_json: Path, outputs: dict[str, Path], ca_dir: Path | None = None
) -> list[str]:
    """Install both directions' peer credentials with ``ddb-replication credentials`` (a leaf
    certificate of the CA in ``ca_dir`` per forwarder, or with ``ca_dir`` None a peer-writer key);
    return what it said, line by line. ``CredentialsError`` when it fails (exit status not 0)."""
    argv = ["credentials", "--local-env", str(environment_json), "--quiet"]
    for region, path in outputs.items():
        argv += [f"--{region.split('-', maxsplit=1)[0]}-outputs", str(path)]
    argv += ["--probe-timeout", str(PROBE_TIMEOUT_SECONDS), *credentials_arguments(ca_dir)]
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
