"""The scenario logic that runs without an environment: key scoping, fault-window figures, selection."""

from __future__ import annotations

import pytest

from replication_ops.chaos.figures import (
    FaultWindow,
    catch_up_seconds,
    max_lag_during,
    partition_key,
    passed,
    prefixed,
    render_table,
    scoped,
)
from replication_ops.chaos.scenarios import FULL, REDUCED, SCENARIOS, select
from replication_ops.local.config import EVENTS
from replication_ops.local.loadgen import LoadOptions, plan
from replication_ops.local.verify import LagSample
from replication_ops.local.watcher import key_of


def _key(pk: str, sk: str = "profile") -> str:
    return key_of({"pk": {"S": pk}, "sk": {"S": sk}})


def test_prefixed_plan_keeps_everything_but_the_key() -> None:
    original = plan(LoadOptions(operations=40, rate=10, conflict_share=0.3, seed=1))
    renamed = prefixed(original, "crash")
    for side, ops in original.items():
        assert len(renamed[side]) == len(ops)
        for before, after in zip(ops, renamed[side], strict=True):
            assert after.pk == f"crash#{before.pk}"
            assert (after.kind, after.sk, after.at, after.conflict) == (
                before.kind,
                before.sk,
                before.at,
                before.conflict,
            )


def test_scoped_keeps_only_the_scenarios_keys() -> None:
    tables = {
        "a": {_key("s1#user#1"): {}, _key("s2#user#1"): {}, _key("s1x#user#1"): {}},
        "b": {_key("s1#user#2"): {}},
    }
    mine = scoped(tables, "s1")
    assert set(mine["a"]) == {_key("s1#user#1")}
    assert set(mine["b"]) == {_key("s1#user#2")}
    assert partition_key("not json") == ""


def test_scoped_reads_the_tables_own_hash_key_beside_a_binary_range_key() -> None:
    events = {
        key_of(EVENTS.key("s1#user#1", "profile")): {},
        key_of(EVENTS.key("s2#user#1", "profile")): {},
    }
    mine = scoped({"a": events}, "s1", EVENTS.hash_key[0])
    assert set(mine["a"]) == {key_of(EVENTS.key("s1#user#1", "profile"))}


def _sample(written: float, lag: float) -> LagSample:
    return LagSample(written, lag, "cn-north-1")


def test_lag_and_catch_up_are_measured_against_the_fault_window() -> None:
    samples = [_sample(5, 0.5), _sample(10, 12.0), _sample(15, 3.0), _sample(25, 0.4), _sample(40, 9.0)]
    window = FaultWindow(8, 20)
    assert max_lag_during(samples, window) == 12.0  # 40 s is after the fault
    # written by 20 s: the last arrival is 10 + 12 = 22, two seconds after the heal
    assert catch_up_seconds(samples, window) == 2.0
    assert catch_up_seconds([_sample(5, 0.5)], window) == 0.0
    assert max_lag_during(samples, FaultWindow()) is None
    assert catch_up_seconds(samples, FaultWindow(8, None)) is None


def test_passed_needs_nothing_lost_nothing_differing_and_every_check() -> None:
    good = {"lost": 0, "differing": 0, "uncertain": 0, "failed_checks": [], "error": None}
    assert passed(good)
    assert not passed({**good, "lost": 1})
    assert not passed({**good, "differing": 2})
    assert not passed({**good, "uncertain": 1})
    assert not passed({**good, "failed_checks": ["no reset"]})
    assert not passed({**good, "error": "NotQuiescent"})


def test_table_has_a_row_per_scenario_and_the_failures_below() -> None:
    results = [
        {"scenario": "1 peer-unreachable", "changes": 500, "lost": 0, "differing": 0, "max_lag": 31.25,
         "catch_up": 1.5, "failed_checks": []},
        {"scenario": "2 bad-internet", "changes": 480, "lost": 3, "differing": 0, "max_lag": None,
         "catch_up": None, "failed_checks": ["no connection was reset"]},
    ]  # fmt: skip
    table = render_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("scenario") and "catch-up" in lines[0]
    assert "PASS" in lines[2] and "31.2" in lines[2]
    assert "FAIL" in lines[3] and " - " in lines[3]
    assert lines[-1] == "  2 bad-internet: no connection was reset"


def test_selection_by_number_or_name() -> None:
    assert [s.number for s in select(None)] == list(range(1, 9))
    assert [s.name for s in select(["5", "poison-message", "5"])] == ["crash-mid-batch", "poison-message"]
    with pytest.raises(ValueError, match="unknown scenario"):
        select(["9"])


def test_scales_give_each_fault_room_inside_its_load() -> None:
    for scale in (FULL, REDUCED):
        unreachable, exhausted = SCENARIOS[0], SCENARIOS[7]
        assert unreachable.seconds(scale) > 2 * scale.outage_seconds + 3
        assert exhausted.seconds(scale) > scale.exhaust_seconds + 2
        assert scale.operations() >= 10
    assert FULL.outage_seconds * 2 >= 60  # the minute of unreachable peer
