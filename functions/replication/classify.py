"""The forwarder's decision for one DynamoDB stream record (pure: no AWS calls).

See docs/conflict-rules.md for why each rule is what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from functools import cached_property
from typing import Any

from replication.admission import reserved_attributes
from replication.changes import Change
from replication.keys import TypedItem, TypedValue, key_digest
from replication.limits import MAX_ITEM_BYTES, item_size, item_size_bound
from replication.settings import VersionAttributes
from replication.table_writer import DELETE_MARK, MARK_RESERVE_BYTES, TOMBSTONE_SOURCE_LOCAL, Tombstone
from replication.versions import (
    Version,
    VersionProblem,
    VersionReading,
    delete_version,
    format_timestamp,
    latest_allowed,
    newest,
    parse_timestamp,
    read_version,
    stamp_version,
)

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


class Action(Enum):
    FORWARD = "forward"  # a local write with its own newer version: send it
    DELETE = "delete"  # a local delete: remember it (tombstone), then send it
    STAMP = "stamp"  # a local write without a valid, newer version: stamp it; the stamp's record is sent
    DELETE_WINS = "delete-wins"  # a new item older than a remembered delete: remove it, send nothing
    ECHO = "echo"  # written by the engine (replicator, or the forwarder enforcing a delete): not sent
    TTL = "ttl"  # a TTL expiry, not replicated by default
    TOO_LARGE = "too-large"  # a local write that cannot carry a version (400 KB): reported, not sent


class StampReason(Enum):
    """Why a local write is stamped (each is counted: ``ChangesStamped`` and one metric per reason)."""

    NOT_NEWER = "not-newer"  # the version attributes left as they were, or set to an older version
    ABSENT = "absent"  # no version attributes at all
    MALFORMED = "malformed"  # not a Number timestamp and a non-empty String origin
    AHEAD = "ahead"  # a timestamp beyond the allowed clock skew
    RESERVED = "reserved"  # the write carries an engine-reserved attribute, which the stamp removes


_PROBLEM_REASONS = {
    VersionProblem.ABSENT: StampReason.ABSENT,
    VersionProblem.MALFORMED: StampReason.MALFORMED,
    VersionProblem.AHEAD: StampReason.AHEAD,
}


@dataclass(frozen=True)
class Decision:
    action: Action
    key: TypedItem
    change: Change | None = None  # FORWARD, DELETE
    # STAMP: the version attributes exactly as the record showed them (typed values, None if absent)
    seen: tuple[TypedValue | None, TypedValue | None] = (None, None)
    stamp: Version | None = None  # STAMP, TOO_LARGE: the version to give the item
    reason: StampReason | None = None  # STAMP, TOO_LARGE: why the write needs a stamp
    remove: tuple[str, ...] = ()  # STAMP: engine-reserved attributes the stamp removes
    remembered: Version | None = None  # DELETE_WINS: the remembered delete that wins
    # DELETE_WINS: the version of the write that lost to it; STAMP, TOO_LARGE: the valid version the
    # write carried, not newer than what it follows (None: it carried none, ``reason`` says why).
    written: Version | None = None
    # STAMP of a write over an item with a version: that version's item as its write made it, put
    # back if something older replaces the write before its stamp (TableWriter.restore;
    # ``classify_batch`` sets which image that is).
    replaced: TypedItem | None = None


# ``read_version`` of an absent or empty image.
_NO_VERSION = VersionReading(None, VersionProblem.ABSENT, (None, None))


@dataclass(frozen=True)
class ClassifyContext:
    names: VersionAttributes
    local_region: str
    peer_region: str
    replicate_ttl_deletes: bool
    now: Decimal  # the forwarder's clock (versions.clock_now)
    max_clock_skew_seconds: int
    # The readings of the version attributes this context has made (``reading``), by the identity of
    # the two attribute values; each entry holds the values it was made from, so no identity is reused
    # while the context lives (one batch). A batch reads each image several times (issue 13: the CPU).
    _readings: dict[tuple[int, int], tuple[Any, Any, VersionReading]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # ``needs_tombstone`` of each record (by identity, holding the record), as ``_readings``.
    _needs_tombstone: dict[int, tuple[dict[str, Any], bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def latest(self) -> Decimal:
        """``versions.latest_allowed`` for ``now`` (both fixed: computed once)."""
        return latest_allowed(self.now, self.max_clock_skew_seconds)

    def reading(self, image: TypedItem | None) -> VersionReading:
        """``read_version(image, names, latest)``, made once per pair of attribute values: a reading
        depends on nothing else, and the same values (an image, its copies without some names) are
        read several times per record."""
        if not image:
            return _NO_VERSION
        timestamp, origin = image.get(self.names.timestamp), image.get(self.names.origin)
        key = (id(timestamp), id(origin))
        found = self._readings.get(key)
        if found is not None and found[0] is timestamp and found[1] is origin:
            return found[2]
        reading = read_version(image, self.names, self.latest)
        self._readings[key] = (timestamp, origin, reading)
        return reading


def needs_tombstone(record: dict[str, Any], context: ClassifyContext) -> bool:
    """INSERTs, and MODIFYs of an item that had no version or that set no newer one, are decided
    against the key's tombstone (a write without a newer version is stamped after it), except the
    replicator's own upserts (echoes: ``_echoed_upsert``); other MODIFYs against the old image;
    REMOVEs by the engine's delete mark, which counts only if the key's tombstone holds that delete
    (the engine remembers a delete before it marks the item), and by the removal receipt
    (``needs_receipt``). Decided once per record and context (the forwarder asks before its reads,
    ``classify_batch`` again)."""
    found = context._needs_tombstone.get(id(record))
    if found is not None and found[0] is record:
        return found[1]
    needed = _needs_tombstone(record, context)
    context._needs_tombstone[id(record)] = (record, needed)
    return needed


def _needs_tombstone(record: dict[str, Any], context: ClassifyContext) -> bool:
    event = record.get("eventName")
    stream = record["dynamodb"]
    old_image: TypedItem = stream.get("OldImage") or {}
    if event == "REMOVE":
        return DELETE_MARK in old_image
    if event not in ("INSERT", "MODIFY") or _engine_mark_change(record, context.latest):
        return False
    old_version = context.reading(old_image).version
    new_image = stream.get("NewImage") or {}
    reserved = reserved_attributes(new_image)
    new_version = context.reading(_without(new_image, reserved)).version
    if not reserved and _echoed_upsert(event, old_version, new_version, context):
        return False
    if event == "INSERT":
        return True
    return old_version is None or new_version is None or not new_version > old_version


def _echoed_upsert(
    event: str, old_version: Version | None, new_version: Version | None, context: ClassifyContext
) -> bool:
    """The replicator's upsert (the peer's origin, newer than what it replaced): an echo, decided
    without the key's tombstone. Whatever delete is remembered for the key, the upsert was written
    after the replicator checked the tombstone (``TableWriter``'s upsert), and every delete remembered
    later is enforced by whoever remembered it (tombstone first, then the delete), so removing an
    echo older than a remembered delete is never the forwarder's work; the read would cost a read
    unit per replicated new item."""
    if new_version is None or new_version.origin != context.peer_region:
        return False
    return event == "INSERT" or old_version is None or new_version > old_version


def needs_receipt(record: dict[str, Any]) -> bool:
    """A REMOVE whose old image may have been too large to take the engine's delete mark: then the
    key's removal receipt tells whether the engine removed it (``TableWriter.delete_with_receipt``).
    Counted with ``limits.item_size_bound`` (never under what DynamoDB counts), so any item DynamoDB
    refused the mark for is read; a normal delete costs no read."""
    if record.get("eventName") != "REMOVE":
        return False
    old_image = {k: v for k, v in (record["dynamodb"].get("OldImage") or {}).items() if k != DELETE_MARK}
    return item_size_bound(old_image) + MARK_RESERVE_BYTES > MAX_ITEM_BYTES


def stream_time(record: dict[str, Any]) -> Decimal:
    return Decimal(str(record["dynamodb"].get("ApproximateCreationDateTime", 0))).to_integral_value(
        rounding="ROUND_FLOOR"
    )


def stream_created(record: dict[str, Any]) -> int | None:
    """The stream record's ApproximateCreationDateTime as whole epoch seconds (DynamoDB Streams gives
    it rounded down to the second), or None when the record has none: for the per-stage lag only."""
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, bool) or not isinstance(created, int | float):
        return None
    return int(created // 1)


def is_ttl_delete(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL


def classify_batch(
    records: Sequence[dict[str, Any]],
    tombstones: dict[str, Tombstone],
    context: ClassifyContext,
    receipts: dict[str, Version] | None = None,
) -> list[Decision]:
    """The decisions for a batch of stream records in order. ``tombstones`` (by key digest, for the
    records that ``needs_tombstone``) were read before the batch's local writes, and each record
    shows the item before them; ``receipts`` (by key digest, for those that ``needs_receipt``). The
    local writes run in record order per key, after the whole batch was read. So a local delete
    counts as remembered for the records after it, and a stamp, given when the forwarder has seen
    the whole batch, comes after every version and delete of its key in the batch and after the
    batch's earlier stamps of the key: a stamp lands on whatever write holds the version it saw (an
    unversioned write later in the batch too), so it must be newer than anything that write
    followed, and two stamps of a batch must never give two writes the same version.

    The item a stamp's restore puts back (``Decision.replaced``) is its version's item as the write
    that set the version made it (``_written_items``): a write without a newer version of its own
    (an ``UpdateItem`` of one field) leaves the version as it was, and until its stamp its content
    is not that version's; where it is lost (to a later write), an image of it under the version
    must not come back."""
    receipts = receipts or {}
    seen: dict[str, Version] = {}
    digests = [key_digest(record["dynamodb"]["Keys"]) for record in records]
    for record, digest in zip(records, digests, strict=True):
        for version in _versions_in(record, context):
            seen[digest] = newest(seen.get(digest), version) or version
    remembered = dict(tombstones)
    decisions = []
    for record, digest in zip(records, digests, strict=True):
        decision = classify(
            record,
            remembered.get(digest) if needs_tombstone(record, context) else None,
            context,
            receipts.get(digest) if needs_receipt(record) else None,
            after=seen.get(digest),
        )
        if decision.action is Action.DELETE and decision.change is not None:
            deleted = decision.change.version
            known = remembered.get(digest)
            if known is None or known.version < deleted:
                remembered[digest] = Tombstone(deleted, TOMBSTONE_SOURCE_LOCAL)
        if decision.action is Action.STAMP and decision.stamp is not None:
            seen[digest] = decision.stamp
        decisions.append(decision)
    return _with_written_items(records, decisions, context)


def _with_written_items(
    records: Sequence[dict[str, Any]], decisions: list[Decision], context: ClassifyContext
) -> list[Decision]:
    """``decisions``, each ``replaced`` the item of its version as the batch shows it was written."""
    keys = {key_digest(decision.key) for decision in decisions if decision.replaced is not None}
    if not keys:
        return decisions
    written = _written_items(records, context, keys)

    def with_written(decision: Decision) -> Decision:
        version = context.reading(decision.replaced).version
        if version is None:
            return decision
        item = written.get((key_digest(decision.key), version.timestamp, version.origin))
        return decision if item is None else replace(decision, replaced=item)

    return [with_written(decision) for decision in decisions]


def _written_items(
    records: Sequence[dict[str, Any]], context: ClassifyContext, keys: set[str]
) -> dict[tuple[str, Decimal, str], TypedItem]:
    """Each version's item as the write that set it made it, by (key digest, timestamp, origin), as
    far as the batch shows: the new image of a record that changed the version (the application's
    versioned write, a stamp, the replicator's write, the forwarder's restore), else the old image of
    the key's first record. A write that kept the version (the same version in both images) is not
    that version's: its stamp is still to come. Reserved attributes left out. Only for ``keys`` (key
    digests)."""
    found: dict[tuple[str, Decimal, str], TypedItem] = {}
    first: dict[tuple[str, Decimal, str], TypedItem] = {}
    started: set[str] = set()
    for record in records:
        stream = record["dynamodb"]
        digest = key_digest(stream["Keys"])
        if digest not in keys:
            continue
        old_image = stream.get("OldImage") or {}
        old = context.reading(old_image).version
        if old is not None and digest not in started:
            first[(digest, old.timestamp, old.origin)] = _without(old_image, reserved_attributes(old_image))
        started.add(digest)
        new_image = stream.get("NewImage")
        new = context.reading(new_image).version if new_image else None
        if new_image and new is not None and new != old:
            found[(digest, new.timestamp, new.origin)] = _without(new_image, reserved_attributes(new_image))
    return {**first, **found}


def _versions_in(record: dict[str, Any], context: ClassifyContext) -> list[Version]:
    """The versions a record shows (within the clock-skew bound): its images', and for a REMOVE the
    version of the delete."""
    stream = record["dynamodb"]
    found = [context.reading(stream.get(image)).version for image in ("OldImage", "NewImage")]
    if record.get("eventName") == "REMOVE":
        found.append(delete_version(found[0], stream_time(record), context.local_region))
    return [version for version in found if version is not None]


def classify(
    record: dict[str, Any],
    tombstone: Tombstone | None,
    context: ClassifyContext,
    receipt: Version | None = None,
    *,
    after: Version | None = None,
) -> Decision:
    """The decision for one record. ``tombstone``: the key's remembered delete, for a record that
    ``needs_tombstone``; ``receipt``: the key's removal receipt, for a REMOVE that ``needs_receipt``;
    ``after``: a version a stamp given here must come after (``classify_batch``)."""
    stream = record["dynamodb"]
    key: TypedItem = stream["Keys"]
    latest = context.latest
    old_image: TypedItem = stream.get("OldImage") or {}
    old_version = context.reading(old_image).version
    if record["eventName"] == "REMOVE":
        return _classify_remove(record, key, old_version, context, tombstone=tombstone, receipt=receipt)

    new_image: TypedItem = stream["NewImage"]
    if _engine_mark_change(record, latest):
        # The engine marking the item it is about to delete, or taking its mark off after its delete lost.
        return Decision(Action.ECHO, key)
    # Reserved names are never exported, and never taken from outside: the stamp removes them. The
    # engine's mark that an UpdateItem kept (written while the engine deletes the item) is not the
    # application's: the version decides that write, as any other.
    reserved = reserved_attributes(new_image)
    image = _without(new_image, reserved)
    taken = tuple(name for name in reserved if not _kept_mark(name, old_image, new_image, latest))
    new = context.reading(image)
    new_version = new.version
    if record["eventName"] == "INSERT" or old_version is None:
        # A new item, or one that had no version yet (written without one since a delete, from before
        # replication, or with attributes that are no version): what it has to beat is the
        # remembered delete, if any.
        floor = tombstone.version if tombstone else None
        if new_version is not None and floor is not None and new_version.as_upsert() <= floor.as_upsert():
            # The tombstone is read now, not when the item was written: whoever wrote the item, a
            # delete with a newer version is remembered, so by last-writer-wins the delete wins.
            return Decision(Action.DELETE_WINS, key, remembered=floor, written=new_version)
    else:
        # What an update had to beat: the version it replaced, as the record itself shows it.
        floor = old_version
    if not taken and new_version is not None and (floor is None or new_version > floor):
        if new_version.origin == context.peer_region:
            return Decision(Action.ECHO, key)
        return Decision(Action.FORWARD, key, change=Change(key, new_version, image, stream_created(record)))
    # A local change without a valid, newer version of its own (or carrying a reserved name), ordered
    # now, after everything this side knows of the key.
    reason = StampReason.RESERVED if taken else _PROBLEM_REASONS.get(new.problem, StampReason.NOT_NEWER)
    prior = newest(new_version, floor, after, tombstone.version if tombstone else None)
    stamp = stamp_version(prior, stream_time(record), context.now, context.local_region)
    stamped = {
        **image,
        context.names.timestamp: {"N": format_timestamp(stamp.timestamp)},
        context.names.origin: {"S": stamp.origin},
    }
    if item_size(stamped) > MAX_ITEM_BYTES:
        return Decision(
            Action.TOO_LARGE,
            key,
            seen=new.seen,
            stamp=stamp,
            reason=reason,
            remove=reserved,
            written=new_version,
        )
    return Decision(
        Action.STAMP,
        key,
        seen=new.seen,
        stamp=stamp,
        reason=reason,
        remove=reserved,
        written=new_version,
        replaced=_without(old_image, reserved_attributes(old_image)) if old_version is not None else None,
    )


def _classify_remove(
    record: dict[str, Any],
    key: TypedItem,
    old_version: Version | None,
    context: ClassifyContext,
    *,
    tombstone: Tombstone | None,
    receipt: Version | None,
) -> Decision:
    old_image = record["dynamodb"].get("OldImage") or {}
    marked_by_engine = _removed_by_engine(old_image, old_version, tombstone, context.latest)
    if marked_by_engine or _covered(receipt, old_version):
        return Decision(Action.ECHO, key)  # the replicator, or the forwarder enforcing a delete
    if is_ttl_delete(record) and not context.replicate_ttl_deletes:
        return Decision(Action.TTL, key)
    deleted = delete_version(old_version, stream_time(record), context.local_region)
    return Decision(Action.DELETE, key, change=Change(key, deleted, stream_created=stream_created(record)))


def _engine_mark_change(record: dict[str, Any], latest: Decimal) -> bool:
    """The record is the engine's delete mark being set (to a well-formed mark) or taken off again
    (``TableWriter.delete_if_older``, after its delete lost): a MODIFY that changes nothing but the
    mark. A write that changes the mark along with anything else is the application's."""
    if record["eventName"] != "MODIFY":
        return False
    stream = record["dynamodb"]
    new_image, old_image = stream["NewImage"], stream.get("OldImage") or {}
    if DELETE_MARK in new_image and _mark(new_image, latest) is None:
        return False
    return _without(new_image, (DELETE_MARK,)) == _without(old_image, (DELETE_MARK,))


