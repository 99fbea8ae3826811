"""Property: with cn-north-1's residency rules (export only ``residency == 'GLOBAL'``, never
``national_id``), whatever the writes on both sides (items toggling their residency with versioned
and unversioned writes, deletes, the peer updating and deleting its copies) and whatever the
delivery order, duplicates and retries:

- both sides converge on the exportable projection: us-east-1 holds exactly cn-north-1's item less
  ``national_id`` where that item passes the filter, and otherwise nothing, or only its own write
  that lost to a newer restricted write here (residency is enforced on what leaves, not on what the
  peer's applications write: docs/residency.md);
- a canary value, written in ``national_id``, in an attribute of items that may not leave and in the
  key of an item that never passes, appears in no record ever put into the peer's inbox (decoded), no
  log line of the engine, no failure-queue message, and not in the peer's table.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from replication.residency import ResidencyRules
from replication.telemetry import SERVICE
from replication.versions import Version, version_of
from replication.wire import decode

from .harness import NAMES, TABLE, Pair, Side

BASE = Decimal(4_000_000_000)  # far ahead, as in test_convergence: the engine's clock is set there
CANARY = "CANARY-110101199003077777"
RULES = ResidencyRules.from_entry(
    {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": ["national_id"]},
    "TABLES['profiles'].residency",
    protected=["pk", "sk", NAMES.timestamp, NAMES.origin],
)
KEYS = [{"pk": {"S": f"user#{i}"}, "sk": {"S": "profile"}} for i in range(3)]
SECRET_KEY = {"pk": {"S": f"user#{CANARY}"}, "sk": {"S": "profile"}}  # only ever CN-ONLY


@dataclass(frozen=True)
class ChinaWrite:
    key: int
    offset: int
    residency: str
    value: str
    whole_item: bool  # PutItem of the whole item, else UpdateItem of its fields


@dataclass(frozen=True)
class ChinaFlip:
    """An UpdateItem of the residency alone, leaving the version as it was (the forwarder stamps it)."""

    key: int
    residency: str


@dataclass(frozen=True)
class ChinaDelete:
    key: int


@dataclass(frozen=True)
class SecretWrite:
    delete: bool


@dataclass(frozen=True)
class PeerUpdate:
    """us-east-1's application updates its copy, if it has one (its copies never hold national_id)."""

    key: int
    offset: int
    value: str


@dataclass(frozen=True)
class PeerDelete:
    key: int


@dataclass(frozen=True)
class Pump:
    side: int
    records: int


@dataclass(frozen=True)
class Deliver:
    side: int
    share: float


keys = st.integers(0, len(KEYS) - 1)
residencies = st.sampled_from(["GLOBAL", "CN-ONLY"])
values = st.sampled_from(["a", "b", "c"])
offsets = st.integers(0, 3)
steps = st.one_of(
    st.builds(ChinaWrite, keys, offsets, residencies, values, st.booleans()),
    st.builds(ChinaFlip, keys, residencies),
    st.builds(ChinaDelete, keys),
    st.builds(SecretWrite, st.booleans()),
    st.builds(PeerUpdate, keys, offsets, values),
    st.builds(PeerDelete, keys),
    st.builds(Pump, st.integers(0, 1), st.integers(1, 4)),
    st.builds(Deliver, st.integers(0, 1), st.sampled_from([0.5, 1.0])),
)


def _floor(side: Side, key: dict[str, Any]) -> Decimal:
    """What a writer with a correct clock has already seen of ``key`` on its side."""
    item = side.get(key)
    seen = [version_of(item, NAMES)] if item else []
    seen += [t.version for t in side.writer.tombstones([key]).values()]
    return max((v.timestamp for v in seen if v is not None), default=Decimal(0))


def _restricted(residency: str) -> tuple[str, str, dict[str, Any]]:
    """What goes with ``residency`` in an UpdateItem (more SET, a REMOVE, values): an item that may
    not leave carries the canary in an ordinary attribute too; one that may leave does not."""
    if residency == "GLOBAL":
        return "", " REMOVE note", {}
    return ", note = :canary", "", {":canary": {"S": CANARY}}


def _china_write(china: Side, step: ChinaWrite) -> None:
    key = KEYS[step.key]
    ts = max(BASE + step.offset, _floor(china, key) + 1)
    if step.whole_item:
        item = {"residency": {"S": step.residency}, "v": {"S": step.value}, "national_id": {"S": CANARY}}
        if step.residency != "GLOBAL":
            item["note"] = {"S": CANARY}
        china.put(key, item, str(ts))
        return
    more, remove, more_values = _restricted(step.residency)
    china.db.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression=f"SET residency = :r, v = :v, national_id = :id, #ts = :ts, #o = :o{more}{remove}",
        ExpressionAttributeNames={"#ts": NAMES.timestamp, "#o": NAMES.origin},
        ExpressionAttributeValues={
            ":r": {"S": step.residency},
            ":v": {"S": step.value},
            ":id": {"S": CANARY},
            ":ts": {"N": str(ts)},
            ":o": {"S": china.region},
            **more_values,
        },
    )


