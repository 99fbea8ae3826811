"""The replicator's AWS calls, byte for byte, for a fixed realistic batch (issue 13).

The replicator's CPU is cut by changing how it computes what it sends, never what it sends: the
protocol is proven by the interleaving tests (an hour), which are not re-run for a change of speed.
This test pins the sequence of calls and every request body (DynamoDB JSON, and the failure queue's
SendMessage) for a deterministic batch of inbox records, built with the engine's own wire encoding,
covering every outcome the replicator decides on: new items (put, then the tombstone read), updates,
stale changes, ties (the same version held, by origin too), deletes (held older, absent, held newer),
a delete and an upsert of one key with one version, remembered deletes that win over a created
item, older remembered deletes, items without a version (replaced, or kept by a newer remembered
delete), several versions of a key across records (coalesced), refused changes (ahead of the clock,
reserved attribute, malformed in the record), poison records (not base64, bad magic, a table not
served, the local side as origin) and a probe. The golden digests were computed from the
implementation before the CPU work (``tests/engine/data/replicator_wire_golden.json``; regenerate
only for an intended protocol change, with ``REPLICATOR_GOLDEN_WRITE=1``).
"""

from __future__ import annotations

import base64
import random
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication import wire
from replication.applying import ApplyReport, Replicator
from replication.changes import Change
from replication.keys import key_digest
from replication.settings import ReplicatorSettings
from replication.table_writer import Outcome, TableWriter
from replication.typed_values import to_client
from replication.versions import Version
from replication.wire import KIND_CHANGES, KIND_PROBE, Envelope

from .golden import assert_golden, assert_same_calls, profile, text, versioned
from .harness import (
    LOGICAL,
    NAMES,
    TABLE,
    TOMBSTONES,
    create_tables,
    no_sleep_backoff,
    served_table,
    session,
    side_settings,
)

GOLDEN = Path(__file__).parent / "data" / "replicator_wire_golden.json"
REGION, PEER = "us-east-1", "cn-north-1"  # the replicator's side, and where its records come from
BASE = 1764547200  # every version and clock is fixed: the bodies are deterministic
CLOCK = BASE + 120.25
SENT_AT_MS = int((BASE + 100) * 1000)
KINDS = (
    ("new", 90),
    ("update", 30),
    ("stale", 10),
    ("tie", 6),
    ("tie_origin", 4),
    ("delete", 12),
    ("delete_absent", 6),
    ("delete_stale", 4),
    ("delete_vs_upsert", 4),
    ("tombstone_hit", 5),
    ("tombstone_older", 4),
    ("unversioned", 4),
    ("unversioned_tombstoned", 3),
    ("coalesced", 6),
    ("ahead", 3),
    ("reserved", 3),
    ("malformed", 3),
)
CHANGES_PER_RECORD = 25
TOKEN = re.compile(rb'"ClientRequestToken": "[0-9a-f-]{36}"')


def _upsert(key: dict[str, Any], rng: random.Random, timestamp: Decimal, created: int) -> Change:
    return Change(
        key, Version(timestamp, PEER), versioned(key, rng, timestamp, PEER, binary_set=True), created
    )


def _delete(key: dict[str, Any], timestamp: Decimal, created: int) -> Change:
    return Change(key, Version(timestamp, PEER, True), None, created)