def _kept_mark(name: str, old_image: TypedItem, new_image: TypedItem, latest: Decimal) -> bool:
    """``name`` is the engine's delete mark, well-formed and as the old image had it: a write (an
    UpdateItem) made while the engine deletes the item kept it."""
    return (
        name == DELETE_MARK
        and _mark(old_image, latest) is not None
        and new_image.get(DELETE_MARK) == old_image.get(DELETE_MARK)
    )


def _without(image: TypedItem, names: Sequence[str]) -> TypedItem:
    """``image`` less ``names``: the image itself when it has none of them (never modified here)."""
    if not any(name in image for name in names):
        return image
    return {name: value for name, value in image.items() if name not in names}


def _mark(image: TypedItem, latest: Decimal) -> tuple[Decimal, str] | None:
    """The delete version a mark holds ("<timestamp> <origin>", or "<timestamp>": any origin), if it
    is one the engine could have written (a valid timestamp within the clock-skew bound)."""
    mark = image.get(DELETE_MARK, {}).get("S")
    if not isinstance(mark, str):
        return None
    timestamp, _, origin = mark.partition(" ")
    marked = parse_timestamp(timestamp)
    if marked is None or marked > latest:
        return None
    return marked, origin


def _removed_by_engine(
    old_image: TypedItem, old_version: Version | None, tombstone: Tombstone | None, latest: Decimal
) -> bool:
    """The old image carries the engine's delete mark, and a version the engine's delete could
    remove (not newer than the delete's). A mark left by a delete attempt that failed stays on the
    item until a write replaces it; a later, newer application write keeps it, and that item's
    removal is the application's.

    The mark is the engine's only if the key's tombstone holds a delete at least as new: the engine
    remembers every delete before it marks the item, and tombstones only move forward. A mark an
    application wrote (copied from a backup, or forged) is not taken for the engine's."""
    mark = _mark(old_image, latest)
    if mark is None or tombstone is None:
        return False
    marked, origin = mark
    remembered = tombstone.version
    if not origin:  # the delete's origin was too long for the mark: any origin at that timestamp
        if remembered.timestamp < marked:
            return False
        return old_version is None or old_version.timestamp <= marked
    if remembered < Version(marked, origin, True):
        return False
    return old_version is None or old_version <= Version(marked, origin)


def _covered(receipt: Version | None, old_version: Version | None) -> bool:
    """The removal receipt shows that the engine removed an item of this key with a delete the
    removed version is not newer than."""
    return receipt is not None and (old_version is None or old_version.as_upsert() <= receipt)
