"""The interleaving harness: the application writes a key between any two of the engine's calls on it.

Every multi-call sequence of the engine (the forwarder's stamp, its enforcement of a delete, the local
delete's tombstone-then-delete, the replicator's upsert and delete, their tombstone writes) must stay
correct when the application writes the same key between two of its AWS calls (docs/conflict-rules.md,
issue 9 fault 5). A ``Run`` builds the in-process pair of ``harness.Pair`` with the engine's DynamoDB
client wrapped: every call the engine makes on the key is logged with the pipeline that made it and its
outcome, and while a scenario's sequence runs (the *act*) the calls on the local side are numbered. A
``Case`` names a scenario, a boundary and an application write:

- boundary 0: before the forwarder reads its batch (the write joins the batch; forwarder acts only);
- boundary k: right before the engine's call k on the key;
- the last boundary: after the sequence's last call.

Boundaries are discovered by running the scenario once without a write and recording its calls: nothing
here names or counts the engine's calls, so a reworked write protocol is tested by the same cases.

After the act both pipelines run to quiescence and both tables must hold what the last-writer-wins
oracle of docs/conflict-rules.md says (``Run.oracle``, ``Run.problems``): every application write gets
the version the rules give it (its own if newer than the one it replaced; for a delete,
``max(removed version, stream second)``; otherwise the stamp the forwarder gave it, read from the
stream as ``replication_ops/local/verify.py`` does for the demo, which must come after everything its
side held or deleted before the write), and the newest one wins. A write that never got its stamp may
only have been lost to a later application write, to a replicated change, or (if it left the item
with a version) to the removal of the item for a newer remembered delete; anything else is a
divergence, and so is a pipeline failure.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodbstreams.models import dynamodbstreams_backends

from replication.keys import key_digest
from replication.table_writer import DELETE_MARK
from replication.typed_values import from_client
from replication_ops.local import moto_fidelity

from .events import stream_event_record
from .harness import NAMES, TABLE, TOMBSTONES, Pair, Side

moto_fidelity.apply()  # for runs outside pytest too (tests/conftest.py applies it for the suite)

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
REPLAY = ".venv/bin/pytest tests/engine/test_interleaving.py -s"
KEY_DIGEST = key_digest(KEY)
CITY = "city"
# Points in time, in seconds after the run's start second (the stream clock reads about 0 during a run).
OLDEST = Decimal(-30)  # before every version a scenario writes
V1 = Decimal(-20)  # the version a scenario's item starts with
OLDER_THAN_V1 = Decimal(-25)
MIDDLE = Decimal(-15)  # newer than V1, older than V2 and than every delete (the stream clock)
V2 = Decimal(-10)
# Ahead of the stream clock, by margins a slow run never uses up, within any sensible clock-skew bound:
AHEAD = Decimal(30)  # a scenario version ahead of the stream clock: a delete of it takes its place
NEWEST = Decimal(60)  # after everything else in a run ("d + 5 s" of issue 9 fault 5)
AT = {"oldest": OLDEST, "middle": MIDDLE, "newest": NEWEST}

Order = tuple[Decimal, str, bool]
Item = dict[str, Any]


# -- the application's writes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """An application write run at a boundary: PutItem or UpdateItem of one field, with a version at
    a named point in time (``AT``) or without one, or DeleteItem."""

    operation: str  # "put", "update" or "delete"
    at: str | None = None  # a key of AT; None: the write sets no version

    @property
    def name(self) -> str:
        if self.operation == "delete":
            return self.operation
        return f"{self.operation}-{self.at or 'unversioned'}"

    def describe(self) -> str:
        if self.operation == "delete":
            return "DeleteItem"
        what = "PutItem of the whole item" if self.operation == "put" else f"UpdateItem SET {CITY}"
        if self.at is None:
            return f"{what}, no version"
        return f"{what} with version ({self.at}: {AT[self.at]:+} s, own region)"


WRITES = [
    *(Write(operation, at) for operation in ("put", "update") for at in ("newest", "middle", "oldest", None)),
    Write("delete"),
]
WRITES_BY_NAME = {write.name: write for write in WRITES}


@dataclass
class Entry:
    """One line of a run's log: an application write or an engine call on the key, in order."""

    serial: int
    side: str
    actor: str  # "application", "forwarder", "replicator"
    text: str
    outcome: str = ""  # "ok" or the DynamoDB error code
    changed_item: bool = False  # a successful write to the item (not only to its tombstone)
    act_call: int | None = None  # the call's number during the act, on the local side


