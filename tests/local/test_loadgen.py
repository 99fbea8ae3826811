"""The load generator's plan, its version clock and its writes (against moto in process)."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from replication_ops.local.config import ORIGIN_ATTRIBUTE, SIDE_NAMES, TIMESTAMP_ATTRIBUTE
from replication_ops.local.loadgen import (
    DELETE,
    PUT,
    UPDATE,
    LoadGenerator,
    LoadOptions,
    Operation,
    VersionClock,
    format_number,
    plan,
)


def test_the_plan_is_deterministic_and_gives_each_side_the_same_count() -> None:
    options = LoadOptions(operations=300, rate=50, seed=3)
    first, second = plan(options), plan(options)
    assert first == second
    assert {side: len(ops) for side, ops in first.items()} == dict.fromkeys(SIDE_NAMES, 300)
    assert plan(LoadOptions(operations=300, rate=50, seed=4)) != first


def test_conflicts_write_the_same_key_on_both_sides_at_the_same_moment() -> None:
    operations = plan(LoadOptions(operations=1000, rate=100, conflict_share=0.2, tie_share=0.5, seed=1))
    by_slot: dict[int, list[Operation]] = {}
    for ops in operations.values():
        for op in ops:
            if op.conflict is not None:
                by_slot.setdefault(op.conflict, []).append(op)
    assert 150 < len(by_slot) < 250
    for pair in by_slot.values():
        assert sorted(op.side for op in pair) == sorted(SIDE_NAMES)
        assert len({(op.pk, op.sk, op.at, op.tie) for op in pair}) == 1
    ties = sum(1 for pair in by_slot.values() if pair[0].tie)
    assert 0.3 < ties / len(by_slot) < 0.7
    # own keys never cross: each side writes its own key space outside conflicts
    own = {side: {(op.pk, op.sk) for op in ops if op.conflict is None} for side, ops in operations.items()}
    assert not own[SIDE_NAMES[0]] & own[SIDE_NAMES[1]]


def test_the_mix_of_operations_and_pacing() -> None:
    options = LoadOptions(operations=2000, rate=40, conflict_share=0.0, update_share=0.3, delete_share=0.1)
    ops = plan(options)[SIDE_NAMES[0]]
    kinds = Counter(op.kind for op in ops)
    assert 0.25 < kinds[UPDATE] / len(ops) < 0.35
    assert 0.06 < kinds[DELETE] / len(ops) < 0.14
    assert ops[-1].at == pytest.approx((2000 - 1) / 40)
    # updates and deletes target keys inserted before and not yet deleted
    alive: set[tuple[str, str]] = set()
    for op in ops:
        key = (op.pk, op.sk)
        if op.kind == PUT:
            alive.add(key)
        else:
            assert key in alive
            if op.kind == DELETE:
                alive.remove(key)


def test_profiles_look_like_the_baselines() -> None:
    ops = plan(LoadOptions(operations=200, rate=10, conflict_share=0))
    for side in SIDE_NAMES:
        puts = [op for op in ops[side] if op.kind == PUT]
        assert set(puts[0].attributes) == {
            "first_name",
            "last_name",
            "email",
            "sex",
            "street_address",
            "state",
            "city",
            "zipcode",
            "country",
            "government_id",
        }
        sizes = [len(json.dumps(op.attributes, ensure_ascii=False).encode()) for op in puts]
        assert 150 < sum(sizes) / len(sizes) < 400


def test_version_clock_is_strictly_increasing_with_microseconds() -> None:
    ticks = iter([100.0, 100.0, 100.0000004, 99.0, 101.25])
    clock = VersionClock(lambda: next(ticks))
    values = [clock.next() for _ in range(5)]
    assert values == [
        Decimal("100"),
        Decimal("100.000001"),
        Decimal("100.000002"),
        Decimal("100.000003"),
        Decimal("101.25"),
    ]


def test_numbers_are_written_exactly_with_zeros_trimmed() -> None:
    # Decimal(time.time()) has 31-32 significant digits: none may be rounded away
    assert format_number(Decimal("1764200000.7111830711364746093750")) == "1764200000.711183071136474609375"
    assert format_number(Decimal("1.5E+3")) == "1500"


@pytest.mark.parametrize(
    "bad",
    [
        {"operations": 0},
        {"rate": 0},
        {"conflict_share": 1.5},
        {"update_share": 0.8, "delete_share": 0.5},
        {"threads": 0},
    ],
)
def test_options_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LoadOptions(**bad)


def _create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_writes_stamp_versions_and_record_what_dynamodb_returned() -> None:
    options = LoadOptions(operations=60, rate=1000, conflict_share=0.3, tie_share=1.0, threads=3, seed=9)
    with mock_aws():
        clients = {side: boto3.client("dynamodb", region_name=side) for side in SIDE_NAMES}
        for client in clients.values():
            _create_table(client, "t")
        result = LoadGenerator(clients, "t", options, progress=False).run()
    assert len(result.writes) == 120
    assert not [w for w in result.writes if w.error]
    for write in result.writes:
        if write.operation.kind in (PUT, UPDATE):
            assert write.item is not None and write.version is not None
            assert write.item[ORIGIN_ATTRIBUTE] == {"S": write.side}
            assert Decimal(write.item[TIMESTAMP_ATTRIBUTE]["N"]) == write.version[0]
        if write.operation.kind == UPDATE:
            assert set(write.operation.attributes) <= set(write.item)
    # ties: both sides of a conflict slot carry the very same timestamp
    versions: dict[int, set[Decimal]] = {}
    for write in result.writes:
        if write.operation.conflict is not None and write.version is not None:
            versions.setdefault(write.operation.conflict, set()).add(write.version[0])
    assert versions and all(len(v) == 1 for v in versions.values())
    for side in SIDE_NAMES:
        counts = result.counts(side)
        assert sum(counts.get(k, 0) for k in (PUT, UPDATE, DELETE, "delete_noop")) == 60
        assert result.changes(side) == 60 - counts.get("delete_noop", 0)