class Scenario:
    """The inbox records, and what the replicator's side holds before (items, tombstone rows)."""

    def __init__(self) -> None:
        rng = random.Random(1313)
        kinds = [kind for kind, count in KINDS for _ in range(count)]
        rng.shuffle(kinds)
        self.items: list[dict[str, Any]] = []
        self.tombstones: list[tuple[dict[str, Any], dict[str, Any]]] = []
        changes: list[Change | list[Any]] = []  # a list: a malformed change, as it is sent
        later: list[Change] = []  # the second change of coalesced keys, in the last records
        old = Decimal(BASE)
        for index, kind in enumerate(kinds):
            key = {"pk": {"S": f"user#{index:05d}#{text(rng, 4, 10)}"}, "sk": {"S": "profile"}}
            stamp = Decimal(BASE + 60) + Decimal(index) / 1000
            created = BASE + 60 + index // 100
            if kind == "new":
                changes.append(_upsert(key, rng, stamp, created))
            elif kind == "update":
                self.items.append(versioned(key, rng, old, PEER, binary_set=True))
                changes.append(_upsert(key, rng, stamp, created))
            elif kind == "stale":
                self.items.append(versioned(key, rng, stamp + 1, REGION, binary_set=True))
                changes.append(_upsert(key, rng, stamp, created))
            elif kind == "tie":
                change = _upsert(key, rng, stamp, created)
                self.items.append(change.item)  # type: ignore[arg-type]
                changes.append(change)
            elif kind == "tie_origin":  # the same timestamp, a later origin ("us-" > "cn-")
                self.items.append(versioned(key, rng, stamp, REGION, binary_set=True))
                changes.append(_upsert(key, rng, stamp, created))
            elif kind == "delete":
                self.items.append(versioned(key, rng, old, PEER, binary_set=True))
                changes.append(_delete(key, stamp, created))
            elif kind == "delete_absent":
                changes.append(_delete(key, stamp, created))
            elif kind == "delete_stale":
                self.items.append(versioned(key, rng, stamp + 1, REGION, binary_set=True))
                changes.append(_delete(key, stamp, created))
            elif kind == "delete_vs_upsert":  # one version: the delete wins
                self.items.append(versioned(key, rng, old, PEER, binary_set=True))
                changes.append(_upsert(key, rng, stamp, created))
                later.append(_delete(key, stamp, created))
            elif kind == "tombstone_hit":
                changes.append(_upsert(key, rng, stamp, created))
                self.tombstones.append((key, {"ts": {"N": str(stamp + 1)}, "o": {"S": REGION}}))
            elif kind == "tombstone_older":
                changes.append(_upsert(key, rng, stamp, created))
                self.tombstones.append((key, {"ts": {"N": str(old)}, "o": {"S": REGION}}))
            elif kind == "unversioned":
                self.items.append({**key, **profile(rng, binary_set=True)})
                changes.append(_upsert(key, rng, stamp, created))
            elif kind == "unversioned_tombstoned":
                self.items.append({**key, **profile(rng, binary_set=True)})
                changes.append(_upsert(key, rng, stamp, created))
                self.tombstones.append((key, {"ts": {"N": str(stamp + 1)}, "o": {"S": REGION}}))
            elif kind == "coalesced":
                self.items.append(versioned(key, rng, old, PEER, binary_set=True))
                changes.append(_upsert(key, rng, stamp, created))
                later.append(_upsert(key, rng, stamp + Decimal("0.0005"), created))
            elif kind == "ahead":
                changes.append(_upsert(key, rng, Decimal(BASE * 1000), created))
            elif kind == "reserved":
                change = _upsert(key, rng, stamp, created)
                changes.append(Change(key, change.version, {**change.item, "_ddbrep_x": {"S": "y"}}, created))  # type: ignore[dict-item]
            elif kind == "malformed":
                attributes = {**profile(rng, binary_set=True), "age": {"N": "not a number"}}
                attributes.update({NAMES.timestamp: {"N": str(stamp)}, NAMES.origin: {"S": PEER}})
                changes.append([key, attributes])
        changes.extend(later)
        self.records: list[dict[str, Any]] = []
        for start in range(0, len(changes), CHANGES_PER_RECORD):
            self._add(self._changes_data(changes[start : start + CHANGES_PER_RECORD]))
            if start == CHANGES_PER_RECORD:  # poison records and a probe among the others
                self.records.append(self._event("@@not base64@@"))
                self._add(b"XX" + bytes(20))
                probe = Envelope(KIND_PROBE, PEER, TABLE, NAMES, SENT_AT_MS, probe_id="probe-1313")
                self._add(wire.encode(probe))
                self._add(self._changes_data(changes[:2], name="orders"))
                self._add(self._changes_data(changes[:2], origin=REGION))

    @staticmethod
    def _changes_data(changes: list[Change | list[Any]], *, name: str = LOGICAL, origin: str = PEER) -> bytes:
        """A record as the forwarder encodes it (``wire.encode``); a malformed change spliced in as
        its JSON, where the forwarder could not have sent it."""
        valid = [c for c in changes if isinstance(c, Change)]
        envelope = Envelope(KIND_CHANGES, origin, TABLE, NAMES, SENT_AT_MS, tuple(valid), name=name)
        if len(valid) == len(changes):
            return wire.encode(envelope)
        encoded = [wire._json(wire._encode_change(c) if isinstance(c, Change) else c) for c in changes]
        body = wire._changes_prefix(envelope) + b",".join(encoded) + b"]}"
        return wire._frame(body)

    def _add(self, data: bytes) -> None:
        self.records.append(self._event(base64.b64encode(data).decode("ascii")))

    def _event(self, data: str) -> dict[str, Any]:
        sequence = f"4959{len(self.records):052d}"
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": f"p{len(self.records)}",
                "sequenceNumber": sequence,
                "data": data,
                "approximateArrivalTimestamp": BASE + 110.5,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{sequence}",
            "eventName": "aws:kinesis:record",
            "awsRegion": REGION,
            "eventSourceARN": f"arn:aws:kinesis:{REGION}:123456789012:stream/inbox",
        }


