"""Property: whatever the interleaving of writes on both sides and whatever the delivery order,
duplicates and retries, both tables end identical, equal to a last-writer-wins oracle, and no
deleted item comes back; on tables keyed by strings, numbers or binary values alike."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from replication.typed_values import from_client
from replication.versions import Version, version_of

from .harness import NAMES, Pair, Side

# Far in the future, so a delete's version is always "right after the version it removed"; the
# engine's clock is set there too, so these versions are within its allowed clock skew.
BASE = Decimal(4_000_000_000)
# Keys of each type DynamoDB allows for key attributes (S, N, B). The numbers are written in forms
# DynamoDB stores differently (it trims zeros), one with all 38 significant digits.
KEYS_BY_TYPE = {
    "S": [{"pk": {"S": f"user#{i}"}, "sk": {"S": "profile"}} for i in range(3)],
    "N": [
        {"pk": {"N": pk}, "sk": {"N": "0.50"}}
        for pk in ("1.50", "-7E-3", "1234567890123456789.0123456789012345678")
    ],
    "B": [{"pk": {"B": bytes([i, 0xFF])}, "sk": {"B": b"\x00"}} for i in range(3)],
}
# The numbers as DynamoDB stores them, so as stream records carry them (developer guide, "Supported
# data types and naming rules": leading and trailing zeros are trimmed).
STORED_NUMBERS = {
    "1.50": "1.5",
    "-7E-3": "-0.007",
    "0.50": "0.5",
    "1234567890123456789.0123456789012345678": "1234567890123456789.0123456789012345678",
}
KEYS = KEYS_BY_TYPE["S"]
key_types = st.sampled_from(sorted(KEYS_BY_TYPE))


def _examples(request_slow: bool) -> int:
    return 2000 if request_slow else 100


@dataclass(frozen=True)
class Write:
    side: int
    key: int
    offset: int
    value: str
    whole_item: bool  # PutItem of the whole item, else UpdateItem of one field


@dataclass(frozen=True)
class UnstampedUpdate:
    side: int
    key: int
    value: str


@dataclass(frozen=True)
class Delete:
    side: int
    key: int


@dataclass(frozen=True)
class Pump:
    side: int
    records: int


@dataclass(frozen=True)
class Deliver:
    side: int
    share: float


sides = st.integers(0, 1)
keys = st.integers(0, len(KEYS) - 1)
values = st.sampled_from(["a", "b", "c", "d"])
stamped_steps = st.one_of(
    st.builds(Write, sides, keys, st.integers(0, 3), values, st.booleans()),
    st.builds(Delete, sides, keys),
    st.builds(Pump, sides, st.integers(1, 4)),
    st.builds(Deliver, sides, st.sampled_from([0.5, 1.0])),
)
any_steps = st.one_of(stamped_steps, st.builds(UnstampedUpdate, sides, keys, values))


Event = tuple[Version, dict[str, Any] | None]


class Oracle:
    """Every write that happened, with its version; the newest one per key is the expected end."""

    def __init__(self) -> None:
        self.events: dict[int, list[tuple[Version, dict[str, Any] | None]]] = {
            i: [] for i in range(len(KEYS))
        }

    def expected(self, key: int) -> dict[str, Any] | None:
        if not self.events[key]:
            return None
        return max(self.events[key], key=lambda event: event[0].order())[1]


def _stream_key(key: dict[str, Any]) -> dict[str, Any]:
    """A key the test wrote, as a stream record carries it (binary in base64, numbers as stored)."""
    return {
        name: {"N": STORED_NUMBERS[value["N"]]} if "N" in value else value
        for name, value in from_client(key).items()
    }


def _local_floor(side: Side, key: dict[str, Any]) -> Decimal:
    """What a writer with a correct clock has already seen on its side: it writes later than that."""
    item = side.get(key)
    seen = [version_of(item, NAMES)] if item else []
    tombstone = side.writer.tombstones([_stream_key(key)])
    seen += [t.version for t in tombstone.values()]
    return max((v.timestamp for v in seen if v is not None), default=Decimal(0))


def _run(steps: list[Any], seed: int, oracle: Oracle | None, key_type: str = "S") -> Pair:
    rng = random.Random(seed)
    pair = Pair(key_type=key_type, clock=lambda: float(BASE))
    typed_keys = KEYS_BY_TYPE[key_type]
    both = pair.sides()
    for step in steps:
        side = both[step.side]
        key = typed_keys[getattr(step, "key", 0)]
        if isinstance(step, Write):
            ts = max(BASE + step.offset, _local_floor(side, key) + 1)
            if step.whole_item:
                side.put(key, {"v": {"S": step.value}}, str(ts))
            else:
                side.db.update_item(
                    TableName="profiles",
                    Key=key,
                    UpdateExpression="SET v = :v, #ts = :ts, #o = :o",
                    ExpressionAttributeNames={"#ts": NAMES.timestamp, "#o": NAMES.origin},
                    ExpressionAttributeValues={
                        ":v": {"S": step.value},
                        ":ts": {"N": str(ts)},
                        ":o": {"S": side.region},
                    },
                )
            if oracle:
                oracle.events[step.key].append((Version(ts, side.region), side.get(key)))
        elif isinstance(step, UnstampedUpdate):
            if side.get(key) is not None:
                side.update_field(key, "v", step.value)
        elif isinstance(step, Delete):
            removed = side.get(key)
            side.delete(key)
            if oracle and removed is not None:
                version = version_of(removed, NAMES)
                assert version is not None
                oracle.events[step.key].append((Version(version.timestamp, version.origin, True), None))
        elif isinstance(step, Pump):
            side.forward(step.records, retry_once=rng.random() < 0.3)
        elif isinstance(step, Deliver):
            outbox = side.sender.outbox
            cut = int(len(outbox) * step.share)
            batch, side.sender.outbox = outbox[:cut], outbox[cut:]
            rng.shuffle(batch)
            pair.peer(side).replicate(batch + [r for r in batch if rng.random() < 0.3])
    pair.settle(rng)
    return pair


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> int:
    return _examples(request.config.getoption("--slow"))


def test_stamped_writes_converge_to_the_last_writer_wins_oracle(examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(stamped_steps, max_size=30), seed=st.integers(0, 2**16), key_type=key_types)
    def check(steps: list[Any], seed: int, key_type: str) -> None:
        with mock_aws():
            oracle = Oracle()
            pair = _run(steps, seed, oracle, key_type)
            for index, key in enumerate(KEYS_BY_TYPE[key_type]):
                expected = oracle.expected(index)
                assert pair.china.get(key) == expected, f"cn-north-1 {key}"
                assert pair.us.get(key) == expected, f"us-east-1 {key}"

    check()


def test_any_writes_including_unversioned_ones_leave_both_tables_identical(examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(any_steps, max_size=30), seed=st.integers(0, 2**16), key_type=key_types)
    def check(steps: list[Any], seed: int, key_type: str) -> None:
        with mock_aws():
            pair = _run(steps, seed, None, key_type)
            assert pair.china.items() == pair.us.items()

    check()
