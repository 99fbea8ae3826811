"""verify: both tables compared by key and content hash; --repair by the replication rules."""

from __future__ import annotations

from decimal import Decimal

from replication.versions import Version
from replication_ops.errors import EXIT_AWS_ACCESS, EXIT_DIFFERENCES, EXIT_OK
from replication_ops.sides import Side


def _key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "profile"}}


def _same_on_both(deployment, pk: str, ts: str = "100", **attributes: str) -> None:
    for side in (deployment.cn, deployment.us):
        side.put(pk, ts=ts, origin="cn-north-1", **attributes)


def test_identical_tables_exit_0(deployment, run):
    for index in range(20):
        _same_on_both(deployment, f"user#{index}", city="Beijing")
    result = run("verify", *deployment.args(), "--json")
    assert result.code == EXIT_OK
    assert result.json["identical"] is True
    assert result.json["tables"]["profiles"]["items"] == {"cn": 20, "us": 20}


def test_numbers_and_sets_compare_by_value_not_by_spelling(deployment, run):
    for side, number, members in ((deployment.cn, "1.50", ["b", "a"]), (deployment.us, "1.5", ["a", "b"])):
        side.client("dynamodb").put_item(
            TableName="profiles",
            Item={**_key("n"), "score": {"N": number}, "tags": {"SS": members}},
        )
    assert run("verify", *deployment.args()).code == EXIT_OK


def test_numbers_that_differ_in_their_38th_digit_differ(deployment, run):
    # Rounded to Python's default 28 digits, these two would hash the same.
    for side, number in ((deployment.cn, "1.0000000000000000000000000000000000001"), (deployment.us, "1")):
        side.client("dynamodb").put_item(TableName="profiles", Item={**_key("n"), "score": {"N": number}})
    assert run("verify", *deployment.args()).code == EXIT_DIFFERENCES


def test_differences_are_counted_with_sample_keys_and_no_contents(deployment, run):
    _same_on_both(deployment, "same", city="Beijing")
    deployment.cn.put("only-cn", city="secret-city-1")
    deployment.us.put("only-us", city="secret-city-2")
    deployment.cn.put("changed", ts="100", city="secret-city-3")
    deployment.us.put("changed", ts="200", city="secret-city-4")
    result = run("verify", *deployment.args(), "--json")
    assert result.code == EXIT_DIFFERENCES
    assert result.json["tables"]["profiles"]["only_in"] == {"cn": 1, "us": 1}
    assert result.json["tables"]["profiles"]["differing"] == 1
    assert result.json["tables"]["profiles"]["samples"] == {
        "only_in_cn": [_key("only-cn")],
        "only_in_us": [_key("only-us")],
        "differing": [_key("changed")],
        "restricted_on_peer": [],
    }
    assert "secret-city" not in result.out
    text = run("verify", *deployment.args())
    assert "secret-city" not in text.out
    assert '"only-cn"' in text.out


def test_show_items_prints_the_sampled_items(deployment, run):
    deployment.cn.put("only-cn", city="visible-city")
    result = run("verify", *deployment.args(), "--show-items")
    assert "visible-city" in result.out


def test_repair_copies_the_newer_version_over_the_older(deployment, run):
    deployment.cn.put("changed", ts="100", city="old")
    deployment.us.put("changed", ts="200", city="new")
    result = run("verify", *deployment.args(), "--repair", "--json")
    assert result.code == EXIT_OK, result.out
    assert deployment.cn.get("changed")["city"] == {"S": "new"}
    assert result.json["tables"]["profiles"]["repairs"][0]["writes"] == ["upsert on cn: applied"]


def test_repair_copies_an_item_missing_on_the_other_side(deployment, run):
    deployment.cn.put("only-cn", ts="100", city="Beijing")
    assert run("verify", *deployment.args(), "--repair").code == EXIT_OK
    assert deployment.us.get("only-cn")["city"] == {"S": "Beijing"}


def test_repair_respects_a_newer_tombstone(deployment, run):
    deployment.us.put("deleted-on-cn", ts="100", city="stale")
    deployment.cn.writer().remember_delete(
        _key("deleted-on-cn"), Version(Decimal(150), "cn-north-1", True), "local"
    )
    result = run("verify", *deployment.args(), "--repair", "--json")
    assert result.code == EXIT_OK, result.out
    assert deployment.us.get("deleted-on-cn") is None
    assert result.json["tables"]["profiles"]["repairs"][0]["writes"] == ["delete on us: applied"]


def test_repair_keeps_an_item_newer_than_the_tombstone(deployment, run):
    deployment.us.put("recreated", ts="300", city="back")
    deployment.cn.writer().remember_delete(
        _key("recreated"), Version(Decimal(150), "cn-north-1", True), "local"
    )
    assert run("verify", *deployment.args(), "--repair").code == EXIT_OK
    assert deployment.cn.get("recreated")["city"] == {"S": "back"}


def test_repair_leaves_a_tie_of_different_items_and_says_so(deployment, run):
    deployment.cn.put("tie", ts="100", origin="cn-north-1", city="one")
    deployment.us.put("tie", ts="100", origin="cn-north-1", city="two")
    result = run("verify", *deployment.args(), "--repair", "--json")
    assert result.code == EXIT_DIFFERENCES
    assert result.json["tables"]["profiles"]["unresolved"] == 1
    assert "same version" in result.json["tables"]["profiles"]["repairs"][0]["note"]


def test_then_verify_exits_0(deployment, run):
    deployment.cn.put("a", ts="100")
    deployment.us.put("b", ts="100")
    run("verify", *deployment.args(), "--repair")
    assert run("verify", *deployment.args()).code == EXIT_OK


def test_access_denied_on_one_side_is_an_access_problem(deployment, run, monkeypatch):
    original = Side.client

    def client(self, service):
        made = original(self, service)
        if self.label == "us":
            made.meta.events.register("before-call.dynamodb.*", _deny)
        return made

    monkeypatch.setattr(Side, "client", client)
    result = run("verify", *deployment.args())
    assert result.code == EXIT_AWS_ACCESS
    assert "us (us-east-1)" in result.err
    assert "no access" in result.err


def _deny(**_: object):
    class Http:
        status_code = 400

    return Http(), {"Error": {"Code": "AccessDeniedException", "Message": "not in this partition"}}


def test_a_table_neither_side_serves_is_bad_input_naming_the_tables(deployment, run):
    result = run("verify", *deployment.args(), "--table", "orders")
    assert result.code == 2
    assert "no table 'orders' on cn (cn-north-1) and us (us-east-1) (tables: profiles)" in result.err


def test_verify_of_one_named_table_reports_that_table(deployment, run):
    deployment.cn.put("a")
    result = run("verify", *deployment.args(), "--table", "profiles", "--json")
    assert list(result.json["tables"]) == ["profiles"]
    assert result.json["tables"]["profiles"]["only_in"] == {"cn": 1, "us": 0}
