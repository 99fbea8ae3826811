"""End to end in the local two-partition environment (moto servers, both roots applied with
Terraform, the real Lambda zips run by the event-source runner): credentials are installed and
probed through the real replicators; tables made to differ are reported key by key and repaired."""

from __future__ import annotations

import json

import pytest

from replication_ops import cli
from replication_ops.local.aws import client
from replication_ops.local.iam_audit import principal_kind
from replication_ops.local.terraform import terraform_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH"),
]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main([*argv, "--quiet"])
    return code, capsys.readouterr().out


def test_credentials_probe_through_the_real_replicators_and_rotation(local_pair, capsys):
    env, path = local_pair
    mode = env.options.credentials_arguments()  # roles_anywhere, the default: the pair's CA (--ca-dir)
    code, out = _cli(capsys, "credentials", "--local-env", str(path), "--probe-timeout", "60", *mode)
    assert code == 0, out
    assert out.count("probe received") == 2
    code, out = _cli(
        capsys, "rotate", "--local-env", str(path), "--direction", "cn-to-us", "--adoption-wait", "1", *mode
    )
    assert code == 0, out


def test_verify_reports_exactly_the_keys_made_to_differ_and_repair_fixes_them(local_pair, capsys):
    env, path = local_pair
    assert env.runner is not None
    env.runner.stop()  # no forwarder runs: writes now stay on their side
    try:
        _made_to_differ_and_repaired(env, path, capsys)
    finally:
        env._start_runner()  # the pair replicates again for the tests after this one


def _made_to_differ_and_repaired(env, path, capsys) -> None:
    side = env.environment_document()["sides"]["cn-north-1"]
    db = client("dynamodb", endpoint_url=side["endpoint_url"], region="cn-north-1")
    keys = [f"ops-e2e#{index}" for index in range(5)]
    for index, pk in enumerate(keys):
        db.put_item(
            TableName=side["table"],
            Item={
                "pk": {"S": pk},
                "sk": {"S": "profile"},
                "last_update_timestamp": {"N": f"1764200000.{index}"},
                "last_updater_region": {"S": "cn-north-1"},
            },
        )
    code, out = _cli(capsys, "verify", "--local-env", str(path), "--json")
    assert code == 1
    (report,) = json.loads(out)["tables"].values()  # the demo's one table
    assert report["only_in"] == {"cn": 5, "us": 0}
    assert report["differing"] == 0
    assert sorted(k["pk"]["S"] for k in report["samples"]["only_in_cn"]) == keys
    code, out = _cli(capsys, "verify", "--local-env", str(path), "--repair")
    assert code == 0, out
    code, out = _cli(capsys, "verify", "--local-env", str(path))
    assert code == 0, out


def test_every_call_of_the_operations_was_allowed_by_its_principals_policy(local_pair) -> None:
    """IAM enforced: the CLI as the operator, its probes as the peer-writer role's sessions (roles_anywhere
    mode, the local pair's default: the operator creates no access key) from 127.0.0.1 (the roots'
    operator_source_cidrs), the replicators recording the probes with their roles."""
    env, _ = local_pair
    record = env.iam_record()
    assert record is not None
    assert record.denials() == [], "\n".join(call.describe() for call in record.denials())
    operator = [c for c in record.calls if c.principal.endswith(":user/local/local-operator")]
    actions = {c.action for c in operator}
    assert {"secretsmanager:PutSecretValue", "dynamodb:Scan"} <= actions, sorted(actions)
    assert "iam:CreateAccessKey" not in actions
    probes = [
        c
        for c in record.calls
        if principal_kind(c.principal) == "peer-writer" and c.action == "kinesis:PutRecord"
    ]
    assert probes and all(c.allowed and c.source_ip == "127.0.0.1" for c in probes)
    assert all(":assumed-role/" in c.principal for c in probes), sorted({c.principal for c in probes})
