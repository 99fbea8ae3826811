"""The last-writer-wins oracle, the table comparison and the lag samples."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from replication_ops.local.loadgen import DELETE, PUT, UPDATE, LoadResult, Operation, Write
from replication_ops.local.verify import (
    delete_order,
    differing_keys,
    lag_samples,
    normalize_item,
    oracle,
    percentile,
    verify,
)
from replication_ops.local.watcher import Observations, key_of

CN, US = "cn-north-1", "us-east-1"
PEERS = {CN: US, US: CN}


def item(name: str, ts: str, origin: str, **extra: Any) -> dict[str, Any]:
    return {
        "pk": {"S": "user#1"},
        "sk": {"S": "profile"},
        "name": {"S": name},
        "last_update_timestamp": {"N": ts},
        "last_updater_region": {"S": origin},
        **{k: {"S": v} for k, v in extra.items()},
    }


KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
K = key_of(KEY)


def upsert(side: str, name: str, ts: str, finished: float = 100.0, kind: str = PUT) -> Write:
    op = Operation(side, 0.0, kind, "user#1", "profile", {"name": name})
    return Write(op, (Decimal(ts), side), item(name, ts, side), None, finished - 0.01, finished)


def delete(side: str, old: dict[str, Any] | None, finished: float) -> Write:
    op = Operation(side, 0.0, DELETE, "user#1", "profile", {})
    return Write(op, None, None, old, finished - 0.01, finished)


def seen(**per_side: Observations) -> dict[str, Observations]:
    return {CN: per_side.get("cn", Observations(CN)), US: per_side.get("us", Observations(US))}


def test_the_later_timestamp_wins() -> None:
    load = LoadResult([upsert(CN, "a", "100.5"), upsert(US, "b", "100.25")])
    expected, uncertain = oracle(load, seen())
    assert expected[K].item == item("a", "100.5", CN)
    assert not uncertain


def test_equal_timestamps_are_broken_by_the_origin_name() -> None:
    load = LoadResult([upsert(US, "b", "100.5"), upsert(CN, "a", "100.5")])
    expected, _ = oracle(load, seen())
    assert expected[K].item == item("b", "100.5", US)  # "us-east-1" > "cn-north-1"


def test_a_delete_takes_its_stream_second_when_that_is_later() -> None:
    observed = Observations(CN)
    observed.removes[(K, (Decimal("100.5"), CN))] = [102.0]
    load = LoadResult(
        [upsert(CN, "a", "100.5"), delete(CN, item("a", "100.5", CN), 102.3), upsert(US, "b", "101.9")]
    )
    expected, _ = oracle(load, seen(cn=observed))
    assert expected[K].item is None
    assert expected[K].order == (Decimal(102), CN, True)


def test_a_delete_within_the_same_second_ranks_right_after_what_it_removed() -> None:
    observed = Observations(CN)
    observed.removes[(K, (Decimal("100.5"), CN))] = [100.0]
    load = LoadResult(
        [upsert(CN, "a", "100.5"), delete(CN, item("a", "100.5", CN), 100.9), upsert(US, "b", "100.7")]
    )
    expected, _ = oracle(load, seen(cn=observed))
    assert expected[K].item == item("b", "100.7", US)  # the delete's version is 100.5: older
    assert delete_order((Decimal("100.5"), CN), Decimal(100), CN) == (Decimal("100.5"), CN, True)
    assert delete_order(None, Decimal(100), CN) == (Decimal(100), CN, True)


def test_a_delete_of_nothing_is_no_change() -> None:
    load = LoadResult([upsert(US, "b", "100.5"), delete(CN, None, 101.0)])
    expected, _ = oracle(load, seen())
    assert expected[K].item == item("b", "100.5", US)


def test_a_stamped_write_takes_its_stamped_version() -> None:
    observed = Observations(US)
    observed.stamps[(K, (Decimal("100.1"), US))] = (Decimal("101"), US)
    load = LoadResult([upsert(CN, "a", "100.5"), upsert(US, "b", "100.1", finished=100.6)])
    expected, _ = oracle(load, seen(us=observed))
    assert expected[K].item == item("b", "101", US)


def test_failed_writes_make_a_key_uncertain() -> None:
    broken = upsert(CN, "a", "100.5")
    broken.error = "ConnectionError: gone"
    expected, uncertain = oracle(LoadResult([broken, upsert(US, "b", "100.1")]), seen())
    assert K in uncertain and K not in expected


def test_verify_counts_differing_and_lost_items() -> None:
    load = LoadResult([upsert(CN, "a", "100.5"), upsert(US, "b", "100.1")])
    good = {K: item("a", "100.5", CN)}
    result = verify({CN: dict(good), US: dict(good)}, load, seen())
    assert result.converged and result.items == {CN: 1, US: 1}
    stale = {K: item("b", "100.1", US)}
    result = verify({CN: dict(good), US: stale}, load, seen())
    assert result.differing == [K] and result.lost == [K] and result.lost_by_side == {CN: 0, US: 1}
    assert result.examples[0]["side"] == US and not result.converged
    both_stale = verify({CN: dict(stale), US: dict(stale)}, load, seen())
    assert not both_stale.differing and both_stale.lost == [K]
    stray = {key_of({"pk": {"S": "x"}, "sk": {"S": "y"}}): {"pk": {"S": "x"}, "sk": {"S": "y"}}}
    extra = verify({CN: {**good, **stray}, US: {**good, **stray}}, load, seen())
    assert len(extra.lost) == 1  # an item nobody wrote is not the oracle's either


def test_items_compare_numbers_as_numbers() -> None:
    left = {"k": {"n": {"N": "1.50"}, "s": {"SS": ["a", "b"]}}}
    right = {"k": {"n": {"N": "1.5"}, "s": {"SS": ["b", "a"]}}}
    assert differing_keys(left, right) == []
    assert normalize_item(None) is None
    assert differing_keys(left, {"k": {"n": {"N": "2"}, "s": {"SS": ["a"]}}}) == ["k"]


def test_numbers_differing_beyond_28_digits_differ() -> None:
    # Decimal(time.time()) has 31-32 significant digits; DynamoDB keeps 38
    left = {"k": {"ts": {"N": "1764200000.711183071136474609375"}}}
    right = {"k": {"ts": {"N": "1764200000.711183071136474609376"}}}
    assert differing_keys(left, right) == ["k"]


def test_lag_samples_pair_origin_writes_with_first_sight_on_the_peer() -> None:
    us_seen = Observations(US)
    us_seen.first_seen[(K, (Decimal("100.5"), CN))] = 101.75
    cn_seen = Observations(CN)
    load = LoadResult([upsert(CN, "a", "100.5", finished=100.5), upsert(US, "b", "99.0", finished=99.0)])
    samples = lag_samples(load, {CN: cn_seen, US: us_seen}, PEERS)
    assert len(samples) == 1
    assert samples[0].origin == CN and samples[0].lag == pytest.approx(1.25)


def test_observations_note_peer_versions_removes_and_stamps() -> None:
    observed = Observations(US)

    def record(name: str, old: dict | None, new: dict | None, second: int = 100) -> dict:
        body: dict[str, Any] = {"Keys": KEY, "ApproximateCreationDateTime": second}
        if old:
            body["OldImage"] = old
        if new:
            body["NewImage"] = new
        return {"eventName": name, "dynamodb": body}

    ts, origin = "last_update_timestamp", "last_updater_region"
    observed.add(record("INSERT", None, item("a", "100.5", CN)), 101.0, ts, origin)
    observed.add(record("INSERT", None, item("a", "100.5", CN)), 102.0, ts, origin)
    observed.add(record("MODIFY", item("b", "100.1", US), item("b", "101", US)), 102.0, ts, origin)
    observed.add(record("MODIFY", item("b", "101", US), item("c", "101.5", US)), 102.0, ts, origin)
    observed.add(record("REMOVE", item("c", "101.5", US), None, second=103), 103.5, ts, origin)
    assert observed.first_seen == {(K, (Decimal("100.5"), CN)): 101.0}
    assert observed.stamps == {(K, (Decimal("100.1"), US)): (Decimal("101"), US)}
    assert observed.removes == {(K, (Decimal("101.5"), US)): [103.0]}
    assert len(observed.history[K]) == 5


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.99) == 3.0


@pytest.mark.parametrize("kind", [PUT, UPDATE])
def test_upserts_of_both_kinds_count(kind: str) -> None:
    load = LoadResult([upsert(CN, "a", "100.5", kind=kind)])
    expected, _ = oracle(load, seen())
    assert expected[K].write.operation.kind == kind


def test_a_later_update_that_changed_nothing_is_not_a_stamp() -> None:
    observed = Observations(US)
    # the generator's second write set the very values already there: it looks like a stamp
    observed.stamps[(K, (Decimal("100.1"), US))] = (Decimal("140.2"), US)
    load = LoadResult([upsert(US, "b", "100.1", finished=100.2), upsert(US, "b", "140.2", finished=140.3)])
    us_seen_on_cn = Observations(CN)
    us_seen_on_cn.first_seen[(K, (Decimal("100.1"), US))] = 102.0
    us_seen_on_cn.first_seen[(K, (Decimal("140.2"), US))] = 142.0
    samples = lag_samples(load, {CN: us_seen_on_cn, US: observed}, PEERS)
    assert [round(s.lag, 1) for s in samples] == [1.8, 1.7]
    expected, _ = oracle(load, seen(us=observed))
    assert expected[K].item == item("b", "140.2", US)
