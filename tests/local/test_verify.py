"""The last-writer-wins oracle, the table comparison and the lag samples."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from replication.residency import ResidencyRules
from replication_ops.local.loadgen import (
    DELETE,
    EPOCH_MILLISECONDS,
    PUT,
    STRING_TIMESTAMP,
    UNVERSIONED,
    UPDATE,
    LoadResult,
    Operation,
    Write,
)
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


def bare(name: str, **versionless: dict[str, Any]) -> dict[str, Any]:
    """An item as an application writes it without a version (or with the typed values given)."""
    return {"pk": {"S": "user#1"}, "sk": {"S": "profile"}, "name": {"S": name}, **versionless}


def unversioned(side: str, left: dict[str, Any], finished: float = 100.0, style: str = UNVERSIONED) -> Write:
    """A write without a valid version of its own that left the item ``left``."""
    op = Operation(side, 0.0, PUT, "user#1", "profile", {"name": left["name"]["S"]}, style=style)
    return Write(op, None, left, None, finished - 0.01, finished)


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
    observed.removes[(K, normalize_item(item("a", "100.5", CN)))] = [102.0]
    load = LoadResult(
        [upsert(CN, "a", "100.5"), delete(CN, item("a", "100.5", CN), 102.3), upsert(US, "b", "101.9")]
    )
    expected, _ = oracle(load, seen(cn=observed))
    assert expected[K].item is None
    assert expected[K].order == (Decimal(102), CN, True)


def test_a_delete_within_the_same_second_ranks_right_after_what_it_removed() -> None:
    observed = Observations(CN)
    observed.removes[(K, normalize_item(item("a", "100.5", CN)))] = [100.0]
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
    observed.stamps[(K, normalize_item(item("b", "100.1", US)))] = (Decimal("101"), US)
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
    assert observed.stamps == {(K, normalize_item(item("b", "100.1", US))): (Decimal("101"), US)}
    assert observed.removes == {(K, normalize_item(item("c", "101.5", US))): [103.0]}
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
    observed.stamps[(K, normalize_item(item("b", "100.1", US)))] = (Decimal("140.2"), US)
    load = LoadResult([upsert(US, "b", "100.1", finished=100.2), upsert(US, "b", "140.2", finished=140.3)])
    us_seen_on_cn = Observations(CN)
    us_seen_on_cn.first_seen[(K, (Decimal("100.1"), US))] = 102.0
    us_seen_on_cn.first_seen[(K, (Decimal("140.2"), US))] = 142.0
    samples = lag_samples(load, {CN: us_seen_on_cn, US: observed}, PEERS)
    assert [round(s.lag, 1) for s in samples] == [1.8, 1.7]
    expected, _ = oracle(load, seen(us=observed))
    assert expected[K].item == item("b", "140.2", US)


def test_an_unversioned_write_ends_with_the_stamp_its_side_gave_the_item_it_left() -> None:
    observed = Observations(CN)
    observed.stamps[(K, normalize_item(bare("a")))] = (Decimal("100.9"), CN)
    expected, _ = oracle(LoadResult([unversioned(CN, bare("a"))]), seen(cn=observed))
    assert expected[K].item == item("a", "100.9", CN)


@pytest.mark.parametrize("style", [STRING_TIMESTAMP, EPOCH_MILLISECONDS])
def test_a_write_with_an_invalid_version_ends_with_its_stamp(style: str) -> None:
    written = {"S": "100"} if style == STRING_TIMESTAMP else {"N": "100000"}
    left = bare("a", last_update_timestamp=written, last_updater_region={"S": CN})
    observed = Observations(CN)
    observed.stamps[(K, normalize_item(left))] = (Decimal("100.9"), CN)
    expected, _ = oracle(LoadResult([unversioned(CN, left, style=style)]), seen(cn=observed))
    assert expected[K].item == item("a", "100.9", CN)


def test_the_stamp_of_a_single_field_update_is_not_taken_for_the_write_before_it() -> None:
    # the update left the version of the put as it was; the stamp replaced the update's item only
    put = upsert(CN, "a", "100.5", finished=100.6)
    update = unversioned(CN, item("b", "100.5", CN), finished=100.8)
    cn_seen = Observations(CN)
    cn_seen.stamps[(K, normalize_item(item("b", "100.5", CN)))] = (Decimal("101"), CN)
    us_seen = Observations(US)
    us_seen.first_seen[(K, (Decimal("100.5"), CN))] = 101.0
    us_seen.first_seen[(K, (Decimal("101"), CN))] = 102.0
    samples = lag_samples(LoadResult([put, update]), {CN: cn_seen, US: us_seen}, PEERS)
    assert [(s.version, s.stamped) for s in samples] == [(f"100.5 {CN}", False), (f"101 {CN}", True)]
    expected, _ = oracle(LoadResult([put, update]), {CN: cn_seen, US: us_seen})
    assert expected[K].item == item("b", "101", CN)


def test_an_unversioned_write_superseded_before_its_stamp_takes_no_part() -> None:
    # the next write changed the item before the forwarder's stamp could land: no stamp of it
    load = LoadResult([unversioned(CN, bare("a"), finished=100.0), upsert(CN, "b", "100.5", finished=100.2)])
    expected, _ = oracle(load, seen())
    assert expected[K].item == item("b", "100.5", CN)


def test_a_key_whose_last_unversioned_write_was_never_stamped_is_lost() -> None:
    load = LoadResult([unversioned(CN, bare("a"))])
    result = verify({CN: {K: bare("a")}, US: {}}, load, seen())
    assert result.lost == [K] and result.lost_by_side == {CN: 0, US: 1}
    stamped_unseen = verify({CN: {K: item("a", "101", CN)}, US: {K: item("a", "101", CN)}}, load, seen())
    assert stamped_unseen.lost == [K]  # a stamp the writer's stream never showed is not the oracle's


def test_a_delete_of_a_version_beyond_the_clock_skew_takes_its_stream_second() -> None:
    # epoch milliseconds: the engine reads the removed version as none, the delete gets its own time
    ahead = bare("a", last_update_timestamp={"N": "100000"}, last_updater_region={"S": CN})
    observed = Observations(CN)
    observed.removes[(K, normalize_item(ahead))] = [102.0]
    load = LoadResult(
        [
            unversioned(CN, ahead, finished=100.0, style=EPOCH_MILLISECONDS),
            delete(CN, ahead, 102.3),
            upsert(US, "b", "103.5", finished=103.6),
        ]
    )
    expected, _ = oracle(load, seen(cn=observed))
    assert expected[K].item == item("b", "103.5", US)


def test_observations_note_stamps_and_removes_of_items_without_a_version() -> None:
    observed = Observations(US)
    invalid = bare("b", last_update_timestamp={"S": "100"}, last_updater_region={"S": US})

    def record(name: str, old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"Keys": KEY, "ApproximateCreationDateTime": 103, "OldImage": old}
        if new:
            body["NewImage"] = new
        return {"eventName": name, "dynamodb": body}

    ts, origin = "last_update_timestamp", "last_updater_region"
    observed.add(record("MODIFY", bare("a"), item("a", "101", US)), 101.5, ts, origin)
    observed.add(record("MODIFY", invalid, item("b", "102", US)), 102.5, ts, origin)
    observed.add(record("REMOVE", bare("c"), None), 103.5, ts, origin)
    assert observed.stamps == {
        (K, normalize_item(bare("a"))): (Decimal("101"), US),
        (K, normalize_item(invalid)): (Decimal("102"), US),
    }
    assert observed.removes == {(K, normalize_item(bare("c"))): [103.0]}


# -- residency rules (docs/residency.md): what leaves cn-north-1 ---------------------------------

CN_RULES = {
    CN: ResidencyRules.from_entry(
        {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": ["national_id"]}, "rules"
    ),
    US: ResidencyRules(),
}


def test_the_peer_must_hold_the_exportable_projection_of_the_winner() -> None:
    written = item("a", "100.5", CN, residency="GLOBAL", national_id="110101")
    load = LoadResult(
        [Write(upsert(CN, "a", "100.5").operation, (Decimal("100.5"), CN), written, None, 99, 100)]
    )
    projected = {k: v for k, v in written.items() if k != "national_id"}
    result = verify({CN: {K: written}, US: {K: projected}}, load, seen(), CN_RULES)
    assert result.converged
    missing = verify({CN: {K: written}, US: {}}, load, seen(), CN_RULES)
    assert missing.lost == [K] and missing.differing == [K] and missing.lost_by_side == {CN: 0, US: 1}


def test_a_restricted_winner_must_be_absent_on_the_peer_and_its_copy_there_is_a_difference() -> None:
    written = item("a", "100.5", CN, residency="CN-ONLY", national_id="110101")
    load = LoadResult(
        [Write(upsert(CN, "a", "100.5").operation, (Decimal("100.5"), CN), written, None, 99, 100)]
    )
    assert verify({CN: {K: written}, US: {}}, load, seen(), CN_RULES).converged
    leaked = {k: v for k, v in written.items() if k != "national_id"}
    result = verify({CN: {K: written}, US: {K: leaked}}, load, seen(), CN_RULES)
    assert result.lost == [K] and result.differing == [K] and result.lost_by_side == {CN: 0, US: 1}
    # without rules the same tables are a plain difference the other way round
    assert verify({CN: {K: written}, US: {}}, load, seen()).lost_by_side == {CN: 0, US: 1}


def test_the_excluded_attribute_kept_by_the_restricted_side_is_no_difference() -> None:
    """A change from the peer keeps this side's national_id: compared without it."""
    written = item("b", "100.5", US, residency="GLOBAL")
    load = LoadResult(
        [Write(upsert(US, "b", "100.5").operation, (Decimal("100.5"), US), written, None, 99, 100)]
    )
    kept = {**written, "national_id": {"S": "110101"}}
    assert verify({CN: {K: kept}, US: {K: written}}, load, seen(), CN_RULES).converged
    # an item held on both sides that may not leave cn-north-1 is a difference (docs/residency.md)
    unmarked = item("b", "100.5", US)
    result = verify(
        {CN: {K: unmarked}, US: {K: unmarked}}, LoadResult([upsert(US, "b", "100.5")]), seen(), CN_RULES
    )
    assert result.differing == [K]