def run_replicator(concurrency: int) -> tuple[list[tuple[str, bytes]], ApplyReport]:
    """The replicator's calls for the scenario, in moto: (operation, request body) in order."""
    scenario = Scenario()
    db = session().client("dynamodb", region_name=REGION)
    sqs = session().client("sqs", region_name=REGION)
    create_tables(db)
    queue_url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    served = served_table(REGION)
    for item in scenario.items:
        db.put_item(TableName=served.table.table_name, Item=to_client(item))
    for key, row in scenario.tombstones:
        db.put_item(
            TableName=TOMBSTONES,
            Item={"k": {"S": f"{LOGICAL}/{key_digest(key)}"}, **row, "src": {"S": "local"}},
        )
    calls: list[tuple[str, bytes]] = []

    def record_call(request: Any, event_name: str, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        operation = event_name.rsplit(".", maxsplit=1)[-1]
        if operation == "TransactWriteItems":
            # botocore fills in the idempotency token (a fresh uuid4) of each call: not the engine's.
            body, count = TOKEN.subn(b'"ClientRequestToken": "<token>"', body)
            assert count == 1, body
        calls.append((operation, body))

    db.meta.events.register("before-send.dynamodb", record_call)
    sqs.meta.events.register("before-send.sqs", record_call)
    writer = TableWriter(db, served.table, backoff_factory=no_sleep_backoff, clock=lambda: CLOCK)
    settings = ReplicatorSettings(side_settings(REGION), {LOGICAL: served}, queue_url, concurrency)
    replicator = Replicator(settings, {LOGICAL: writer}, sqs, clock=lambda: CLOCK)
    report = replicator.process(scenario.records)
    return calls, report


def test_the_scenario_reaches_every_outcome(aws: None) -> None:
    _, report = run_replicator(1)
    assert not report.failed, report
    assert report.poison == 4 and report.probes == 1
    assert report.outcomes[Outcome.APPLIED] and report.outcomes[Outcome.STALE]
    assert report.outcomes[Outcome.TOMBSTONED] == 5 + 3
    assert set(report.refused) == {"VersionAheadOfClock", "ReservedAttributeInChange", "WireFormatError"}


def test_the_replicators_calls_are_the_golden_ones(aws: None) -> None:
    """One key at a time (the writes' order across keys is otherwise the thread pool's): the exact
    sequence."""
    calls, _ = run_replicator(1)
    operations = {operation for operation, _ in calls}
    # The scenario reaches every call the replicator makes here.
    assert operations == {
        "BatchGetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "SendMessage",
    }, operations
    assert_golden(calls, GOLDEN, "REPLICATOR_GOLDEN_WRITE")


def test_with_the_thread_pool_the_same_calls(aws: None) -> None:
    """The replicator's own concurrency: the same calls, in an order only the thread pool chooses."""
    calls, _ = run_replicator(16)
    assert_same_calls(calls, GOLDEN)
