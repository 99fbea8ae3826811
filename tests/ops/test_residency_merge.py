"""Repair and backfill onto a side with excluded attributes keep that side's values (the replicator's
merge, TableWriter.apply with the table's excluded attributes, which the CLI's writers get from the
deployed TABLES)."""

from __future__ import annotations

from replication_ops.errors import EXIT_OK

from .test_residency import CANARY, RULES


def test_repair_onto_a_side_with_excluded_attributes_keeps_its_values(deployment, run):
    deployment.cn.set_residency(RULES)
    deployment.cn.put(
        "person", ts="100", origin="cn-north-1", residency="GLOBAL", national_id=CANARY, city="old"
    )
    deployment.us.put("person", ts="200", origin="us-east-1", residency="GLOBAL", city="new")
    result = run("verify", *deployment.args(), "--repair", "--json")
    assert result.code == EXIT_OK, result.out
    person = deployment.cn.get("person")
    assert person["city"] == {"S": "new"}
    assert person["national_id"] == {"S": CANARY}


def test_backfill_onto_a_side_with_excluded_attributes_keeps_its_values(deployment, run):
    deployment.cn.set_residency(RULES)
    deployment.cn.put(
        "person", ts="100", origin="cn-north-1", residency="GLOBAL", national_id=CANARY, city="old"
    )
    deployment.us.put("person", ts="200", origin="us-east-1", residency="GLOBAL", city="new")
    assert run("backfill", "--from", "us", *deployment.args(), "--segments", "1").code == EXIT_OK
    person = deployment.cn.get("person")
    assert person["city"] == {"S": "new"}
    assert person["national_id"] == {"S": CANARY}