@dataclass
class AppWrite:
    entry: Entry
    side: str
    label: str
    old: Item | None
    new: Item | None


# -- scenarios -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """An engine sequence on the local side, and the starting state that leads to it.

    ``setup(run, local, peer)`` writes and replicates until the sequence's input is ready: the
    records on the local side's stream (``act == "forwarder"``) or the changes in the peer's outbox
    (``act == "replicator"``).
    """

    name: str
    given: str
    act: str  # "forwarder": the local forwarder's next batch; "replicator": the peer's outbox applied
    setup: Callable[[Run, Side, Side], None]


@dataclass(frozen=True)
class Case:
    """A scenario on one side, and the application's writes: each at a boundary of the sequence
    (numbered in this case's own run; later writes at later boundaries)."""

    scenario: Scenario
    local: str  # region where the sequence runs and the application writes
    writes: tuple[tuple[int, Write], ...]

    @property
    def name(self) -> str:
        steps = "/".join(f"{boundary}/{write.name}" for boundary, write in self.writes)
        return f"{self.scenario.name}@{self.local}/{steps}"

    @classmethod
    def parse(cls, name: str, scenarios: dict[str, Scenario]) -> Case:
        """The case a failure report names (``scenario@region/boundary/write[/boundary/write]``)."""
        head, *steps = name.split("/")
        scenario, local = head.split("@")
        pairs = zip(steps[::2], steps[1::2], strict=True)
        writes = tuple((int(boundary), WRITES_BY_NAME[write]) for boundary, write in pairs)
        return cls(scenarios[scenario], local, writes)


# -- a run -----------------------------------------------------------------------------------------


class EngineClient:
    """The engine's DynamoDB client on one side, logging every call that concerns ``KEY``."""

    def __init__(self, run: Run, side: Side, inner: Any) -> None:
        self._run = run
        self._side = side
        self._inner = inner
        self._operations: dict[str, str] = inner.meta.method_to_api_mapping

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        operation = self._operations.get(name)
        if operation is None:
            return attribute

        def call(**kwargs: Any) -> Any:
            if not _mentions_key(kwargs):
                return attribute(**kwargs)
            entry = self._run.engine_call(self._side, operation, kwargs)
            try:
                result = attribute(**kwargs)
            except ClientError as error:
                entry.outcome = error.response.get("Error", {}).get("Code", "error")
                reasons = error.response.get("CancellationReasons")
                if reasons:
                    entry.outcome += " " + str([reason.get("Code") for reason in reasons])
                raise
            entry.outcome = "ok"
            entry.changed_item = _writes_item(operation, kwargs)
            return result

        return call


class StreamTap:
    """The side's DynamoDB Streams client, keeping every record GetRecords returned (in order)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.records: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_records(self, **kwargs: Any) -> Any:
        response = self._inner.get_records(**kwargs)
        self.records.extend(response["Records"])
        return response


def _mentions_key(value: Any) -> bool:
    """The request names the key: as an item key (``Key``, ``Item``, ...) or in a tombstone row's id."""
    if isinstance(value, dict):
        if all(value.get(name) == typed for name, typed in KEY.items()):
            return True
        return any(_mentions_key(inner) for inner in value.values())
    if isinstance(value, list):
        return any(_mentions_key(inner) for inner in value)
    # A tombstone row's id ends with the key's digest ("NAME/DIGEST", "removed#NAME/DIGEST").
    return isinstance(value, str) and value.endswith(KEY_DIGEST)


def _writes_item(operation: str, request: dict[str, Any]) -> bool:
    """A successful request that writes the item itself (not its tombstone, not a read)."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return request.get("TableName") == TABLE
    if operation == "TransactWriteItems":
        return any(
            action.get("TableName") == TABLE
            for item in request.get("TransactItems", [])
            for kind, action in item.items()
            if kind in ("Put", "Update", "Delete")
        )
    if operation == "BatchWriteItem":
        return TABLE in request.get("RequestItems", {})
    return False


def _describe_call(operation: str, request: dict[str, Any]) -> str:
    tables = sorted(set(_table_names(request)))
    detail = request.get("UpdateExpression") or request.get("ConditionExpression") or ""
    text = f"{operation} {'+'.join(tables)}"
    return f"{text} [{detail}]" if detail else text


def _table_names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == "TableName" and isinstance(inner, str):
                yield inner
            elif name == "RequestItems" and isinstance(inner, dict):
                yield from inner
            else:
                yield from _table_names(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _table_names(inner)


class Run:
    """One pair, one scenario: the application's writes, both pipelines, the log and the oracle."""

    def __init__(self, scenario: Scenario, local: str) -> None:
        self.scenario = scenario
        self.base = Decimal(int(time.time()))
        self.log: list[Entry] = []
        self.writes: list[AppWrite] = []
        self.problems_seen: list[str] = []  # pipeline failures noticed while running
        self.actor = "application"
        self.acting = False
        self.act_calls: list[Entry] = []
        self._armed: dict[int, Write] = {}
        self._before: dict[str, Callable[[], None]] = {}
        self._seen: dict[str, int] = {}
        self.pair = Pair(engine_client=lambda side, db: EngineClient(self, side, db))
        self._taps: dict[str, StreamTap] = {}
        for side in self.pair.sides():
            self._label(side)
            self._taps[side.region] = side.streams = StreamTap(side.streams)
        self.local = self.pair.china if local == self.pair.china.region else self.pair.us
        self.peer = self.pair.peer(self.local)
        self._cities = 0

    # -- the world's state, kept and put back (``World``) ------------------------------------------

    def snapshot(self) -> Snapshot:
        """Everything a case changes: both sides' tables and streams inside moto (items, stream
        records, shard iterators), where each pipeline stands, and this run's log."""
        tables, streams, iterators = {}, {}, {}
        for side in self.pair.sides():
            backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][side.region]
            for name in (TABLE, TOMBSTONES):
                tables[(side.region, name)] = copy.deepcopy(backend.tables[name].items)
            streams[side.region] = len(backend.tables[TABLE].stream_shard.items)
            iterators[side.region] = dict(
                dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][side.region].shard_iterators
            )
        own = (
            self.base,
            self.log,
            self.writes,
            self.problems_seen,
            self._cities,
            {region: tap.records for region, tap in self._taps.items()},
            {side.region: (side._iterators, side._unread, side.sender.outbox) for side in self.pair.sides()},
        )
        return Snapshot(time.monotonic(), tables, streams, iterators, copy.deepcopy(own))

    def restore(self, snapshot: Snapshot) -> None:
        """Put the world back as ``snapshot`` found it (the stream records written since are gone, as
        if never written: their sequence numbers are given again)."""
        for side in self.pair.sides():
            backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][side.region]
            for name in (TABLE, TOMBSTONES):
                backend.tables[name].items = copy.deepcopy(snapshot.tables[(side.region, name)])
            del backend.tables[TABLE].stream_shard.items[snapshot.streams[side.region] :]
            streams = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][side.region]
            streams.shard_iterators = dict(snapshot.iterators[side.region])
        base, log, writes, problems, cities, taps, sides = copy.deepcopy(snapshot.own)
        self.base, self.log, self.writes, self.problems_seen, self._cities = (
            base,
            log,
            writes,
            problems,
            cities,
        )
        for region, records in taps.items():
            self._taps[region].records = records
        for side in self.pair.sides():
            side._iterators, side._unread, side.sender.outbox = sides[side.region]
        self.actor, self.acting, self.act_calls, self._seen = "application", False, [], {}
        self._armed, self._before = {}, {}

    # -- the timeline --------------------------------------------------------------------------

    def at(self, offset: Decimal) -> Decimal:
        return self.base + offset

    def engine_call(self, side: Side, operation: str, request: dict[str, Any]) -> Entry:
        number = None
        if self.acting and side is self.local:
            number = len(self.act_calls) + 1
            if number in self._armed:
                self.write(side, self._armed.pop(number))
            self._seen[operation] = self._seen.get(operation, 0) + 1
            for name in (operation, f"{operation} {self._seen[operation]}"):
                if name in self._before:
                    self._before.pop(name)()
        entry = self._note(side, self.actor, _describe_call(operation, request))
        entry.act_call = number
        if number is not None:
            self.act_calls.append(entry)
        return entry

    def _note(self, side: Side, actor: str, text: str) -> Entry:
        entry = Entry(len(self.log) + 1, side.region, actor, text)
        self.log.append(entry)
        return entry

    def _label(self, side: Side) -> None:
        """Calls made inside a pipeline are that pipeline's; checks what each pipeline reports."""
        forward, replicate = side.forwarder.process, side.replicator.process

        def forwarder(records: Any) -> Any:
            with self._as("forwarder"):
                return forward(records)

        def replicator(records: Any) -> Any:
            with self._as("replicator"):
                report = replicate(records)
            if report.failed or report.poison:
                self.problems_seen.append(
                    f"{side.region} replicator: {len(report.failed)} record(s) to retry, "
                    f"{report.poison} poison (nothing may fail here)"
                )
            return report

        side.forwarder.process = forwarder  # type: ignore[method-assign]
        side.replicator.process = replicator  # type: ignore[method-assign]

    @contextmanager
    def _as(self, actor: str) -> Iterator[None]:
        previous, self.actor = self.actor, actor
        try:
            yield
        finally:
            self.actor = previous

    # -- the application -----------------------------------------------------------------------

    def put(self, side: Side, at: Decimal | None, label: str = "", *, city: str | None = None) -> None:
        """PutItem of the whole item: a city (unique unless given) and, unless ``at`` is None, a version
        ``at`` seconds after the run's start, with the side's own region."""
        item = {**KEY, CITY: {"S": city or self._city(side, label)}}
        if at is not None:
            item.update(self._version(side, at))
        old = side.db.put_item(TableName=TABLE, Item=item, ReturnValues="ALL_OLD").get("Attributes")
        self._record(side, f"PutItem {_text(from_client(item))}", old, item)

    def update(self, side: Side, at: Decimal | None, label: str = "", *, city: str | None = None) -> None:
        """UpdateItem SET city (and the version, unless ``at`` is None), as ``put``."""
        values = {":city": {"S": city or self._city(side, label)}}
        expression = f"SET {CITY} = :city"
        names = {}
        if at is not None:
            version = self._version(side, at)
            names = {"#ts": NAMES.timestamp, "#origin": NAMES.origin}
            values.update({":ts": version[NAMES.timestamp], ":origin": version[NAMES.origin]})
            expression += ", #ts = :ts, #origin = :origin"
        old = side.db.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True).get("Item")
        new = side.db.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
            **({"ExpressionAttributeNames": names} if names else {}),
            ReturnValues="ALL_NEW",
        )["Attributes"]
        self._record(side, f"UpdateItem {expression} {_text(from_client(values))}", old, new)

    def delete(self, side: Side) -> None:
        old = side.db.delete_item(TableName=TABLE, Key=KEY, ReturnValues="ALL_OLD").get("Attributes")
        self._record(side, "DeleteItem", old, None)

    def write(self, side: Side, write: Write) -> None:
        """The case's write, on the local side. Its version is its own: a millisecond per write of the
        run after its point in time (two writes of one origin with one version are one version to the
        rules, which may keep either: docs/conflict-rules.md)."""
        at = None if write.at is None else AT[write.at] + Decimal(len(self.log)) / 1000
        if write.operation == "put":
            self.put(side, at, "written at the boundary")
        elif write.operation == "update":
            self.update(side, at, "written at the boundary")
        else:
            self.delete(side)

    def _city(self, side: Side, label: str) -> str:
        self._cities += 1
        return f"{label or 'write'} #{self._cities} on {side.region}"

    def _version(self, side: Side, at: Decimal) -> Item:
        return {NAMES.timestamp: {"N": str(self.at(at))}, NAMES.origin: {"S": side.region}}

    def _record(self, side: Side, text: str, old: Item | None, new: Item | None) -> None:
        entry = self._note(side, "application", text)
        entry.outcome, entry.changed_item = "ok", True
        self.writes.append(
            AppWrite(
                entry,
                side.region,
                text,
                from_client(old) if old else None,
                from_client(new) if new else None,
            )
        )

    # -- the pipelines -------------------------------------------------------------------------

    def forward(self, side: Side) -> None:
        side.forward()

    def deliver(self, side: Side) -> None:
        """Apply everything ``side`` has sent so far on its peer."""
        records, side.sender.outbox = side.sender.outbox, []
        self.pair.peer(side).replicate(records)

    def settle(self) -> None:
        self.pair.settle()

    def act(
        self,
        writes: tuple[tuple[int, Write], ...] = (),
        *,
        clamp: bool = False,
        before: dict[str, Callable[[], None]] | None = None,
    ) -> None:
        """The scenario's sequence, with each write right before the engine's call number ``boundary``
        (0: before the forwarder reads its batch; past the last call: after the sequence). ``clamp``
        runs a write whose call never came after the sequence; otherwise that is an error (a replay
        that no longer reaches its boundary). ``before``: an application write right before the
        sequence's first call of an operation (``"DeleteItem"``) or its n-th (``"UpdateItem 2"``),
        for the regression tests."""
        self._armed = dict(writes)
        self._before = dict(before or {})
        if 0 in self._armed:
            self.write(self.local, self._armed.pop(0))
        self.acting = True
        try:
            if self.scenario.act == "forwarder":
                self.forward(self.local)
            else:
                self.deliver(self.peer)
        finally:
            self.acting = False
        if self._before:
            raise AssertionError(f"the sequence made no {', '.join(self._before)} call")
        last = len(self.act_calls)
        for boundary in sorted(self._armed):
            if boundary != last + 1 and not clamp:
                raise AssertionError(
                    f"boundary {boundary} was never reached: the sequence made {last} call(s) this time"
                )
            self.write(self.local, self._armed.pop(boundary))  # after the last call

    def boundary_text(self, boundary: int) -> str:
        if boundary == 0:
            return "before the forwarder reads its batch"
        total = len(self.act_calls)
        if boundary > total:
            return f"after the last call ({total})"
        return f"before call {boundary} of {total}: {self.act_calls[boundary - 1].text}"

    def continuation(self, boundary: int) -> tuple[tuple[str, str], ...]:
        """The engine's calls from ``boundary`` on, with their outcomes: a path of the sequence."""
        return tuple((entry.text, entry.outcome) for entry in self.act_calls[boundary - 1 :])

    # -- the oracle ----------------------------------------------------------------------------

    def stream(self, side: Side) -> list[dict[str, Any]]:
        """Every record of the side's stream so far, as the forwarder's Lambda event shows it (once the
        pipelines settled, the forwarder has read them all: ``StreamTap`` kept a copy)."""
        return [stream_event_record(r, side.stream_arn, side.region) for r in self._taps[side.region].records]

    def oracle(self) -> tuple[Item | None, list[str], list[str]]:
        """The item both sides must hold (None: no item), the versioned events, and the problems
        (application writes that the rules say cannot have been lost, but got no version)."""
        streams = {side.region: self.stream(side) for side in self.pair.sides()}
        events: list[tuple[Order, Item | None, str]] = []
        notes: list[str] = []
        problems: list[str] = []
        for write in self.writes:
            records = streams[write.side]
            where = f"#{write.entry.serial} {write.side} {write.label}"
            if write.new is None:  # DeleteItem
                if write.old is None:
                    continue  # deleted nothing: no change, no stream record
                second = _remove_second(records, write.old)
                if second is None:
                    problems.append(f"{where}: no REMOVE record in the stream")
                    continue
                removed = _version(write.old) or (Decimal(0), "")
                order = (second, write.side, True) if second > removed[0] else (*removed, True)
                events.append((order, None, f"{where} -> delete {_order_text(order)}"))
                continue
            own, replaced = _version(write.new), _version(write.old)
            if own is not None and (replaced is None or own > replaced):
                events.append(((*own, False), _without(write.new, DELETE_MARK), f"{where} -> {own}"))
                continue
            stamp = _stamp_of(records, write.new)
            if stamp is not None:
                item = {**_without(write.new, DELETE_MARK, *_version_names()), **_version_item(stamp)}
                events.append(((*stamp, False), item, f"{where} -> stamped {stamp}"))
                seen = _seen_before(records, write)
                if seen is not None and (*stamp, False) <= seen:
                    problems.append(
                        f"{where}: stamped {_order_text((*stamp, False))}, not after "
                        f"{_order_text(seen)}, which its side held or deleted before the write"
                    )
                continue
            successor = next(
                (
                    entry
                    for entry in self.log[write.entry.serial :]
                    if entry.side == write.side and entry.changed_item
                ),
                None,
            )
            if successor is not None and _may_replace_unstamped(successor, write):
                notes.append(f"{where} -> not stamped: lost to #{successor.serial} ({successor.actor})")
                continue
            next_write = f"#{successor.serial} {successor.actor}" if successor else "none"
            problems.append(
                f"{where}: never stamped, and nothing that may win over an unstamped write replaced it "
                f"(next write to the item: {next_write})"
            )
        expected = max(events, key=lambda event: event[0])[1] if events else None
        return expected, [event[2] for event in events] + notes, problems

    def problems(self) -> list[str]:
        """Everything wrong with the end state: an empty list when both sides hold the oracle's item."""
        expected, _, problems = self.oracle()
        problems = [*self.problems_seen, *problems]
        for side in self.pair.sides():
            actual = side.get(KEY)
            if _normalized(actual) != _normalized(expected):
                problems.append(f"{side.region} holds {_text(actual)}, expected {_text(expected)}")
        return problems

    def trace(self) -> str:
        expected, events, _ = self.oracle()
        lines = ["log (application writes and the engine's calls on the key, in order):"]
        for entry in self.log:
            number = f" call {entry.act_call}" if entry.act_call else ""
            who = f"#{entry.serial:<3} {entry.side:<10} {entry.actor:<11}{number:>8}"
            lines.append(f"  {who} {entry.text} -> {entry.outcome}")
        lines.append("oracle (every application write and the version the rules give it):")
        lines.extend(f"  {event}" for event in events)
        lines.append(f"  expected on both sides: {_text(expected)}")
        for side in self.pair.sides():
            lines.append(f"stream of {side.region}:")
            for record in self.stream(side):
                body = record["dynamodb"]
                lines.append(
                    f"  {record['eventName']:<6} t={body['ApproximateCreationDateTime']} "
                    f"old={_text(body.get('OldImage'))} new={_text(body.get('NewImage'))}"
                )
        return "\n".join(lines)


