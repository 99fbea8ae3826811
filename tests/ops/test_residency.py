"""verify, repair and backfill under residency rules (docs/residency.md, replication_ops/border.py).

The rules are the worked example's, deployed on cn-north-1's forwarder (TABLES[profiles].residency):
only items whose ``residency`` is exactly GLOBAL leave cn, and never with their ``national_id``. The
us side has none. The commands read them from each side's deployed forwarder.
"""

from __future__ import annotations

import pytest

from replication_ops.errors import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_OK

RULES = {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": ["national_id"]}
CANARY = "110101199003070000"  # a national ID written in cn: never on the us side


@pytest.fixture
def rules(deployment):
    deployment.cn.set_residency(RULES)
    return deployment


def _table(result) -> dict:
    return result.json["tables"]["profiles"]


def _verify(run, deployment, *flags: str):
    return run("verify", *deployment.args(), "--json", *flags)


# -- verify ------------------------------------------------------------------------------------


def test_an_item_its_side_keeps_there_is_no_difference_while_the_peer_lacks_it(rules, run):
    rules.cn.put("kept", residency="CN-ONLY", national_id=CANARY)
    result = _verify(run, rules)
    assert result.code == EXIT_OK, result.out
    assert _table(result)["kept"] == {"cn": 1, "us": 0}
    assert _table(result)["only_in"] == {"cn": 0, "us": 0}


def test_an_item_without_the_residency_attribute_is_kept_there(rules, run):
    """The allow-list fails closed: no residency attribute, no export."""
    rules.cn.put("unlabelled", national_id=CANARY)
    assert _table(_verify(run, rules))["kept"] == {"cn": 1, "us": 0}


def test_an_exportable_item_missing_on_the_peer_is_a_difference(rules, run):
    rules.cn.put("global", residency="GLOBAL")
    result = _verify(run, rules)
    assert result.code == EXIT_DIFFERENCES
    assert _table(result)["only_in"] == {"cn": 1, "us": 0}


def test_a_restricted_item_on_the_peer_is_a_difference(rules, run):
    # The item stopped passing on cn (now CN-ONLY, version 200); the peer still holds its old copy.
    rules.cn.put("moved", ts="200", origin="cn-north-1", residency="CN-ONLY")
    rules.us.put("moved", ts="100", origin="cn-north-1", residency="GLOBAL")
    result = _verify(run, rules)
    assert result.code == EXIT_DIFFERENCES
    assert _table(result)["restricted_on_peer"] == {"cn": 1, "us": 0}
    assert _table(result)["samples"]["restricted_on_peer"] == [{"pk": {"S": "moved"}, "sk": {"S": "profile"}}]


def test_the_same_restricted_item_on_both_sides_is_a_difference(rules, run):
    for side in (rules.cn, rules.us):
        side.put("copied", ts="100", origin="cn-north-1", residency="CN-ONLY")
    assert _table(_verify(run, rules))["restricted_on_peer"] == {"cn": 1, "us": 0}


def test_the_peers_own_write_that_came_over_is_no_restricted_item(rules, run):
    """The rules are the writing side's: a us write crosses by us's rules (none), whatever cn's say."""
    for side in (rules.cn, rules.us):
        side.put("written-in-us", ts="100", origin="us-east-1", residency="CN-ONLY")
    assert _verify(run, rules).code == EXIT_OK


def test_excluded_attributes_are_not_compared(rules, run):
    rules.cn.put("person", ts="100", origin="cn-north-1", residency="GLOBAL", national_id=CANARY)
    rules.us.put("person", ts="100", origin="cn-north-1", residency="GLOBAL")
    result = _verify(run, rules)
    assert result.code == EXIT_OK, result.out
    assert _table(result)["excluded_attributes"] == ["national_id"]


def test_attributes_other_than_the_excluded_ones_are_still_compared(rules, run):
    rules.cn.put("person", ts="100", origin="cn-north-1", residency="GLOBAL", national_id=CANARY, city="a")
    rules.us.put("person", ts="100", origin="cn-north-1", residency="GLOBAL", city="b")
    assert _table(_verify(run, rules))["differing"] == 1


def test_the_text_report_says_what_the_rules_kept_and_left_out(rules, run):
    rules.cn.put("kept", residency="CN-ONLY")
    result = run("verify", *rules.args())
    assert result.code == EXIT_OK
    assert "kept by the residency rules (no difference): cn 1, us 0; not compared: national_id" in result.out


# -- repair ------------------------------------------------------------------------------------


def test_repair_copies_an_exportable_item_without_its_excluded_attributes(rules, run):
    rules.cn.put("person", ts="100", origin="cn-north-1", residency="GLOBAL", national_id=CANARY, city="x")
    result = _verify(run, rules, "--repair")
    assert result.code == EXIT_OK, result.out
    copied = rules.us.get("person")
    assert copied["city"] == {"S": "x"}
    assert "national_id" not in copied


def test_repair_removes_a_restricted_item_from_the_peer(rules, run):
    rules.cn.put("moved", ts="200", origin="cn-north-1", residency="CN-ONLY", national_id=CANARY)
    rules.us.put("moved", ts="100", origin="cn-north-1", residency="GLOBAL")
    result = _verify(run, rules, "--repair")
    assert result.code == EXIT_OK, result.out
    assert _table(result)["repairs"][0]["writes"] == ["residency removal on us: applied"]
    assert rules.us.get("moved") is None
    assert rules.cn.get("moved")["national_id"] == {"S": CANARY}
    assert run("verify", *rules.args()).code == EXIT_OK


def test_repair_never_writes_a_restricted_item_onto_the_peer(rules, run):
    # cn's item is the newest and restricted; the peer's older copy is GLOBAL: nothing of cn's item
    # may go there (not even its residency value), only the removal of the key.
    rules.cn.put("moved", ts="300", origin="cn-north-1", residency="CN-ONLY", city="secret-city")
    rules.us.put("moved", ts="100", origin="cn-north-1", residency="GLOBAL", city="old")
    _verify(run, rules, "--repair")
    assert rules.us.get("moved") is None


# -- backfill ----------------------------------------------------------------------------------


def test_backfill_never_copies_a_filtered_item(rules, run):
    rules.cn.put("kept", residency="CN-ONLY", national_id=CANARY)
    rules.cn.put("global", residency="GLOBAL")
    result = run("backfill", "--from", "cn", *rules.args(), "--segments", "1", "--json")
    assert result.code == EXIT_OK, result.err
    assert _table(result)["totals"]["kept"] == 1
    assert _table(result)["totals"]["copied"] == 1
    assert rules.us.get("kept") is None


def test_backfill_never_copies_an_excluded_attribute(rules, run):
    rules.cn.put("person", residency="GLOBAL", national_id=CANARY, city="Beijing")
    assert run("backfill", "--from", "cn", *rules.args(), "--segments", "1").code == EXIT_OK
    copied = rules.us.get("person")
    assert copied["city"] == {"S": "Beijing"}
    assert "national_id" not in copied


def test_backfill_applies_the_source_sides_rules_only(rules, run):
    """cn's rules say what leaves cn, not what enters it: the us side has none, so its items cross whole."""
    rules.us.put("from-us", residency="CN-ONLY", national_id="us-value")
    assert run("backfill", "--from", "us", *rules.args(), "--segments", "1").code == EXIT_OK
    assert rules.cn.get("from-us")["national_id"] == {"S": "us-value"}


def test_backfill_reports_the_items_the_rules_kept(rules, run):
    rules.cn.put("kept", residency="CN-ONLY")
    result = run("backfill", "--from", "cn", *rules.args())
    assert "1 kept on the source by its residency rules" in result.out


# -- where the rules come from -----------------------------------------------------------------


def test_nothing_is_copied_when_the_sources_forwarder_cannot_be_read(rules, run):
    """Without the deployed rules nothing may cross: fail closed, before any copy."""
    rules.cn.put("kept", residency="CN-ONLY", national_id=CANARY)
    rules.cn.client("lambda").delete_function(FunctionName=rules.cn.outputs["forwarder_function_name"])
    result = run("backfill", "--from", "cn", *rules.args())
    assert result.code == EXIT_BAD_INPUT
    assert "cn (cn-north-1) table profiles Lambda: GetFunctionConfiguration" in result.err
    assert rules.us.get("kept") is None


def test_rules_the_engine_would_refuse_are_bad_input(deployment, run):
    deployment.cn.set_residency({"excluded_attributes": ["pk"]})
    result = run("verify", *deployment.args())
    assert result.code == EXIT_BAD_INPUT
    assert "the forwarder's settings do not parse" in result.err
    assert "cannot hold 'pk'" in result.err