def test_binary_keys_and_values_are_the_same_as_bytes_and_as_base64_text() -> None:
    as_bytes = {"stream_id": {"S": "s"}, "event_id": {"B": b"\xff\x00event"}}
    as_text = {"stream_id": {"S": "s"}, "event_id": {"B": "/wBldmVudA=="}}
    assert key_of(as_bytes) == key_of(as_text)
    assert normalize_item(as_bytes) == normalize_item(as_text)
    assert normalize_item({"b": {"BS": [b"\x01"]}}) == normalize_item({"b": {"BS": ["AQ=="]}})
    assert normalize_item(as_bytes) != normalize_item({**as_text, "event_id": {"B": "/wBldmVudHM="}})


def test_an_update_that_returned_the_engines_delete_mark_is_expected_without_it() -> None:
    """The update landed between the replicator's mark and its delete; the engine took the mark off."""
    marked = {**item("a", "100.5", CN), "_ddbrep_deleting": {"S": "1764200000 us-east-1"}}
    write = Write(
        upsert(CN, "a", "100.5", kind=UPDATE).operation, (Decimal("100.5"), CN), marked, None, 99, 100
    )
    final = item("a", "100.5", CN)
    assert verify({CN: {K: final}, US: {K: final}}, LoadResult([write]), seen()).converged