# -- running cases ---------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """A run's world at one moment (``Run.snapshot``)."""

    taken: float  # time.monotonic()
    tables: dict[tuple[str, str], Any]
    streams: dict[str, int]
    iterators: dict[str, dict[str, Any]]
    own: Any


# How long one set-up serves cases: the scenarios' points in time are relative to the set-up's start
# (``Run.base``) and keep their margins to the stream clock only for a short while.
MAX_SNAPSHOT_AGE = 3.0


class World:
    """One pair for every case of a scenario on one side, inside one ``mock_aws``: set up once, and
    put back to the state after the set-up for each case (``Run.restore``) instead of creating four
    tables and replaying the set-up every time. The set-up runs again, on the emptied tables, once
    it is ``MAX_SNAPSHOT_AGE`` old."""

    def __init__(self, scenario: Scenario, local: str) -> None:
        self._run = Run(scenario, local)
        self._empty = self._run.snapshot()
        self._ready: Snapshot | None = None

    def run(self) -> Run:
        """The run, as the scenario's set-up left it."""
        run = self._run
        if self._ready is None or time.monotonic() - self._ready.taken > MAX_SNAPSHOT_AGE:
            run.restore(self._empty)
            run.base = Decimal(int(time.time()))
            run.scenario.setup(run, run.local, run.peer)
            self._ready = run.snapshot()
        else:
            run.restore(self._ready)
        return run


