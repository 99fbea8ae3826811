"""Verification: both tables item by item, and the last-writer-wins oracle of the generator's writes.

The oracle applies the documented conflict rules (docs/conflict-rules.md) to what the generator
wrote: a version is ``(timestamp, origin, is_delete)`` compared in that order; a delete's version is
its stream time (whole seconds) unless that is not after the version it removed, in which case it
takes that version's place with the delete rank (a removed version beyond the clock-skew bound counts
as none). Every key's final state on both sides must be the oracle's winner: an upsert's item with
the version it ended with, or no item at all.

The version an upsert ends with:

- a write with a valid version of its own keeps it, unless its side's forwarder stamped it (it was
  not newer than the version it replaced);
- a write without one (no version attributes, an ``UpdateItem`` of one field that left them as they
  were, a String timestamp, epoch milliseconds) ends with the stamp its side's forwarder gives it.

The writer side's table stream shows each stamp as a MODIFY that changed the version and nothing else, and
keys it by the exact item it replaced, which the generator knows of each of its writes (the item it
put, the ``ALL_NEW`` of its update). The generator writes without a version only on keys that one
side owns and that one writer thread of that side serialises (``loadgen.plan``), so that this stays
decidable: no replicated change comes between such a write and its stamp, and the stamp of the item
a write left is that write's. When the next write of the key came before the stamp, the stamp either
lands on that next write's item (same version attributes, same condition) and counts for it, or is
refused by its condition; the earlier write, with no stamp seen, is superseded and takes no part.
The key's last write must have its stamp seen: if none is, the expected item is the write's item as
written, without a version, which a converged table never holds (a change that made no stream
record, an update of a field to the value it had, is the exception, and rightly expected as is).
Keys both sides write (conflicts) get versioned writes only.

An ``UpdateItem`` keeps what it was made on, so its item is expected as DynamoDB returned it
(``ALL_NEW``) only where the rules let the table hold that: the engine never replaces a version with
an older one, so a side's table holds nothing older than an item it held before, except in the window
its application opens by lowering the version itself (a write with an older version, or without one)
or deleting the item, until the forwarder has handled that (its restore, or its removal of the older
item; docs/conflict-rules.md, "Writes without a newer version", found by ``make chaos``,
crash-mid-batch). ``updates_on_older_versions`` reads each side's stream records of the key
(``Observations.changes``) and counts an update made on an item older than one its table held,
outside that window and newer than what it held, as a loss of the item held: an engine fault let the
table hold what the update was made on.

With residency rules (``rules``: what leaves each side, as deployed; docs/residency.md), the winner
is expected as written on its own side and as ``exportable`` on the other (absent when it does not
pass the filter), and items are compared without the excluded attributes of either side (a change
from the peer keeps this side's values of them). Between the tables, a key whose item does not pass
its side's filter is no difference when the other side lacks it, and one when the other side holds
it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from replication.admission import RESERVED_PREFIX
from replication.residency import ResidencyRules
from replication_ops.local.config import ORIGIN_ATTRIBUTE, TIMESTAMP_ATTRIBUTE
from replication_ops.local.loadgen import DELETE, UPDATE, LoadResult, Write, format_number
from replication_ops.local.watcher import Observations, StreamChange, key_of, normalize_item, version_of

Order = tuple[Decimal, str, bool]
UNVERSIONED = (Decimal(0), "")
# How far ahead of the engine's clock a version may be: the roots' default of
# `max_clock_skew_seconds` (envs/*/variables.tf), which the local environment deploys
# (docs/conflict-rules.md, "Clock skew").
MAX_CLOCK_SKEW_SECONDS = 300


# -- tables ----------------------------------------------------------------------------------


def scan_table(client: Any, table: str, key_names: tuple[str, ...]) -> dict[str, dict]:
    items: dict[str, dict] = {}
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = client.scan(**params)
        for item in response.get("Items", []):
            items[key_of({name: item[name] for name in key_names if name in item})] = item
        last = response.get("LastEvaluatedKey")
        if not last:
            return items
        params["ExclusiveStartKey"] = last


Rules = dict[str, ResidencyRules]  # side -> what leaves it
NO_RULES = ResidencyRules()


def _rules_of(rules: Rules | None, side: str) -> ResidencyRules:
    return (rules or {}).get(side, NO_RULES)


def _excluded(rules: Rules | None) -> frozenset[str]:
    return frozenset().union(*(r.excluded_attributes for r in (rules or {}).values()))


def _compared(item: dict[str, Any] | None, excluded: frozenset[str]) -> Any:
    if item is None:
        return None
    return normalize_item({name: value for name, value in item.items() if name not in excluded})


def differing_keys(
    left: dict[str, dict],
    right: dict[str, dict],
    rules: Rules | None = None,
    sides: tuple[str, str] = ("", ""),
) -> list[str]:
    """Keys whose items differ between the two sides' tables (``sides``: their names in ``rules``)."""
    excluded = _excluded(rules)
    left_rules, right_rules = _rules_of(rules, sides[0]), _rules_of(rules, sides[1])
    differing = []
    for key in left.keys() | right.keys():
        a, b = left.get(key), right.get(key)
        passes = (a is not None and left_rules.passes(a), b is not None and right_rules.passes(b))
        if a is not None and b is not None:
            differs = not all(passes) or _compared(a, excluded) != _compared(b, excluded)
        else:
            differs = any(passes)  # only on one side: a difference if it may cross
        if differs:
            differing.append(key)
    return sorted(differing)