def _china_flip(china: Side, step: ChinaFlip) -> None:
    key = KEYS[step.key]
    if china.get(key) is None:
        return
    more, remove, more_values = _restricted(step.residency)
    china.db.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression=f"SET residency = :r{more}{remove}",
        ExpressionAttributeValues={":r": {"S": step.residency}, **more_values},
    )


def _run(steps_: list[Any], seed: int) -> Pair:
    rng = random.Random(seed)
    pair = Pair(clock=lambda: float(BASE), china_residency=RULES)
    china, us = pair.china, pair.us
    for step in steps_:
        if isinstance(step, ChinaWrite):
            _china_write(china, step)
        elif isinstance(step, ChinaFlip):
            _china_flip(china, step)
        elif isinstance(step, ChinaDelete):
            china.delete(KEYS[step.key])
        elif isinstance(step, SecretWrite):
            if step.delete:
                china.delete(SECRET_KEY)
            else:
                ts = _floor(china, SECRET_KEY) + 1
                china.put(SECRET_KEY, {"residency": {"S": "CN-ONLY"}, "national_id": {"S": CANARY}}, str(ts))
        elif isinstance(step, PeerUpdate):
            key = KEYS[step.key]
            copy = us.get(key)
            if copy is not None:
                ts = max(BASE + step.offset, _floor(us, key) + 1)
                attributes = {k: v for k, v in copy.items() if k not in (*key, NAMES.timestamp, NAMES.origin)}
                us.put(key, {**attributes, "v": {"S": step.value}}, str(ts))
        elif isinstance(step, PeerDelete):
            if us.get(KEYS[step.key]) is not None:
                us.delete(KEYS[step.key])
        elif isinstance(step, Pump):
            pair.sides()[step.side].forward(step.records, retry_once=rng.random() < 0.3)
        elif isinstance(step, Deliver):
            side = pair.sides()[step.side]
            cut = int(len(side.sender.outbox) * step.share)
            batch, side.sender.outbox = side.sender.outbox[:cut], side.sender.outbox[cut:]
            rng.shuffle(batch)
            pair.peer(side).replicate(batch + [r for r in batch if rng.random() < 0.3])
    pair.settle(rng)
    return pair


def _newest_here(china: Side, key: dict[str, Any]) -> Version | None:
    """The newest version cn-north-1 holds of ``key``: its item's, or its remembered delete's."""
    item = china.get(key)
    found = [version_of(item, NAMES)] if item else []
    found += [t.version.as_upsert() for t in china.writer.tombstones([key]).values()]
    present = [v for v in found if v is not None]
    return max(present, key=Version.order) if present else None


def _failure_messages(side: Side) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = side.sqs.receive_message(QueueUrl=side.queue_url, MaxNumberOfMessages=10).get("Messages")
        if not messages:
            return bodies
        bodies += [message["Body"] for message in messages]


def _check(pair: Pair, log_records: list[logging.LogRecord]) -> None:
    china, us = pair.china, pair.us
    for key in KEYS:
        here, there = china.get(key), us.get(key)
        if here is not None and RULES.passes(here):
            assert there == RULES.project(here), f"{key}: us-east-1 must hold the exportable projection"
        elif there is not None:
            # Only the peer's own write that lost here to a newer restricted write may stay there.
            held = version_of(there, NAMES)
            newest = _newest_here(china, key)
            assert held is not None and held.origin == us.region, f"{key}: a restricted item stayed abroad"
            assert newest is not None and held < newest, f"{key}: the peer's write should have won"
    assert us.get(SECRET_KEY) is None
    # The canary never left: not on the wire, not in the peer's table, the logs, the failure queues.
    for record in china.sender.sent:
        assert CANARY not in repr(decode(record.data)), "the canary is on the wire"
        assert CANARY not in record.partition_key
    assert CANARY not in json.dumps(us.items(), default=str)
    for log_record in log_records:
        assert CANARY not in json.dumps(vars(log_record), default=str), "the canary is in a log line"
    for side in pair.sides():
        assert all(CANARY not in body for body in _failure_messages(side)), "the canary is in a message"


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> int:
    return 1000 if request.config.getoption("--slow") else 12


def test_residency_rules_converge_on_the_exportable_projection_and_the_canary_never_leaves(
    examples: int, caplog: pytest.LogCaptureFixture
) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps_=st.lists(steps, max_size=25), seed=st.integers(0, 2**16))
    def check(steps_: list[Any], seed: int) -> None:
        caplog.clear()
        with mock_aws(), caplog.at_level(logging.DEBUG, logger=SERVICE):
            pair = _run(steps_, seed)
            _check(pair, list(caplog.records))

    check()
