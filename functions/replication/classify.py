"""The forwarder's decision for one DynamoDB stream record (pure: no AWS calls).

See docs/conflict-rules.md for why each rule is what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from replication.changes import Change
from replication.keys import TypedItem, key_digest
from replication.settings import VersionAttributes
from replication.table_writer import DELETE_MARK, TOMBSTONE_SOURCE_LOCAL, Tombstone
from replication.versions import Version, delete_version, newest, parse_timestamp, stamp_version, version_of

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


class Action(Enum):
    FORWARD = "forward"  # a local write with its own newer version: send it
    DELETE = "delete"  # a local delete: remember it (tombstone), then send it
    STAMP = "stamp"  # a local write without a newer version: stamp it; the stamp's record is sent
    DELETE_WINS = "delete-wins"  # a new item older than a remembered delete: remove it, send nothing
    ECHO = "echo"  # written by the engine (replicator, or the forwarder enforcing a delete): not sent
    TTL = "ttl"  # a TTL expiry, not replicated by default


@dataclass(frozen=True)
class Decision:
    action: Action
    key: TypedItem
    change: Change | None = None  # FORWARD, DELETE
    seen: Version | None = None  # STAMP: the version attributes the record showed
    stamp: Version | None = None  # STAMP: the version to give the item
    remembered: Version | None = None  # DELETE_WINS: the remembered delete that wins
    # STAMP of a write that lowered the item's version: the item it replaced, put back if something
    # older than that replaces the write before its stamp (TableWriter.restore).
    replaced: TypedItem | None = None


@dataclass(frozen=True)
class ClassifyContext:
    names: VersionAttributes
    local_region: str
    peer_region: str
    replicate_ttl_deletes: bool


def needs_tombstone(record: dict[str, Any], names: VersionAttributes) -> bool:
    """INSERTs, and MODIFYs of an item that had no version, are decided against the key's tombstone,
    and a write without a newer version is stamped after it; other MODIFYs are decided against the
    old image; REMOVEs by the engine's delete mark."""
    event = record.get("eventName")
    if event == "INSERT":
        return True
    if event != "MODIFY":
        return False
    old_image, new_image = record["dynamodb"].get("OldImage", {}), record["dynamodb"].get("NewImage", {})
    if DELETE_MARK in new_image and DELETE_MARK not in old_image:
        return False  # the engine marking an item it deletes
    old_version = version_of(old_image, names)
    new_version = version_of(_without_mark(new_image), names)
    return old_version is None or new_version is None or not new_version > old_version


def stream_time(record: dict[str, Any]) -> Decimal:
    return Decimal(str(record["dynamodb"].get("ApproximateCreationDateTime", 0))).to_integral_value(
        rounding="ROUND_FLOOR"
    )