# -- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    order: Order
    item: dict[str, Any] | None  # None: the key must not exist
    write: Write


def delete_order(removed: tuple[Decimal, str] | None, stream_second: Decimal, side: str) -> Order:
    removed = removed or UNVERSIONED
    if stream_second > removed[0]:
        return (stream_second, side, True)
    return (removed[0], removed[1], True)


def removed_version(write: Write) -> tuple[Decimal, str] | None:
    """The version a delete removed, as the engine reads it: none if the item had no valid version,
    or one beyond the clock-skew bound (the forwarder's clock is after the delete returned)."""
    removed = version_of(write.old, TIMESTAMP_ATTRIBUTE, ORIGIN_ATTRIBUTE)
    if removed is None or removed[0] > Decimal(write.finished) + MAX_CLOCK_SKEW_SECONDS:
        return None
    return removed


def _stream_second(write: Write, key: str, seen: Observations) -> Decimal:
    seconds = seen.removes.get((key, normalize_item(write.old)))
    if seconds:
        return Decimal(min(seconds, key=lambda s: abs(s - write.finished)))
    return Decimal(math.floor(write.finished))  # not seen (should not happen once drained)


def _with_version(item: dict[str, Any], version: tuple[Decimal, str]) -> dict[str, Any]:
    return {
        **_without_reserved(item),
        TIMESTAMP_ATTRIBUTE: {"N": format_number(version[0])},
        ORIGIN_ATTRIBUTE: {"S": version[1]},
    }


def _without_reserved(item: dict[str, Any]) -> dict[str, Any]:
    """An update's ALL_NEW without the engine's reserved attributes: an update that lands between the
    replicator's delete mark and its delete returns the mark, which the engine then takes off again
    (docs/conflict-rules.md); the generator never writes such names itself."""
    return {name: value for name, value in item.items() if not name.startswith(RESERVED_PREFIX)}


def _written_versions(load: LoadResult) -> set[tuple[str, str, tuple[Decimal, str]]]:
    return {(w.side, w.key, w.version) for w in load.writes if w.version is not None}


def effective_version(
    write: Write, seen: Observations, written: set[tuple[str, str, tuple[Decimal, str]]]
) -> tuple[Decimal, str] | None:
    """The version an upsert ended up with: its own, or its side's forwarder's stamp of the item it
    left; None for a write without a valid version whose stamp was not seen.

    A MODIFY that only moves the version forward looks like a stamp; so does the generator's next
    update of the key when it happens to set the values already there. Versions the generator wrote
    itself are therefore never taken for stamps.
    """
    stamped = seen.stamps.get((write.key, normalize_item(write.item)))
    if stamped is None or (write.side, write.key, stamped) in written:
        return write.version
    return stamped