def start(scenario: Scenario, local: str) -> Run:
    run = Run(scenario, local)
    scenario.setup(run, run.local, run.peer)
    return run


def dry_run(scenario: Scenario, local: str) -> Run:
    """The scenario's sequence without an application write: its calls are the boundaries."""
    run = start(scenario, local)
    run.act()
    return run


def boundaries_of(run: Run) -> list[int]:
    """Every boundary of a run's sequence: before its input is read (forwarder), before each call,
    after the last call."""
    first = 0 if run.scenario.act == "forwarder" else 1
    return list(range(first, len(run.act_calls) + 2))


def run_case(case: Case, *, clamp: bool = False) -> tuple[list[str], Run]:
    """Run a case in a fresh moto world; the problems (none: both sides hold the oracle's item)."""
    run = start(case.scenario, case.local)
    run.act(case.writes, clamp=clamp)
    run.settle()
    return run.problems(), run


def check(case: Case, *, clamp: bool = False, always_report: bool = False) -> tuple[list[str], str, Run]:
    """``run_case`` inside its own ``mock_aws``, with the failure report written while it is open."""
    with mock_aws():
        problems, run = run_case(case, clamp=clamp)
        return problems, report(case, problems, run) if problems or always_report else "", run


def every_case(scenario: Scenario, local: str) -> Iterator[tuple[Case, list[str], str]]:
    """Every case of a scenario on one side, with its problems and report.

    One write at every boundary of the sequence the dry run took. Where that write led the engine
    to calls the dry run never made (more calls, or other ones at a position: a retried delete, a
    mark taken off, a restore), a second write before each of those calls, so that calls only an
    interleaving reaches are interleaved too (each such path once). All of them in one pair, put
    back to the set-up's state for each case (``World``); a failure's replay (``check``) runs in a
    fresh one.
    """
    with mock_aws():
        world = World(scenario, local)
        dry = world.run()
        dry.act()
        usual = [entry.text for entry in dry.act_calls]
        boundaries = boundaries_of(dry)

        def one(case: Case) -> tuple[list[str], str, Run]:
            run = world.run()
            run.act(case.writes)
            run.settle()
            problems = run.problems()
            return problems, report(case, problems, run) if problems else "", run

        explored: set[tuple[tuple[str, str], ...]] = set()
        for boundary in boundaries:
            for write in WRITES:
                case = Case(scenario, local, ((boundary, write),))
                problems, text, run = one(case)
                paths = [
                    (second, run.continuation(second))
                    for second in range(boundary + 1, len(run.act_calls) + 1)
                    if second > len(usual) or run.act_calls[second - 1].text != usual[second - 1]
                ]
                yield case, problems, text
                for second, path in paths:
                    if path in explored:
                        continue
                    explored.add(path)
                    for then in WRITES:
                        deeper = Case(scenario, local, ((boundary, write), (second, then)))
                        problems, text, _ = one(deeper)
                        yield deeper, problems, text


