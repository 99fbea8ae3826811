"""End to end: a reduced `make chaos` (every scenario, shorter faults, smaller load) in one local
two-partition environment; each must lose nothing and leave no item differing. Needs terraform and
its AWS provider (where scripts/terraform_config.sh says). Runs with --slow (`make test-slow`): about
6.5 minutes alone on this 2-core machine, which would take `make test` past its 15 minutes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replication_ops.chaos.run import ChaosOptions, run_chaos
from replication_ops.chaos.scenarios import REDUCED, select
from replication_ops.local.iam_audit import IamRecord, denials, replay, without_action
from replication_ops.local.iam_enforcement import principal_arn_key
from replication_ops.local.terraform import terraform_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH"),
]


def test_every_scenario_loses_nothing(
    tmp_path: Path, lambda_zips: Path, request: pytest.FixtureRequest
) -> None:
    if not request.config.getoption("--slow"):
        pytest.skip("eight fault scenarios, about 6.5 minutes: make test-slow (pytest --slow) or make chaos")
    lines: list[str] = []
    report = run_chaos(ChaosOptions(scale=REDUCED, scenarios=select(None), base=tmp_path), say=lines.append)
    output = "\n".join(lines)
    results = {r["scenario"].split(" ", 1)[1]: r for r in report["scenarios"]}
    assert len(results) == 8, output
    for name, result in results.items():
        assert result.get("error") is None, f"{name}: {result['error']}\n{output}"
        assert result["changes"] > 100, name
        assert result["conflicting_writes"] > 0, name
        assert result["lost"] == 0 and result["differing"] == 0, f"{name}: {result['examples']}"
        assert not result["failed_checks"], f"{name}: {result['failed_checks']}"
    assert results["peer-unreachable"]["max_lag"] >= REDUCED.outage_seconds
    assert results["retries-exhausted"]["notes"]["records_given_up"] > 0
    assert results["poison-message"]["notes"]["poison_in_failure_queue"] > 0
    assert results["crash-mid-batch"]["notes"]["kills"]
    assert sum(results["crash-mid-batch"]["notes"]["invocations_killed"].values()) > 0
    assert results["bad-internet"]["notes"]["requests"] > 0
    assert report["passed"] is True
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True
    check_iam(IamRecord.read(tmp_path / "iam.json"))


def check_iam(record: IamRecord) -> None:
    """Policies and code in step over every scenario (IAM enforced in both partitions)."""
    denied = record.denials()
    assert not denied, "calls a policy denied:\n" + "\n".join(call.describe() for call in denied)
    unused = record.unused_grants()
    assert not unused, (
        "grants no call used (remove them, or say why above the statement's Sid with "
        "'Not exercised locally: <action>. <why>'):\n" + "\n".join(grant.describe() for grant in unused)
    )
    # The mutation check: any action taken out of a policy turns recorded calls into denials.
    for principal, policies in record.policies.items():
        used = {
            c.action
            for c in record.calls
            if c.allowed and principal_arn_key(c.principal, (principal,)) == principal
        }
        for action in sorted(used):
            mutated = {**record.policies, principal: without_action(policies, action)}
            caught = denials(replay(record.calls, mutated))
            assert caught and {c.action for c in caught} == {action}, f"{principal} without {action}"
