"""The forwarder's decision for one DynamoDB stream record (pure: no AWS calls).

See docs/conflict-rules.md for why each rule is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from replication.changes import Change
from replication.keys import TypedItem
from replication.settings import VersionAttributes
from replication.table_writer import DELETE_MARK, Tombstone
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


@dataclass(frozen=True)
class ClassifyContext:
    names: VersionAttributes
    local_region: str
    peer_region: str
    replicate_ttl_deletes: bool


def needs_tombstone(record: dict[str, Any]) -> bool:
    """INSERTs are decided against the key's tombstone; MODIFYs against the old image; REMOVEs by
    the engine's delete mark."""
    return record.get("eventName") == "INSERT"


def stream_time(record: dict[str, Any]) -> Decimal:
    return Decimal(str(record["dynamodb"].get("ApproximateCreationDateTime", 0))).to_integral_value(
        rounding="ROUND_FLOOR"
    )


def is_ttl_delete(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL


def classify(record: dict[str, Any], tombstone: Tombstone | None, context: ClassifyContext) -> Decision:
    stream = record["dynamodb"]
    key: TypedItem = stream["Keys"]
    old_version = version_of(stream.get("OldImage"), context.names)
    if record["eventName"] == "REMOVE":
        return _classify_remove(record, key, old_version, context)

    new_image: TypedItem = stream["NewImage"]
    if DELETE_MARK in new_image:
        if DELETE_MARK not in stream.get("OldImage", {}):
            return Decision(Action.ECHO, key)  # the engine marking the item it is about to delete
        new_image = {name: value for name, value in new_image.items() if name != DELETE_MARK}
    new_version = version_of(new_image, context.names)
    if record["eventName"] == "INSERT":
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
    # The write left the version as it was (or set an older one): a local change all the same.
    prior = newest(new_version, floor)
    return Decision(
        Action.STAMP,
        key,
        seen=new_version,
        stamp=stamp_version(prior, stream_time(record), context.local_region),
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
