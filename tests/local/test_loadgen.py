"""The load generator's plan, its version clock and its writes (against moto in process)."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from replication_ops.local.config import (
    ACCOUNTS,
    DEMO_TABLES,
    EVENTS,
    ORIGIN_ATTRIBUTE,
    PROFILES,
    RESIDENCY_ATTRIBUTE,
    SIDE_NAMES,
    TIMESTAMP_ATTRIBUTE,
    DemoTable,
)
from replication_ops.local.loadgen import (
    CN_ONLY,
    DECIMAL_TIME,
    DELETE,
    EPOCH_MILLISECONDS,
    GLOBAL,
    NATIONAL_ID,
    PUT,
    RESTRICTED_NOTE,
    RESTRICTED_SIDE,
    STRING_TIMESTAMP,
    UNVERSIONED,
    UPDATE,
    VERSIONED,
    WRITE_KINDS,
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
    own = {
        side: {(op.table.name, op.pk, op.sk) for op in ops if op.conflict is None}
        for side, ops in operations.items()
    }
    assert not own[SIDE_NAMES[0]] & own[SIDE_NAMES[1]]


def test_the_mix_of_operations_and_pacing() -> None:
    options = LoadOptions(operations=2000, rate=40, conflict_share=0.0, update_share=0.3, delete_share=0.1)
    ops = plan(options)[SIDE_NAMES[0]]
    kinds = Counter(op.kind for op in ops)
    assert 0.25 < kinds[UPDATE] / len(ops) < 0.35
    assert 0.06 < kinds[DELETE] / len(ops) < 0.14
    assert ops[-1].at == pytest.approx((2000 - 1) / 40)
    # updates and deletes target keys inserted before and not yet deleted
    alive: set[tuple[str, str, str]] = set()
    for op in ops:
        key = (op.table.name, op.pk, op.sk)
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


def _own_upserts(options: LoadOptions) -> list[Operation]:
    return [op for ops in plan(options).values() for op in ops if op.kind != DELETE and op.conflict is None]


def test_own_key_upserts_set_their_version_in_each_style_by_its_share() -> None:
    options = LoadOptions(
        operations=4000,
        conflict_share=0.1,
        unversioned_share=0.2,
        decimal_time_share=0.3,
        invalid_version_share=0.1,
        seed=5,
    )
    upserts = _own_upserts(options)
    styles = Counter(op.style for op in upserts)
    assert 0.17 < styles[UNVERSIONED] / len(upserts) < 0.23
    assert 0.27 < styles[DECIMAL_TIME] / len(upserts) < 0.33
    assert 0.03 < styles[STRING_TIMESTAMP] / len(upserts) < 0.07
    assert 0.03 < styles[EPOCH_MILLISECONDS] / len(upserts) < 0.07
    assert 0.37 < styles[VERSIONED] / len(upserts) < 0.43


def test_conflicting_writes_always_set_the_clocks_version() -> None:
    # the oracle orders both sides' writes of a key by their versions: none may be left to a stamp
    options = LoadOptions(
        operations=2000,
        conflict_share=0.3,
        unversioned_share=0.5,
        decimal_time_share=0,
        invalid_version_share=0.5,
    )
    conflicts = [op for ops in plan(options).values() for op in ops if op.conflict is not None]
    assert conflicts and {op.style for op in conflicts} == {VERSIONED}


def test_an_unversioned_update_sets_a_single_field() -> None:
    upserts = _own_upserts(
        LoadOptions(operations=2000, unversioned_share=1.0, decimal_time_share=0, invalid_version_share=0)
    )
    updates = [op for op in upserts if op.kind == UPDATE and RESIDENCY_ATTRIBUTE not in op.attributes]
    assert updates and all(len(op.attributes) == 1 for op in updates)


def test_the_version_styles_leave_the_operations_of_a_seed_as_they_were() -> None:
    def shape(options: LoadOptions) -> list[tuple[str, str, str, float]]:
        return [(op.kind, op.pk, op.sk, op.at) for ops in plan(options).values() for op in ops]

    plain = LoadOptions(operations=500, unversioned_share=0, decimal_time_share=0, invalid_version_share=0)
    mixed = LoadOptions(
        operations=500, unversioned_share=0.4, decimal_time_share=0.3, invalid_version_share=0.2
    )
    assert shape(plain) == shape(mixed)


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
        {"unversioned_share": -0.1},
        {"decimal_time_share": 1.1},
        {"unversioned_share": 0.5, "decimal_time_share": 0.4, "invalid_version_share": 0.2},
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
        result = LoadGenerator(clients, {"profiles": "t"}, options, progress=False).run()
    assert len(result.writes) == 120
    assert not [w for w in result.writes if w.error]
    for write in result.writes:
        if write.operation.versioned:
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


def _write_each_style(style: str, kind: str) -> Any:
    put = Operation(SIDE_NAMES[0], 0.0, PUT, "user#1", "profile", {"city": "Tianjin"})
    update = Operation(SIDE_NAMES[0], 0.0, UPDATE, "user#1", "profile", {"city": "Boston"}, style=style)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=SIDE_NAMES[0])
        _create_table(client, "t")
        generator = LoadGenerator({SIDE_NAMES[0]: client}, {"profiles": "t"}, LoadOptions(), progress=False)
        operations = [put, update] if kind == UPDATE else [Operation(**{**put.__dict__, "style": style})]
        result = generator.run({SIDE_NAMES[0]: operations})
        stored = client.get_item(TableName="t", Key=put.key)["Item"]
    assert not [w for w in result.writes if w.error]
    return result, stored


def test_an_unversioned_put_writes_no_version_attributes() -> None:
    result, stored = _write_each_style(UNVERSIONED, PUT)
    assert TIMESTAMP_ATTRIBUTE not in stored and ORIGIN_ATTRIBUTE not in stored
    assert result.writes[-1].version is None and result.by_kind(SIDE_NAMES[0])["unversioned_put"] == 1


def test_an_unversioned_update_leaves_the_version_as_it_was() -> None:
    result, stored = _write_each_style(UNVERSIONED, UPDATE)
    put, update = result.writes
    assert stored["city"] == {"S": "Boston"}
    assert stored[TIMESTAMP_ATTRIBUTE] == put.item[TIMESTAMP_ATTRIBUTE] and update.version is None
    assert result.by_kind(SIDE_NAMES[0])["unversioned_update"] == 1


def test_a_decimal_time_version_is_written_with_all_its_digits() -> None:
    result, stored = _write_each_style(DECIMAL_TIME, PUT)
    written = result.writes[0].version[0]
    # Decimal(time.time()): the float's exact binary value (up to 31 significant digits at today's
    # epoch; fewer when the float's last bits are zero), stored and read back with every digit.
    assert written == Decimal(float(written))
    assert Decimal(stored[TIMESTAMP_ATTRIBUTE]["N"]) == written
    assert result.by_kind(SIDE_NAMES[0])["decimal_time"] == 1


@pytest.mark.parametrize("style", [STRING_TIMESTAMP, EPOCH_MILLISECONDS])
def test_an_invalid_version_is_written_as_such_and_counted(style: str) -> None:
    result, stored = _write_each_style(style, PUT)
    timestamp = stored[TIMESTAMP_ATTRIBUTE]
    if style == STRING_TIMESTAMP:
        assert set(timestamp) == {"S"}
    else:  # epoch milliseconds: a thousand times the clock, far beyond any allowed skew
        assert Decimal(timestamp["N"]) > Decimal(result.writes[0].started) * 999
    assert result.writes[0].version is None
    assert result.by_kind(SIDE_NAMES[0]) == {kind: int(kind == "invalid_version") for kind in WRITE_KINDS}


def test_each_table_gets_its_turn_with_its_own_key_types() -> None:
    operations = plan(LoadOptions(operations=900, rate=100, conflict_share=0.1, seed=5))
    for ops in operations.values():
        by_table = Counter(op.table.name for op in ops)
        assert by_table == {table.name: 300 for table in DEMO_TABLES}
    accounts = [op.key for ops in operations.values() for op in ops if op.table == ACCOUNTS]
    assert all(set(key) == {"account_id"} and key["account_id"]["N"].isdigit() for key in accounts)
    events = [op.key for ops in operations.values() for op in ops if op.table == EVENTS]
    assert all(isinstance(key["event_id"]["B"], bytes) for key in events)
    # bytes that are no UTF-8 text: the binary type is exercised as binary
    with pytest.raises(UnicodeDecodeError):
        events[0]["event_id"]["B"].decode("utf-8")


def test_only_cn_north_1s_own_profiles_are_restricted_and_carry_the_canary() -> None:
    options = LoadOptions(operations=3000, rate=100, conflict_share=0.1, cn_only_share=0.3, seed=8)
    operations = plan(options)
    canary = options.canary
    for side, ops in operations.items():
        for op in ops:
            text = json.dumps(op.attributes)
            if side != RESTRICTED_SIDE or op.conflict is not None or op.table != PROFILES:
                assert canary not in text and op.attributes.get(RESIDENCY_ATTRIBUTE) in (None, GLOBAL)
    puts = [
        op
        for op in operations[RESTRICTED_SIDE]
        if op.table == PROFILES and op.kind == PUT and op.conflict is None
    ]
    assert all(op.attributes[NATIONAL_ID].startswith(canary) for op in puts)
    restricted = [op for op in puts if op.attributes[RESIDENCY_ATTRIBUTE] == CN_ONLY]
    assert 0.2 < len(restricted) / len(puts) < 0.4
    assert all(op.attributes[RESTRICTED_NOTE] == canary for op in restricted)
    # every shared profile write says GLOBAL: a key both sides write stays exportable
    shared = [
        op for ops in operations.values() for op in ops if op.table == PROFILES and op.conflict is not None
    ]
    assert shared and all(
        op.attributes.get(RESIDENCY_ATTRIBUTE) == GLOBAL for op in shared if op.kind != DELETE
    )


def test_toggles_alternate_an_items_residency_and_remove_the_note_when_it_becomes_global() -> None:
    options = LoadOptions(operations=3000, rate=100, conflict_share=0, residency_toggle_share=0.5, seed=8)
    state: dict[tuple[str, str], str] = {}
    toggles = 0
    for op in plan(options)[RESTRICTED_SIDE]:
        if op.table != PROFILES:
            continue
        key = (op.pk, op.sk)
        if op.kind == PUT:
            state[key] = op.attributes[RESIDENCY_ATTRIBUTE]
        elif op.kind == UPDATE and RESIDENCY_ATTRIBUTE in op.attributes:
            toggles += 1
            becomes = op.attributes[RESIDENCY_ATTRIBUTE]
            assert becomes != state[key]
            assert (op.removed == (RESTRICTED_NOTE,)) == (becomes == GLOBAL)
            assert (op.attributes.get(RESTRICTED_NOTE) == options.canary) == (becomes == CN_ONLY)
            state[key] = becomes
        elif op.kind == DELETE:
            del state[key]
    assert toggles > 50


def test_every_table_is_written_with_its_key_types_and_toggles_remove_the_note() -> None:
    options = LoadOptions(
        operations=240, rate=1000, conflict_share=0.2, residency_toggle_share=0.5, threads=2
    )
    with mock_aws():
        clients = {side: boto3.client("dynamodb", region_name=side) for side in SIDE_NAMES}
        for client in clients.values():
            for table in DEMO_TABLES:
                _create_demo_table(client, table)
        names = {table.name: table.name for table in DEMO_TABLES}
        result = LoadGenerator(clients, names, options, progress=False).run()
        assert not [w for w in result.writes if w.error]
        assert {w.operation.table.name for w in result.writes} == set(names)
        stored = clients[RESTRICTED_SIDE].scan(TableName="profiles")["Items"]
        events = clients[RESTRICTED_SIDE].scan(TableName="events")["Items"]
    globals_ = [i for i in stored if i[RESIDENCY_ATTRIBUTE]["S"] == GLOBAL]
    assert globals_ and not any(RESTRICTED_NOTE in i for i in globals_)
    assert all(
        i[RESTRICTED_NOTE]["S"] == options.canary for i in stored if i[RESIDENCY_ATTRIBUTE]["S"] == CN_ONLY
    )
    assert events and all(i["event_id"]["B"].startswith(b"\xff") for i in events)
    assert sum(len(result.of_table(name).writes) for name in names) == len(result.writes)


def _create_demo_table(client: Any, table: DemoTable) -> None:
    keys = [(table.hash_key, "HASH")] + ([(table.range_key, "RANGE")] if table.range_key else [])
    client.create_table(
        TableName=table.name,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for (name, _), kind in keys],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": type_} for (name, type_), _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )
