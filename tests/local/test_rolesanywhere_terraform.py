"""hashicorp/aws 5.100.0 applies ``aws_rolesanywhere_trust_anchor`` and ``aws_rolesanywhere_profile``
against a local partition's Roles Anywhere emulation (``rolesanywhere``, IAM enforced): create, a
second plan with no changes, an update (enabled, duration, tags), destroy. Runs with --slow
(`make test-slow`). The calls it makes are read
from the partition's IAM ledger: what the emulation has to serve for Terraform.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from replication_ops.local.config import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, SIDES
from replication_ops.local.partitions import LocalPartition
from replication_ops.local.terraform import cli_config_file
from tests.local.pki import CertificateAuthority

CONFIGURATION = Path(__file__).parent / "terraform_rolesanywhere"
REGION = "cn-north-1"

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="needs terraform")


@pytest.fixture(scope="module")
def partition(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPartition]:
    if not request.config.getoption("--slow"):
        pytest.skip("six Terraform runs, about 3 minutes on a busy machine: make test-slow (pytest --slow)")
    started = LocalPartition(SIDES[REGION], tmp_path_factory.mktemp("tf-ra") / "moto.log", enforce_iam=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def terraform(directory: Path, partition: LocalPartition, *args: str, **variables: object) -> int:
    config, _ = cli_config_file(directory)
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": config,
        "AWS_ENDPOINT_URL": partition.endpoint_url,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "TF_IN_AUTOMATION": "1",
    }
    flags = [
        f"-var={name}={json.dumps(value) if not isinstance(value, str) else value}"
        for name, value in variables.items()
    ]
    done = subprocess.run(
        ["terraform", f"-chdir={directory}", *args, "-input=false", "-no-color", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 2), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode


def test_terraform_applies_updates_and_destroys_the_roles_anywhere_resources(
    tmp_path: Path, partition: LocalPartition
) -> None:
    shutil.copy(CONFIGURATION / "main.tf", tmp_path / "main.tf")
    variables = {
        "ca": CertificateAuthority().pem,
        "enabled": True,
        "duration_seconds": 900,
        "tags": {"side": "cn"},
    }
    assert terraform(tmp_path, partition, "init") == 0
    terraform(tmp_path, partition, "apply", "-auto-approve", **variables)
    assert terraform(tmp_path, partition, "plan", "-detailed-exitcode", **variables) == 0  # no changes
    changed = {**variables, "enabled": False, "duration_seconds": 1800, "tags": {"side": "cn", "pair": "a"}}
    terraform(tmp_path, partition, "apply", "-auto-approve", **changed)
    assert terraform(tmp_path, partition, "plan", "-detailed-exitcode", **changed) == 0
    terraform(tmp_path, partition, "destroy", "-auto-approve", **changed)

    calls = {
        c["action"]: c["decision"] for c in partition.iam_calls() if c["action"].startswith("rolesanywhere:")
    }
    assert set(calls.values()) == {"allowed"}
    assert {
        "rolesanywhere:CreateTrustAnchor",
        "rolesanywhere:GetTrustAnchor",
        "rolesanywhere:UpdateTrustAnchor",
        "rolesanywhere:DisableTrustAnchor",
        "rolesanywhere:DeleteTrustAnchor",
        "rolesanywhere:CreateProfile",
        "rolesanywhere:GetProfile",
        "rolesanywhere:UpdateProfile",
        "rolesanywhere:DisableProfile",
        "rolesanywhere:DeleteProfile",
        "rolesanywhere:ListTagsForResource",
        "rolesanywhere:TagResource",
    } <= set(calls)