def report(case: Case, problems: list[str], run: Run) -> str:
    lines = [f"case {case.name}", f"  scenario: {case.scenario.name} on {case.local}: {case.scenario.given}"]
    for boundary, write in case.writes:
        lines.append(f"  at boundary {boundary} ({run.boundary_text(boundary)}): {write.describe()}")
    lines.append(f"  replay: {REPLAY} --interleaving-case '{case.name}'")
    lines.extend(f"  DIVERGES: {problem}" for problem in problems)
    lines.extend("  " + line for line in run.trace().splitlines())
    return "\n".join(lines)


# -- helpers ---------------------------------------------------------------------------------------


def _may_replace_unstamped(successor: Entry, write: AppWrite) -> bool:
    """docs/conflict-rules.md: until the forwarder stamps it, a write without a newer version is lost
    to a later application write, to a replicated change, and (if it left the item with a version, the
    one it replaced or an older one) to the removal of the item for a newer remembered delete. An item
    left with no version at all is never removed by the forwarder: it is stamped after the delete."""
    if successor.actor in ("application", "replicator"):
        return True
    return _version(write.new) is not None


def _version_names() -> tuple[str, str]:
    return (NAMES.timestamp, NAMES.origin)


def _version(item: Item | None) -> tuple[Decimal, str] | None:
    if not item:
        return None
    timestamp = item.get(NAMES.timestamp, {}).get("N")
    origin = item.get(NAMES.origin, {}).get("S")
    if timestamp is None or origin is None:
        return None
    return (Decimal(timestamp), origin)