def is_ttl_delete(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL


def classify_batch(
    records: Sequence[dict[str, Any]], tombstones: dict[str, Tombstone], context: ClassifyContext
) -> list[Decision]:
    """The decisions for a batch of stream records in order. ``tombstones`` (by key digest) were read
    before the batch's local writes, and each record shows the item before them; the local writes run
    in record order per key, after the whole batch was read. So a local delete counts as remembered
    for the records after it, and a stamp, given when the forwarder has seen the whole batch, comes
    after every version and delete of its key in the batch and after the batch's earlier stamps of
    the key: a stamp lands on whatever write holds the version it saw (an unversioned write later in
    the batch too), so it must be newer than anything that write followed, and two stamps of a batch
    must never give two writes the same version."""
    seen: dict[str, Version] = {}
    for record in records:
        digest = key_digest(record["dynamodb"]["Keys"])
        for version in _versions_in(record, context):
            seen[digest] = newest(seen.get(digest), version) or version
    remembered = dict(tombstones)
    decisions = []
    for record in records:
        digest = key_digest(record["dynamodb"]["Keys"])
        tombstone = remembered.get(digest) if needs_tombstone(record, context.names) else None
        decision = classify(record, tombstone, context, after=seen.get(digest))
        if decision.action is Action.DELETE and decision.change is not None:
            deleted = decision.change.version
            known = remembered.get(digest)
            if known is None or known.version < deleted:
                remembered[digest] = Tombstone(deleted, TOMBSTONE_SOURCE_LOCAL)
        if decision.action is Action.STAMP and decision.stamp is not None:
            seen[digest] = decision.stamp
        decisions.append(decision)
    return decisions


def _versions_in(record: dict[str, Any], context: ClassifyContext) -> list[Version]:
    """The versions a record shows: its images', and for a REMOVE the version of the delete."""
    stream = record["dynamodb"]
    found = [version_of(stream.get(image), context.names) for image in ("OldImage", "NewImage")]
    if record.get("eventName") == "REMOVE":
        found.append(delete_version(found[0], stream_time(record), context.local_region))
    return [version for version in found if version is not None]


def classify(
    record: dict[str, Any],
    tombstone: Tombstone | None,
    context: ClassifyContext,
    *,
    after: Version | None = None,
) -> Decision:
    """The decision for one record. ``tombstone``: the key's remembered delete (read where
    ``needs_tombstone``); ``after``: a version a stamp given here must come after
    (``classify_batch``)."""
    stream = record["dynamodb"]
    key: TypedItem = stream["Keys"]
    old_image: TypedItem = stream.get("OldImage", {})
    old_version = version_of(old_image, context.names)
    if record["eventName"] == "REMOVE":
        return _classify_remove(record, key, old_version, context)

    new_image: TypedItem = stream["NewImage"]
    if DELETE_MARK in new_image:
        if DELETE_MARK not in old_image:
            return Decision(Action.ECHO, key)  # the engine marking the item it is about to delete
        new_image = {name: value for name, value in new_image.items() if name != DELETE_MARK}
    elif DELETE_MARK in old_image and new_image == _without_mark(old_image):
        return Decision(Action.ECHO, key)  # the engine taking its mark off after its delete lost
    new_version = version_of(new_image, context.names)
    if record["eventName"] == "INSERT" or old_version is None:
        # A new item, or one that had no version yet (written without one since a delete, or from
        # before replication): what it has to beat is the remembered delete, if any.
        floor = tombstone.version if tombstone else None
        if new_version is not None and floor is not None and new_version.as_upsert() <= floor.as_upsert():
            # The tombstone is read now, not when the item was written: whoever wrote the item, a
            # delete with a newer version is remembered, so by last-writer-wins the delete wins.
            return Decision(Action.DELETE_WINS, key, remembered=floor)
    else:
        # What an update had to beat: the version it replaced, as the record itself shows it.
        floor = old_version
    if new_version is not None and (floor is None or new_version > floor):
        if new_version.origin == context.peer_region:
            return Decision(Action.ECHO, key)
        return Decision(Action.FORWARD, key, change=Change(key, new_version, new_image))
    # The write left the version as it was (or set an older one): a local change all the same,
    # ordered now, after everything this side knows of the key.
    prior = newest(new_version, floor, after, tombstone.version if tombstone else None)
    lowered = old_version is not None and (new_version is None or new_version < old_version)
    return Decision(
        Action.STAMP,
        key,
        seen=new_version,
        stamp=stamp_version(prior, stream_time(record), context.local_region),
        replaced=_without_mark(old_image) if lowered else None,
    )


def _classify_remove(
    record: dict[str, Any],
    key: TypedItem,
    old_version: Version | None,
    context: ClassifyContext,
) -> Decision:
    if _removed_by_engine(record["dynamodb"].get("OldImage", {}), old_version):
        return Decision(Action.ECHO, key)  # the replicator, or the forwarder enforcing a delete
    if is_ttl_delete(record) and not context.replicate_ttl_deletes:
        return Decision(Action.TTL, key)
    deleted = delete_version(old_version, stream_time(record), context.local_region)
    return Decision(Action.DELETE, key, change=Change(key, deleted))


def _without_mark(image: TypedItem) -> TypedItem:
    return {name: value for name, value in image.items() if name != DELETE_MARK}


def _removed_by_engine(old_image: TypedItem, old_version: Version | None) -> bool:
    """The old image carries the engine's delete mark, and a version the engine's delete could
    remove (not newer than the delete's). A mark left by a delete attempt that failed stays on the
    item until a write replaces it; a later, newer application write keeps it, and that item's
    removal is the application's."""
    mark = old_image.get(DELETE_MARK, {}).get("S", "")
    timestamp, _, origin = mark.partition(" ")
    marked = parse_timestamp(timestamp)
    if marked is None or not origin:
        return False
    return old_version is None or old_version <= Version(marked, origin)