def oracle(load: LoadResult, observations: dict[str, Observations]) -> tuple[dict[str, Expected], set[str]]:
    """The expected final state of each key written, and the keys the oracle cannot decide."""
    expected: dict[str, Expected] = {}
    written = _written_versions(load)
    uncertain: set[str] = set()
    last = {w.key: w for w in load.writes if not w.error}  # writes in the order they started
    for write in load.writes:
        key = write.key
        if write.error:
            uncertain.add(key)  # the write may or may not have happened
            continue
        seen = observations[write.side]
        if write.operation.kind == DELETE:
            if not write.old:
                continue  # deleted nothing: no change, no stream record
            order = delete_order(removed_version(write), _stream_second(write, key, seen), write.side)
            candidate = Expected(order, None, write)
        else:
            assert write.item is not None
            version = effective_version(write, seen, written)
            if version is None:
                if last[key] is write:  # nothing came after it: it must have been stamped
                    expected[key] = Expected(
                        (Decimal("Infinity"), "", False), _without_reserved(write.item), write
                    )
                continue  # superseded before its stamp could land
            candidate = Expected((version[0], version[1], False), _with_version(write.item, version), write)
        current = expected.get(key)
        if current is None or candidate.order > current.order:
            expected[key] = candidate
    for key in uncertain:
        expected.pop(key, None)
    return expected, uncertain


# -- updates made on an older version than their side held ----------------------------------


REMOVE = "REMOVE"
NOTHING: Order = (Decimal("-Infinity"), "", False)  # no item yet, or no valid version


@dataclass(frozen=True)
class OlderBase:
    """An application ``UpdateItem`` made on an item older than one its side's table held before,
    outside the documented window: ``held`` is lost to it."""

    write: Write
    base: Order  # the table's state the update was made on
    held: Order  # the newest state the table held before it


def _state(change: StreamChange) -> Order:
    """The table's state after a record, as an order: the version it set (no version, or one beyond the
    clock-skew bound of the record's time, as none), or for a REMOVE the version it removed with the
    delete rank (every delete is at least as new as what it removed: ``delete_order``)."""
    version = change.old if change.event == REMOVE else change.new
    if version is None or version[0] > change.second + 1 + MAX_CLOCK_SKEW_SECONDS:
        return (NOTHING[0], "", change.event == REMOVE)
    return (version[0], version[1], change.event == REMOVE)


def _lowered_by_the_application(change: StreamChange, state: Order, held: Order, side: str) -> bool:
    """A write that left an item older than the table held and is the application's: the engine never
    writes an older version (its writes are conditioned on it) and writes only valid versions; the
    replicator's carry the peer's origin, the forwarder's stamps and restores move forward."""
    return state < held and (state[0] == NOTHING[0] or (change.new is not None and change.new[1] == side))


def _older_base(write: Write, changes: list[StreamChange], deletes: set[Any]) -> tuple[Order, Order] | None:
    """(the state ``write``'s record was made on, the newest its table held before) if the update was
    made on an item older than that outside the window the rules allow; None otherwise.

    The window opens when the application lowers the version (a write with an older version or
    without one) or deletes the item (a REMOVE of an item one of its deletes removed, ``deletes``),
    and closes when the engine has handled it: a record that sets the newest state again (the
    forwarder's restore) or the engine's removal of the older item. An update made on no item
    (after a REMOVE, or the key's first record) inherits nothing and is never judged here."""
    since = math.floor(write.started) - 1  # an earlier record of the same item is another write's
    image = normalize_item(write.item)
    at = next((i for i, c in enumerate(changes) if c.image == image and c.second >= since), None)
    if at is None or at == 0 or changes[at - 1].event == REMOVE:
        return None
    held, state, window = NOTHING, NOTHING, False
    for change in changes[:at]:
        state = _state(change)
        if change.event == REMOVE:
            by_application = change.removed in deletes
            if state >= held:
                held, window = state, by_application
            else:
                window = by_application  # the application's opens it, the engine's closes it
        elif state >= held:
            held, window = state, False
        elif _lowered_by_the_application(change, state, held, write.side):
            window = True
    if state >= held or window:
        return None
    return state, held


