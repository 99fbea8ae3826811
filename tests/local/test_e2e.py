"""End to end: a smaller `make demo` (both roots applied to local partitions, load on both sides, item
by item convergence, the report's figures present and sane), in access_key mode: the end-to-end
tests' cover of `--peer-writer-authentication access_key` (the default, roles_anywhere, runs end to
end in tests/ops, under the chaos scenarios and in `make demo`). Needs terraform and its AWS
provider (where scripts/terraform_config.sh says)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replication_ops.local.config import DEMO_TABLES, SIDE_NAMES, Paths
from replication_ops.local.demo import DemoOptions, run_demo
from replication_ops.local.environment import EnvironmentOptions
from replication_ops.local.iam_audit import IamRecord, principal_kind
from replication_ops.local.loadgen import LoadOptions
from replication_ops.local.terraform import terraform_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH"),
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, lambda_zips: Path) -> tuple[dict, Paths]:
    paths = Paths(tmp_path_factory.mktemp("demo") / "local")
    options = DemoOptions(
        environment=EnvironmentOptions(paths=paths, inbox_shards=2, peer_writer_authentication="access_key"),
        load=LoadOptions(operations=150, rate=15, conflict_share=0.15, seed=11),
        drain_timeout=150,
        progress=False,
    )
    lines: list[str] = []
    result = run_demo(options, say=lines.append)
    result.report["_output"] = "\n".join(lines)
    result.report["_exit_code"] = result.exit_code
    return result.report, paths


def test_demo_converges_and_reports(demo_run) -> None:
    report, paths = demo_run
    output = report["_output"]
    # Without the residency rules deployed the canary crosses and the demo fails (exit 1) on it alone.
    assert report["_exit_code"] == 0, output
    assert output.splitlines()[-1].startswith("demo passed: CONVERGED"), output  # after the teardown
    assert len(report["machine"]["load_average_at_load_end"]) == 3
    assert report["converged"] is True
    totals = report["totals"]
    assert totals["lost"] == 0 and totals["items_differing"] == 0
    assert report["lost"] == 0 and report["items_differing"] == 0
    assert totals["keys_uncertain"] == 0
    for side in SIDE_NAMES:
        figures = report["sides"][side]
        assert figures["writes"].get("errors", 0) == 0
        assert figures["changes_written"] > 100
        assert figures["writes"].get("conflicting", 0) > 0
        assert figures["forwarded"] > 0, f"no EMF metrics read from {side}'s forwarder"
        assert figures["replicated_in"] > 0
        assert figures["inbox_kinesis_records"] > 0
        assert figures["items"] > 0
    assert totals["echoes_suppressed"] > 0
    # writes as applications write them: the forwarder stamped them, and said why
    kinds, reasons = totals["writes_by_kind"], totals["stamped_by_reason"]
    assert kinds["unversioned_put"] > 0 and kinds["unversioned_update"] > 0 and kinds["decimal_time"] > 0
    assert (
        reasons["absent_or_not_newer"] > 0 and reasons["invalid_version"] > 0 and reasons["version_ahead"] > 0
    )
    for side, peer in zip(SIDE_NAMES, reversed(SIDE_NAMES), strict=True):
        assert_every_change_forwarded_was_received(report, side, peer)
    lag = report["lag_seconds"]
    assert lag["samples"] > 50
    assert 0 <= lag["p50"] <= lag["p95"] <= lag["p99"] <= lag["max"] < 60
    assert 0 < totals["bytes_per_change"] < 2000
    assert 0 < totals["kinesis_records_per_change"] <= 1
    assert report["throughput_per_second"]["writes"] > 5
    assert json.loads(paths.report_json.read_text())["converged"] is True
    assert (paths.base / "lag.png").stat().st_size > 0
    assert not report["settings"]["terraform_variables_not_in_roots"]["cn-north-1"]
    assert report["settings"]["peer_writer_authentication"] == "access_key"
    assert "CONVERGED" in output


def assert_every_change_forwarded_was_received(report: dict, side: str, peer: str) -> None:
    """The peer's replicator received every change ``side``'s forwarder counted as sent, and more
    only where a delivery was repeated, as Lambda's at-least-once delivery allows: a batch retried
    after a function error or a partial batch response (counted again in ChangesReceived), a
    transient error, or a PutRecords that landed though its response timed out (botocore retried it:
    the inbox then holds more records than the forwarder counted). A surplus with none of these would
    be a record read twice; a deficit, a change lost between the two."""
    forwarder, replicator = report["runner"][side]["forwarder"], report["runner"][peer]["replicator"]
    forwarded = report["sides"][side]["forwarded"]
    received = report["sides"][peer]["received_from_peer"]
    records_sent = report["sides"][side]["kinesis_records_sent"]
    records_in_inbox = report["sides"][peer]["inbox_kinesis_records"]
    probes = replicator["metrics"].get("ProbesReceived", 0)
    counters = {"forwarder": forwarder, "replicator": replicator}
    retries = {
        f"{kind} {name}": value
        for kind, figures in counters.items()
        for name, value in (
            ("function_errors", figures["function_errors"]),
            ("partial_failures", figures["partial_failures"]),
            ("TransientErrors", figures["metrics"].get("TransientErrors", 0)),
        )
        if value
    }
    context = (side, peer, forwarded, received, records_sent, records_in_inbox, probes, counters)
    assert received >= forwarded, context
    assert records_in_inbox >= records_sent, context
    if received > forwarded:
        assert retries or records_in_inbox > records_sent + probes, context


def test_each_table_converges_and_has_its_own_figures(demo_run) -> None:
    report, _ = demo_run
    tables = report["tables"]
    assert set(tables) == {table.name for table in DEMO_TABLES}
    for name, table in tables.items():
        assert table["lost"] == 0 and table["items_differing"] == 0, f"{name}: {report['verification']}"
        assert table["keys_written"] > 20 and table["keys_uncertain"] == 0, name
        for side in SIDE_NAMES:
            figures = table["sides"][side]
            assert figures["changes_written"] > 20, (name, side)
            assert figures["forwarded"] > 0 and figures["replicated_in"] > 0, (name, side)
        assert table["lag_seconds"]["samples"] > 10, name
        if not table["residency_rules"]:  # everything crosses: the same items on both sides
            assert table["items"][SIDE_NAMES[0]] == table["items"][SIDE_NAMES[1]] > 0, name
    for total in ("lost", "items_differing", "keys_written"):
        assert report["totals"][total] == sum(t[total] for t in tables.values())
    for side in SIDE_NAMES:
        assert report["sides"][side]["items"] == sum(t["items"][side] for t in tables.values())
        assert report["sides"][side]["forwarded"] == sum(
            t["sides"][side]["forwarded"] for t in tables.values()
        )


def test_the_residency_canary_never_leaves_cn_north_1(demo_run) -> None:
    """cn-north-1's profiles keep CN-ONLY items and national_id there: the canary written in them is
    in no us table, inbox record, log line or failure-queue message (that the check finds a leak is
    tests/local/test_residency_check.py's)."""
    report, _ = demo_run
    places = report["residency_canary"]["places"]
    assert report["residency_canary_leaks"] == sum(places.values()) == 0, places
    profiles = report["tables"]["profiles"]
    cn = profiles["sides"]["cn-north-1"]
    assert profiles["residency_rules"]["cn-north-1"]["excluded_attributes"] == ["national_id"]
    assert cn["residency_filtered"] > 0 and cn["residency_removals"] > 0
    assert profiles["items"]["cn-north-1"] > profiles["items"]["us-east-1"]


def test_every_call_of_the_demo_was_allowed_by_its_principals_policy(demo_run) -> None:
    """IAM enforced: each function with its execution role, the peer writers with their keys from
    127.0.0.1, the operator's probe; a call a policy denies would fail on AWS too."""
    report, paths = demo_run
    iam = report["iam"]
    assert iam["denied"] == [], "denied (principal, action, resource):\n" + "\n".join(iam["denied"])
    record = IamRecord.read(paths.iam_json)
    callers = {principal_kind(call.principal) for call in record.calls if call.allowed}
    assert {"forwarder", "replicator", "peer-writer"} <= callers
    peer_writes = [c for c in record.calls if principal_kind(c.principal) == "peer-writer"]
    assert {c.source_ip for c in peer_writes} == {"127.0.0.1"}
    assert {c.action for c in peer_writes} >= {
        "kinesis:PutRecords",
        "kinesis:PutRecord",
        "kms:GenerateDataKey",
    }
    # The replicator's engine deletes: the mark first (UpdateItem), then the delete.
    replicated = {c.action for c in record.calls if principal_kind(c.principal) == "replicator" and c.allowed}
    assert {"dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= replicated