def _version_item(version: tuple[Decimal, str]) -> Item:
    return {NAMES.timestamp: {"N": str(version[0])}, NAMES.origin: {"S": version[1]}}


def _without(item: Item, *names: str) -> Item:
    return {name: value for name, value in item.items() if name not in names}


def _normalized(item: Item | None) -> Any:
    """Numbers compared as numbers (DynamoDB trims their zeros), everything else exactly."""
    if item is None:
        return None
    return {
        name: ("N", Decimal(value["N"])) if "N" in value else value for name, value in sorted(item.items())
    }


def _remove_second(records: list[dict[str, Any]], old: Item) -> Decimal | None:
    for record in records:
        body = record["dynamodb"]
        if record["eventName"] == "REMOVE" and _normalized(body.get("OldImage")) == _normalized(old):
            return Decimal(body["ApproximateCreationDateTime"])
    return None


def _seen_before(records: list[dict[str, Any]], write: AppWrite) -> Order | None:
    """The newest version the write's side held or deleted before the write, by its stream: what the
    stamp of a write without a newer version must come after (it is ordered when stamped)."""
    seen: list[Order] = []
    for record in records:
        body = record["dynamodb"]
        old, new = body.get("OldImage"), body.get("NewImage")
        if _normalized(old) == _normalized(write.old) and _normalized(new) == _normalized(write.new):
            return max(seen, default=None)
        for image in (old, new):
            version = _version(image)
            if version is not None:
                seen.append((*version, False))
            timestamp, _, origin = (image or {}).get(DELETE_MARK, {}).get("S", "").partition(" ")
            if origin:
                seen.append((Decimal(timestamp), origin, True))  # a delete the engine applied
        if record["eventName"] == "REMOVE" and DELETE_MARK not in (old or {}):
            removed = _version(old) or (Decimal(0), "")
            second = Decimal(body["ApproximateCreationDateTime"])
            seen.append((second, write.side, True) if second > removed[0] else (*removed, True))
    return None


def _stamp_of(records: list[dict[str, Any]], written: Item) -> tuple[Decimal, str] | None:
    """The version the forwarder stamped on the item a write left: a MODIFY from exactly that item
    (the engine's delete mark aside) that changes only its version (and removes the mark)."""
    content = _normalized(_without(written, DELETE_MARK, *_version_names()))
    before = _normalized(_without(written, DELETE_MARK))
    for record in records:
        body = record["dynamodb"]
        if record["eventName"] != "MODIFY":
            continue
        old, new = body.get("OldImage", {}), body.get("NewImage", {})
        if (
            _normalized(_without(old, DELETE_MARK)) == before
            and _normalized(_without(new, DELETE_MARK, *_version_names())) == content
            and _version(new) != _version(old)
            and _version(new) is not None
        ):
            return _version(new)
    return None


def _order_text(order: Order) -> str:
    return f"({order[0]}, {order[1]}, {'delete' if order[2] else 'upsert'})"


def _text(item: Item | None) -> str:
    if item is None:
        return "nothing"
    parts = []
    for name, value in item.items():
        if name in KEY:
            continue
        ((_, inner),) = value.items()
        parts.append(f"{name}={inner}")
    return "{" + ", ".join(parts) + "}"