def updates_on_older_versions(
    load: LoadResult, observations: dict[str, Observations]
) -> dict[str, OlderBase]:
    """Keys where an application ``UpdateItem`` was made on an item older than one its side held
    before (``held``) and ends newer than ``held``, outside the window in which the rules let the
    table hold an older item (``_older_base``; docs/conflict-rules.md, "Writes without a newer
    version"): the update's item carries what an engine fault let the table hold, and ``held`` is
    lost. The update's record is the first of its side's records of the key, from the second before
    it started, whose new image is the update's ``ALL_NEW``; an update that made none is not judged."""
    written = _written_versions(load)
    deletes: dict[tuple[str, str], set[Any]] = {}  # (side, key) -> the items its deletes removed
    for write in load.writes:
        if write.operation.kind == DELETE and write.old and not write.error:
            deletes.setdefault((write.side, write.key), set()).add(normalize_item(write.old))
    found: dict[str, OlderBase] = {}
    for write in load.writes:
        if write.error or write.operation.kind != UPDATE or write.item is None:
            continue
        seen = observations[write.side]
        removed = deletes.get((write.side, write.key), set())
        older = _older_base(write, seen.changes.get(write.key, []), removed)
        if older is None:
            continue
        version = effective_version(write, seen, written)
        ends = (version[0], version[1], False) if version else (Decimal("Infinity"), "", False)
        if ends > older[1]:  # else it loses to what it was not made on: the oracle expects that, or newer
            found.setdefault(write.key, OlderBase(write, *older))
    return found


@dataclass
class Verification:
    items: dict[str, int]  # side -> items in its table
    differing: list[str]  # keys whose items differ between the tables
    lost: list[str]  # keys whose final state is not the oracle's, on either side
    lost_by_side: dict[str, int]
    uncertain: int
    keys_written: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.differing and not self.lost


def expected_on(side: str, want: Expected | None, rules: Rules | None) -> dict[str, Any] | None:
    """The item a side must hold: the winner as written on its own side, elsewhere what of it may
    leave that side (``exportable``; None when it does not pass the filter)."""
    if want is None or want.item is None:
        return None
    if want.write.side == side:
        return want.item
    return _rules_of(rules, want.write.side).exportable(want.item)


def verify(
    tables: dict[str, dict[str, dict]],
    load: LoadResult,
    observations: dict[str, Observations],
    rules: Rules | None = None,
) -> Verification:
    sides = list(tables)
    differing = differing_keys(tables[sides[0]], tables[sides[1]], rules, (sides[0], sides[1]))
    expected, uncertain = oracle(load, observations)
    excluded = _excluded(rules)
    lost: set[str] = set()
    lost_by_side: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    for side, items in tables.items():
        count = 0
        for key in expected.keys() | (items.keys() - uncertain):
            want = expected.get(key)
            want_item = expected_on(side, want, rules)
            if _compared(items.get(key), excluded) != _compared(want_item, excluded):
                count += 1
                lost.add(key)
                if len(examples) < 5:
                    examples.append(
                        _example(
                            side,
                            key,
                            want_item=want_item,
                            actual=items.get(key),
                            want=want,
                            load=load,
                            observations=observations,
                        )
                    )
        lost_by_side[side] = count
    for key, older in sorted(updates_on_older_versions(load, observations).items()):
        if key in uncertain or key in lost:
            continue
        side = older.write.side
        lost.add(key)
        lost_by_side[side] = lost_by_side.get(side, 0) + 1
        if len(examples) < 5:
            want = expected.get(key)
            example = _example(
                side, key, want_item=None, actual=None, want=want, load=load, observations=observations
            )
            example.update(
                expected=f"an update made on {_order_text(older.held)} or newer",
                actual=f"an update made on {_order_text(older.base)}",
                reason="an UpdateItem made on an item older than its table held, no application write "
                "having lowered the version since",
            )
            examples.append(example)
    return Verification(
        items={side: len(items) for side, items in tables.items()},
        differing=differing,
        lost=sorted(lost),
        lost_by_side=lost_by_side,
        uncertain=len(uncertain),
        keys_written=len({w.key for w in load.writes}),
        examples=examples,
    )


def _example(
    side: str,
    key: str,
    *,
    want_item: dict[str, Any] | None,
    actual: dict[str, Any] | None,
    want: Expected | None,
    load: LoadResult,
    observations: dict[str, Observations],
) -> dict[str, Any]:
    """A mismatch as the report shows it: versions, the key's writes and stream records."""
    example = {
        "side": side,
        "key": key,
        "expected": _version_text(want_item),
        "actual": _version_text(actual),
        "winner_write": want.write.operation.kind if want else None,
        "winner_side": want.write.side if want else None,
        "streams": {name: seen.history.get(key, []) for name, seen in observations.items()},
        "writes": [
            (
                w.side,
                w.operation.kind,
                _version_text(w.item) if w.item else "-",
                _version_text(w.old),
                round(w.started, 3),
                round(w.finished, 3),
            )
            for w in load.writes
            if w.key == key
        ],
    }
    if want_item is not None and actual is not None and example["expected"] == example["actual"]:
        example["reason"] = "same version, other attributes"
    return example


def combined(verifications: dict[str, Verification]) -> Verification:
    """The tables' verifications as one (keys as ``table key``; counts summed)."""
    sides = {side for v in verifications.values() for side in v.items}
    return Verification(
        items={side: sum(v.items.get(side, 0) for v in verifications.values()) for side in sorted(sides)},
        differing=[f"{name} {key}" for name, v in verifications.items() for key in v.differing],
        lost=[f"{name} {key}" for name, v in verifications.items() for key in v.lost],
        lost_by_side={
            side: sum(v.lost_by_side.get(side, 0) for v in verifications.values()) for side in sorted(sides)
        },
        uncertain=sum(v.uncertain for v in verifications.values()),
        keys_written=sum(v.keys_written for v in verifications.values()),
        examples=[{"table": name, **e} for name, v in verifications.items() for e in v.examples][:5],
    )


def _version_text(item: dict[str, Any] | None) -> str:
    if item is None:
        return "absent"
    version = version_of(item, TIMESTAMP_ATTRIBUTE, ORIGIN_ATTRIBUTE)
    return f"{version[0]} {version[1]}" if version else "unversioned"


def _order_text(order: Order) -> str:
    if order[0] == NOTHING[0]:
        return "a delete of an item without a version" if order[2] else "no version"
    return f"{order[0]} {order[1]}" + (" (deleted)" if order[2] else "")


# -- lag -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LagSample:
    written_at: float  # when the origin write completed (epoch seconds)
    lag: float  # seconds until the version was first seen on the other side
    origin: str
    key: str = ""
    version: str = ""
    stamped: bool = False


def lag_samples(
    load: LoadResult, observations: dict[str, Observations], peers: dict[str, str]
) -> list[LagSample]:
    """Origin write -> first sight on the other side, for every upsert that reached it with the
    version it ended with (its own or its stamp)."""
    samples: list[LagSample] = []
    written = _written_versions(load)
    for write in load.writes:
        if write.error or write.operation.kind == DELETE:
            continue
        key = write.key
        own = observations[write.side]
        version = effective_version(write, own, written)
        if version is None:
            continue
        seen_at = observations[peers[write.side]].first_seen.get((key, version))
        if seen_at is not None:
            samples.append(
                LagSample(
                    write.finished,
                    max(0.0, seen_at - write.finished),
                    write.side,
                    key,
                    f"{version[0]} {version[1]}",
                    version != write.version,
                )
            )
    return sorted(samples, key=lambda s: s.written_at)


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]
