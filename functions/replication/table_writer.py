"""Conditional writes that enforce the conflict rules in DynamoDB itself (see docs/conflict-rules.md).

Every write carries the comparison in its condition expression, so concurrent writers (the
application, the replicator, the forwarder) can never let an older version replace a newer one.
Tombstones live in a small table shared by the endpoint's tables, keyed by the logical table name and the
digest of the item key ("NAME/DIGEST"), with a TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from replication.admission import RESERVED_PREFIX, reserved_attributes
from replication.backoff import Backoff
from replication.changes import Change
from replication.keys import TypedItem, TypedValue, key_digest
from replication.limits import MAX_NUMBER_DIGITS, MIN_NUMBER_EXPONENT, attribute_size
from replication.parallel import run_all
from replication.settings import TableSettings
from replication.typed_values import from_client, to_client
from replication.versions import (
    Version,
    clock_now,
    format_timestamp,
    latest_allowed,
    parse_timestamp,
    read_version,
)

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
TOMBSTONE_KEY = "k"
TOMBSTONE_SOURCE_LOCAL = "local"
TOMBSTONE_SOURCE_REPLICATED = "replicated"
# Set on an item right before the engine deletes it: the REMOVE record's old image then shows that
# the engine removed the item (an echo), not the application. Its value is the delete's version,
# "<timestamp> <origin>", or "<timestamp>" alone (any origin) when the origin is longer than
# MARK_ORIGIN_BYTES, so the mark's size has a bound the forwarder can reserve (MARK_RESERVE_BYTES).
DELETE_MARK = RESERVED_PREFIX + "deleting"
MARK_ORIGIN_BYTES = 64
# The longest canonical DynamoDB number: a negative one with 38 digits, the last at 10^-167
# ("-0." and 166 more digits).
MAX_TIMESTAMP_TEXT = 3 + (MAX_NUMBER_DIGITS - 1 - MIN_NUMBER_EXPONENT)
# Bytes the mark can add to an item, its name included (DynamoDB's accounting: limits.attribute_size).
MARK_RESERVE_BYTES = attribute_size(DELETE_MARK, {"S": "x" * (MAX_TIMESTAMP_TEXT + 1 + MARK_ORIGIN_BYTES)})
# A delete that cannot mark its item (the mark would take it over 400 KB) removes it in one
# transaction with a removal receipt: a row of the tombstone table keyed RECEIPT_PREFIX + "NAME/DIGEST",
# holding the newest delete version the engine removed an item of that key with.
RECEIPT_PREFIX = "removed#"
# Mark-and-delete rounds before a delete gives up for now (each lost round: the application rewrote
# the item with an older version between the mark and the delete).
DELETE_ROUNDS = 4
# Read-and-write rounds of a merge (``TableWriter.apply`` on a table with excluded attributes) before
# it gives up for now (each lost round: the application wrote an excluded attribute in between).
MERGE_ROUNDS = 4
BATCH_GET_LIMIT = 100


class Outcome(Enum):
    APPLIED = "applied"
    STALE = "stale"  # the table already holds a newer (or the same) version
    TOMBSTONED = "tombstoned"  # a newer delete is remembered for this key
    # Only with spare_unversioned (the forwarder's restore): not written, and what is there may be an
    # item without a version, which stays.
    SPARED = "spared"


class DeleteResult(Enum):
    REMOVED = "removed"
    ABSENT = "absent"
    NEWER = "newer"  # the item holds a newer version (or none, when spared): the delete lost


class StampResult(Enum):
    STAMPED = "stamped"
    CHANGED = "changed"  # the version attributes are no longer what the record showed: a newer write
    TOO_LARGE = "too-large"  # DynamoDB refused: with the version the item would exceed 400 KB


@dataclass(frozen=True)
class Tombstone:
    version: Version
    source: str


@dataclass(frozen=True)
class Applied:
    """What ``TableWriter.resolve`` came to: the ``outcome``, and for a change that lost (``STALE``,
    ``TOMBSTONED``) the version that won against it, ``held``: the item's version or the remembered
    delete, as far as the failed condition returned it (ReturnValuesOnConditionCheckFailure=ALL_OLD,
    which "consumes no read capacity units": DynamoDB API reference, PutItem, UpdateItem,
    TransactWriteItems' ``Put``/``ConditionCheck``). None when DynamoDB returned no item: the change
    was applied, or the winner is gone by the time of the last call (a delete that found a newer
    tombstone and no item)."""

    outcome: Outcome
    held: Version | None = None


@dataclass(frozen=True)
class Created:
    """A replicated upsert whose PutItem created its item (or found this very change there: a
    duplicate, or a retry after the check below failed). Its outcome is known only once the key's
    tombstone has been read *after* the put (``TableWriter.check_created``, one BatchGetItem for all
    of a run's created items): ``otherwise`` is the outcome unless a delete not older than
    ``version`` is remembered."""

    key: TypedItem
    version: Version
    otherwise: Applied


@dataclass(frozen=True)
class _Upserted:
    """``TableWriter._upsert``'s answer: the outcome (None: the merge guard may have failed, read
    again), the item that stayed (``SPARED``), and the version that won (``STALE``, ``TOMBSTONED``)."""

    outcome: Outcome | None
    spared: TypedItem | None = None
    held: Version | None = None


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class RetryableWriteError(Exception):
    """Throttling or conflicts outlasted the retry budget; the change must be retried later."""


def is_item_too_large(error: ClientError) -> bool:
    """DynamoDB refused a write because the item would exceed 400 KB ("Item size has exceeded the
    maximum allowed size", "Item size to update has exceeded the maximum allowed size")."""
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return (
        error_code(error) == "ValidationException"
        and "item size" in message
        and "maximum allowed size" in message
    )


def _older_than(incoming: Version, *, timestamp: str, origin: str, allow_equal: bool) -> str:
    """Condition text: the stored version (attributes ``timestamp``/``origin``) sorts before ``incoming``.

    ``allow_equal`` also accepts an equal (timestamp, origin): a delete wins over the upsert it removed.
    Stored attributes that are no version (versions.read_version: absent, not a Number and a non-empty
    String, or a timestamp beyond ``:latest``) are the oldest version, as the forwarder reads them.
    The types are tested before any comparison: DynamoDB evaluates a comparison of two different
    types as false (DynamoDB API reference, Condition, ComparisonOperator), which would make a
    wrongly typed version newer than every change.
    Values: ``_version_placeholders(..., compare=True)``.
    """
    compare = "<=" if allow_equal else "<"
    has_version = _has_version(timestamp=timestamp, origin=origin)
    return f"(NOT ({has_version}) OR {timestamp} < :ts OR ({timestamp} = :ts AND {origin} {compare} :origin))"


def _has_version(*, timestamp: str, origin: str) -> str:
    """Condition text: the stored attributes are a version (versions.read_version), as ``_older_than``
    reads them."""
    return (
        f"attribute_type({timestamp}, :number_type) AND {timestamp} <= :latest AND "
        f"attribute_type({origin}, :string_type) AND {origin} > :no_origin"
    )


def _versioned_and(condition: str, *, spare_unversioned: bool) -> str:
    """``condition``, and with ``spare_unversioned`` also: the stored item carries a version (an item
    without one is the application's write that the forwarder stamps instead)."""
    if not spare_unversioned:
        return condition
    return f"({_has_version(timestamp='#ts', origin='#origin')} AND {condition})"


def _key_value(key: TypedItem) -> tuple[tuple[str, str, str], ...]:
    """A key as DynamoDB compares it: (name, type, value) in name order, a number by its value (a key
    read back may spell a number differently from the stream record that named it)."""
    out = []
    for name in sorted(key):
        ((kind, value),) = key[name].items()
        out.append((name, kind, str(Decimal(value).normalize()) if kind == "N" else value))
    return tuple(out)


def _mark_value(version: Version) -> str:
    origin = version.origin
    if len(origin.encode("utf-8", "surrogatepass")) > MARK_ORIGIN_BYTES:
        return format_timestamp(version.timestamp)
    return f"{format_timestamp(version.timestamp)} {origin}"


class TableWriter:
    def __init__(
        self,
        dynamodb: Any,
        settings: TableSettings,
        *,
        backoff_factory: Callable[[], Backoff] = Backoff,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._settings = settings
        self._names = settings.version_attributes
        # The tombstone table is shared by every table of the endpoint: its rows are qualified by the
        # logical table name ("NAME/DIGEST"; a name holds no "/" or "#", settings.TABLE_NAME_PATTERN).
        self._tombstone_prefix = f"{settings.name}/"
        self._backoff_factory = backoff_factory
        self._clock = clock
        self._latest_formatted: tuple[Decimal | None, str] = (None, "")

    def _tombstone_id(self, key: TypedItem) -> str:
        return self._tombstone_prefix + key_digest(key)

    # -- the replicator's writes -------------------------------------------------------------

    def apply(self, change: Change) -> Outcome:
        return self.resolve(change).outcome

    def resolve(self, change: Change) -> Applied:
        """``apply``, with the version that won when the change lost (the replicator's record of
        conflicts, ``replication.conflicts``): no extra read or write, only what the conditional
        writes return when they fail. One change: ``write``, then ``check_created`` if it created
        the item. Raises what the failed step raised."""
        written = self.write(change)
        if not isinstance(written, Created):
            return written
        checked = self.check_created([written])[0]
        if isinstance(checked, BaseException):
            raise checked
        return checked

    def write(self, change: Change) -> Applied | Created:
        """The change's writes, retried while throttled: its outcome, or ``Created`` when its PutItem
        created the item and the key's tombstone must still be read (``check_created``)."""
        return self._retrying(lambda: self._write_once(change))

    def _write_once(self, change: Change) -> Applied | Created:
        if change.item is None:
            return self._apply_delete(change.key, change.version)
        if self._settings.excluded_attributes - change.item.keys():
            return self._merge(change.key, change.item, change.version)
        put = self._put_unless_newer(change.key, change.item, change.version)
        if put is not None:
            return put
        upserted = self._upsert(change.key, change.item, change.version, found_unversioned=True)
        assert upserted.outcome is not None
        return Applied(upserted.outcome, upserted.held)

    def check_created(
        self, created: Sequence[Created], concurrency: int = 1
    ) -> list[Applied | BaseException]:
        """The outcomes of items ``write`` created, in order (or the exception each one's check
        raised): the keys' tombstones in one strongly consistent read *after* all the puts
        (BatchGetItem, up to 100 keys a call, unprocessed keys retried; 1 RCU a key, found or
        not), then, for each key whose remembered delete is not older than the created version,
        that delete enforced (``delete_if_older``: marked, so its REMOVE is an echo; an item
        replaced meanwhile by something newer, or by an item without a version, the application's
        write after the delete, stays), ``concurrency`` at once. Read after the put, never before:
        either the read sees a delete remembered before it, or that delete was remembered after
        the item existed and whoever remembered it deletes the item next (tombstone first, then
        ``delete_if_older``). A tombstone beyond the clock-skew bound is not remembered
        (``tombstones``). Until then the created item is visible (docs/conflict-rules.md, "The
        created-item window")."""
        if not created:
            return []
        try:
            remembered = self._retrying(lambda: self.tombstones(entry.key for entry in created))
        except Exception as error:
            return [error for _ in created]

        results: list[Applied | BaseException] = []
        enforced: list[tuple[int, Created, Version]] = []  # (position, entry, the delete that wins)
        for position, entry in enumerate(created):
            tombstone = remembered.get(key_digest(entry.key)) if remembered else None
            if (
                tombstone is None
                or not tombstone.version.origin
                or tombstone.version.as_upsert() < entry.version.as_upsert()
            ):
                results.append(entry.otherwise)
                continue
            results.append(Applied(Outcome.TOMBSTONED, held=tombstone.version))
            enforced.append((position, entry, tombstone.version))
        if not enforced:
            return results

        # Only the keys whose remembered delete wins make calls: only they go to the thread pool
        # (in the same order as before), not every created item (issue 13: a future per item).
        def enforce(task: tuple[int, Created, Version]) -> None:
            _, entry, delete = task
            self._retrying(lambda: self._delete_if_older(entry.key, delete, spare_unversioned=True))

        for (position, _, _), failed in zip(enforced, run_all(enforced, enforce, concurrency), strict=True):
            if failed is not None:
                results[position] = failed
        return results

    def _merge(self, key: TypedItem, item: TypedItem, version: Version) -> Applied:
        """A replicated upsert on a table with excluded attributes (this side's residency rules:
        never sent, so the peer's items lack them): the change's attributes win, and each excluded
        attribute the change does not carry keeps this side's current value (docs/residency.md).

        Read the item's excluded attributes (GetItem, strongly consistent), then write the change
        with them under the usual version conditions and one more: each of them is still what was
        read (``attribute_not_exists`` where it was absent; an equality of two values of any type is
        exact in DynamoDB). An application write of one of them in between fails the write, and the
        next round reads it again, so that write is never lost. Raises ``RetryableWriteError`` after
        ``MERGE_ROUNDS`` lost rounds."""
        kept = sorted(self._settings.excluded_attributes - item.keys())
        names = {f"#x{index}": name for index, name in enumerate(kept)}
        for _ in range(MERGE_ROUNDS):
            response = self._db.get_item(
                TableName=self._settings.table_name,
                Key=to_client(key),
                ConsistentRead=True,
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
            )
            current = from_client(response["Item"]) if response.get("Item") else {}
            values: dict[str, Any] = {}
            conditions = []
            for placeholder, name in names.items():
                if name in current:
                    values[f":x{placeholder[2:]}"] = to_client({name: current[name]})[name]
                    conditions.append(f"{placeholder} = :x{placeholder[2:]}")
                else:
                    conditions.append(f"attribute_not_exists({placeholder})")
            merged = {**item, **{name: current[name] for name in kept if name in current}}
            upserted = self._upsert(key, merged, version, guard=(" AND ".join(conditions), names, values))
            if upserted.outcome is not None:
                return Applied(upserted.outcome, upserted.held)
        raise RetryableWriteError("an excluded attribute kept being rewritten while an upsert merged it")

    def _upsert(
        self,
        key: TypedItem,
        item: TypedItem,
        version: Version,
        *,
        spare_unversioned: bool = False,
        guard: tuple[str, dict[str, str], dict[str, Any]] | None = None,
        found_unversioned: bool = False,
    ) -> _Upserted:
        """Write ``item`` unless the table holds a newer (or the same) version or remembers a newer
        delete. An item without a version is the oldest, replaced if no newer delete is remembered;
        with ``spare_unversioned`` it stays: ``SPARED``, with the item that stayed when DynamoDB
        returned it (None if a write came in between the two calls). ``guard``: one more condition
        on the item (text, names, values: ``_merge``); when it may be what failed, the outcome is
        None (read again and retry). ``STALE`` and ``TOMBSTONED`` come with the version that won, as
        the failed condition returned it (ALL_OLD). ``found_unversioned``: the replicator's
        ``_put_unless_newer`` just found the item without a version (or gone), so the put that
        requires a version, which would fail, is skipped."""
        names, values = self._version_placeholders(version)
        any_key = next(iter(key))
        names["#key"] = any_key
        condition = _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False)
        versioned = _versioned_and(condition, spare_unversioned=True)
        client_item = to_client(item)
        guarded, item_names, item_values = "", names, values
        if guard is not None:
            guarded = f" AND ({guard[0]})"
            item_names, item_values = {**names, **guard[1]}, {**values, **guard[2]}
        # Fast path: the item exists with a version; one conditional put, no tombstone involved
        # (a delete newer than the item would have removed it, or is removing it and re-checks).
        if not found_unversioned:
            try:
                self._db.put_item(
                    TableName=self._settings.table_name,
                    Item=client_item,
                    ConditionExpression=f"attribute_exists(#key) AND {versioned}{guarded}",
                    ExpressionAttributeNames=item_names,
                    ExpressionAttributeValues=item_values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return _Upserted(Outcome.APPLIED)
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                current = from_client(error.response["Item"]) if error.response.get("Item") else None
                latest = parse_timestamp(values[":latest"]["N"])
                held = read_version(current, self._names, latest).version if current else None
                if held is not None:
                    if guard is not None and held < version.as_upsert():
                        return _Upserted(None)  # older, so the guard failed: read again
                    return _Upserted(Outcome.STALE, held=held)
                if current and spare_unversioned:
                    return _Upserted(Outcome.SPARED, current)
        # The item is absent, or has no version (written without one since a delete, from before
        # replication, or with attributes that are no version): replacing it must not resurrect a
        # newer delete.
        replaceable = versioned if spare_unversioned else condition
        tombstone_names = {"#ts": "ts", "#origin": "o", "#k": TOMBSTONE_KEY}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self._settings.tombstone_table_name,
                            "Key": {TOMBSTONE_KEY: {"S": self._tombstone_id(key)}},
                            "ConditionExpression": "attribute_not_exists(#k) OR "
                            + _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False),
                            "ExpressionAttributeNames": tombstone_names,
                            "ExpressionAttributeValues": values,
                            # The remembered delete that wins, for the record of conflicts.
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._settings.table_name,
                            "Item": client_item,
                            "ConditionExpression": f"(attribute_not_exists(#key) OR {replaceable}){guarded}",
                            "ExpressionAttributeNames": item_names,
                            "ExpressionAttributeValues": item_values,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
            return _Upserted(Outcome.APPLIED)
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            cancelled = error.response.get("CancellationReasons", [])
            reasons = [reason.get("Code", "None") for reason in cancelled]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                remembered = _tombstone_from_row(cancelled[0].get("Item") or {})
                return _Upserted(Outcome.TOMBSTONED, held=remembered.version if remembered else None)
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                if guard is not None:
                    return _Upserted(None)  # written meanwhile, maybe only an excluded attribute: read again
                # Written meanwhile: newer, or (spare_unversioned) maybe without a version.
                if spare_unversioned:
                    return _Upserted(Outcome.SPARED)
                return _Upserted(Outcome.STALE, held=self._version_in(cancelled[1].get("Item")))
            raise

    def _put_unless_newer(
        self, key: TypedItem, item: TypedItem, version: Version
    ) -> Applied | Created | None:
        """The replicator's upsert in one conditional PutItem (1 WCU per KB): written if the item is
        absent or holds an older version. Replacing a version needs no tombstone (a delete newer than
        that version removes the item, or is removing it and judges what is there). A created item
        must not resurrect a newer remembered delete: ``Created``, whose tombstone is read *after*
        the put (``check_created``). This replaces a put that always failed for a new item followed
        by a transaction checking the tombstone (5 WCU at 300 bytes, 11 at 4 KB) with one write and
        one strongly consistent read of a small row (1 RCU).

        None: the item exists without a version (the application's write since a delete, or from
        before replication), or was deleted in between; ``_upsert``'s transaction decides that case
        (it may stay, if a newer delete is remembered). ReturnValues ALL_OLD and
        ReturnValuesOnConditionCheckFailure ALL_OLD consume no read capacity (DynamoDB API
        reference, PutItem)."""
        names, values = self._version_placeholders(version)
        names["#key"] = next(iter(key))
        condition = _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False)
        versioned = _versioned_and(condition, spare_unversioned=True)
        try:
            response = self._db.put_item(
                TableName=self._settings.table_name,
                Item=to_client(item),
                ConditionExpression=f"attribute_not_exists(#key) OR {versioned}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            current = error.response.get("Item")
            if not current:
                return None  # deleted in between: judge again in the transaction
            held = self._version_in(current)
            if held is None:
                return None
            stale = Applied(Outcome.STALE, held)
            if held == version.as_upsert():
                # This very change is there (a duplicate, or a retry after the check failed): the
                # check it needs may not have run. Not written now: the table already holds it.
                return Created(key, version, otherwise=stale)
            return stale
        if response.get("Attributes"):
            return Applied(Outcome.APPLIED)
        return Created(key, version, otherwise=Applied(Outcome.APPLIED))

    def _apply_delete(self, key: TypedItem, version: Version) -> Applied:
        # Tombstone first: from this moment no older upsert can recreate the item.
        remembered, newer_delete = self._remember(key, version, TOMBSTONE_SOURCE_REPLICATED)
        result, newer_item = self._delete_if_older(key, version)
        if result is DeleteResult.REMOVED or (result is DeleteResult.ABSENT and remembered):
            return Applied(Outcome.APPLIED)
        # Lost: to a newer item (NEWER), else to the newer (or the same) delete already remembered.
        return Applied(Outcome.STALE, newer_item if result is DeleteResult.NEWER else newer_delete)

    def _version_in(self, item: dict[str, Any] | None) -> Version | None:
        """The version of an item DynamoDB returned (client form), None without one."""
        return read_version(from_client(item), self._names, self._latest()).version if item else None

    # -- writes shared with the forwarder ----------------------------------------------------

    def remember_delete(self, key: TypedItem, version: Version, source: str) -> bool:
        """Write the tombstone unless a newer (or the same) one is there; True if written."""
        return self._remember(key, version, source)[0]

    def _remember(self, key: TypedItem, version: Version, source: str) -> tuple[bool, Version | None]:
        """``remember_delete``, and when not written the delete remembered instead (ALL_OLD)."""
        _, values = self._version_placeholders(version)
        expires_at = int(self._clock()) + self._settings.tombstone_ttl_seconds
        try:
            self._db.put_item(
                TableName=self._settings.tombstone_table_name,
                Item={
                    TOMBSTONE_KEY: {"S": self._tombstone_id(key)},
                    "key": {"M": to_client(key)},
                    "ts": values[":ts"],
                    "o": values[":origin"],
                    "src": {"S": source},
                    "expires_at": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(#k) OR "
                + _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False),
                ExpressionAttributeNames={"#k": TOMBSTONE_KEY, "#ts": "ts", "#origin": "o"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True, None
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                held = _tombstone_from_row(error.response.get("Item") or {})
                return False, held.version if held else None
            raise

    def delete_if_older(
        self, key: TypedItem, version: Version, *, spare_unversioned: bool = False
    ) -> DeleteResult:
        """Delete the item unless its version is newer than the delete ``version``.

        Two calls, because the REMOVE record's old image must show that the engine removed the item:
        mark it (UpdateItem, if older), then delete it (DeleteItem) if it still carries this mark
        *and* is still older. The application may write the item between the two; the version
        decides, never the mark alone (an UpdateItem keeps the mark: issue 9, fault 5):

        - a newer version keeps the item; the engine takes its mark off again (``NEWER``);
        - an older write that replaced the mark is marked and deleted in the next round;
        - an application delete leaves nothing to do (``ABSENT``).

        An item the mark would take over 400 KB is removed with a receipt instead
        (``delete_with_receipt``). ``spare_unversioned``: the forwarder enforcing a remembered delete
        removes only items that carry a version. An item without one is the application's write
        after the delete, which the forwarder stamps after it (docs/conflict-rules.md); the
        replicator removes such items.

        Raises ``RetryableWriteError`` when the application rewrote the item with an older
        version between every mark and delete of ``DELETE_ROUNDS`` rounds.
        """
        return self._delete_if_older(key, version, spare_unversioned=spare_unversioned)[0]

    def _delete_if_older(
        self, key: TypedItem, version: Version, *, spare_unversioned: bool = False
    ) -> tuple[DeleteResult, Version | None]:
        """``delete_if_older``, and for ``NEWER`` the version that kept the item, as the failed
        condition returned it (ALL_OLD; None for an item without one)."""
        names, values = self._version_placeholders(version)
        names["#key"] = next(iter(key))
        names["#mark"] = DELETE_MARK
        mark = {"S": _mark_value(version)}
        values[":mark"] = mark
        older = _versioned_and(
            _older_than(version, timestamp="#ts", origin="#origin", allow_equal=True),
            spare_unversioned=spare_unversioned,
        )
        for _ in range(DELETE_ROUNDS):
            try:
                self._db.update_item(
                    TableName=self._settings.table_name,
                    Key=to_client(key),
                    UpdateExpression="SET #mark = :mark",
                    ConditionExpression=f"attribute_exists(#key) AND {older}",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if is_item_too_large(error):
                    return self._delete_with_receipt(key, version, spare_unversioned=spare_unversioned)
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                item = error.response.get("Item")
                if not item:
                    return DeleteResult.ABSENT, None
                if item.get(DELETE_MARK) == mark:  # left by the previous round: this delete lost
                    self._unmark(key, mark)
                return DeleteResult.NEWER, self._version_in(item)
            try:
                self._db.delete_item(
                    TableName=self._settings.table_name,
                    Key=to_client(key),
                    ConditionExpression=f"#mark = :mark AND {older}",
                    ExpressionAttributeNames={name: value for name, value in names.items() if name != "#key"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                continue  # the application wrote the item in between: judge what is there now
            return DeleteResult.REMOVED, None
        raise RetryableWriteError("the item kept being rewritten with older versions while being deleted")

    def _unmark(self, key: TypedItem, mark: dict[str, str]) -> None:
        """Take this delete's mark off an item that turned out newer; not if anything replaced it."""
        try:
            self._db.update_item(
                TableName=self._settings.table_name,
                Key=to_client(key),
                UpdateExpression="REMOVE #mark",
                ConditionExpression="#mark = :mark",
                ExpressionAttributeNames={"#mark": DELETE_MARK},
                ExpressionAttributeValues={":mark": mark},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def delete_with_receipt(
        self, key: TypedItem, version: Version, *, spare_unversioned: bool = False
    ) -> DeleteResult:
        """Delete an item that cannot take the mark (it would exceed 400 KB), unless its version is
        newer: in one transaction with the key's removal receipt (``RECEIPT_PREFIX``), which then holds
        ``version``. The forwarder reads the receipt for a REMOVE too large to have carried a mark, and
        takes it for the engine's when the receipt is not older than the removed version. The receipt
        only ever moves forward: when it already holds a newer delete, that one covers this removal
        too, and the item is deleted alone. (TransactWriteItems: DeleteItem on the table, PutItem on
        the tombstone table.) ``spare_unversioned``: as ``delete_if_older``."""
        return self._delete_with_receipt(key, version, spare_unversioned=spare_unversioned)[0]

    def _delete_with_receipt(
        self, key: TypedItem, version: Version, *, spare_unversioned: bool = False
    ) -> tuple[DeleteResult, Version | None]:
        """``delete_with_receipt``, and for ``NEWER`` the version that kept the item (ALL_OLD)."""
        names, values = self._version_placeholders(version)
        names["#key"] = next(iter(key))
        item_condition = "attribute_exists(#key) AND " + _versioned_and(
            _older_than(version, timestamp="#ts", origin="#origin", allow_equal=True),
            spare_unversioned=spare_unversioned,
        )
        receipt = {
            TOMBSTONE_KEY: {"S": RECEIPT_PREFIX + self._tombstone_id(key)},
            "ts": values[":ts"],
            "o": values[":origin"],
            "expires_at": {"N": str(int(self._clock()) + self._settings.tombstone_ttl_seconds)},
        }
        delete = {
            "TableName": self._settings.table_name,
            "Key": to_client(key),
            "ConditionExpression": item_condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {"Delete": {**delete, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                    {
                        "Put": {
                            "TableName": self._settings.tombstone_table_name,
                            "Item": receipt,
                            "ConditionExpression": "attribute_not_exists(#k) OR "
                            + _older_than(version, timestamp="#ts", origin="#origin", allow_equal=True),
                            "ExpressionAttributeNames": {"#k": TOMBSTONE_KEY, "#ts": "ts", "#origin": "o"},
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
            return DeleteResult.REMOVED, None
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons", [])
            codes = [reason.get("Code", "None") for reason in reasons]
            if codes[:1] == ["ConditionalCheckFailed"]:
                return self._newer_or_absent(reasons[0].get("Item"))
            if codes[1:2] != ["ConditionalCheckFailed"]:
                raise
        # A newer receipt is there already: it covers this removal.
        try:
            self._db.delete_item(**delete, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return self._newer_or_absent(error.response.get("Item"))
            raise
        return DeleteResult.REMOVED, None

    def _newer_or_absent(self, item: dict[str, Any] | None) -> tuple[DeleteResult, Version | None]:
        """A delete's failed condition: the item that kept it (ALL_OLD) and its version, or none."""
        return (DeleteResult.NEWER, self._version_in(item)) if item else (DeleteResult.ABSENT, None)

    def stamp(
        self,
        key: TypedItem,
        seen: tuple[TypedValue | None, TypedValue | None],
        stamp: Version,
        remove: Iterable[str] = (),
    ) -> StampResult:
        """Give a local write without a valid, newer version of its own the version ``stamp``.

        Only if the version attributes are still exactly what the stream record showed (``seen``:
        the timestamp and origin attributes as typed values, None where absent; an equality of two
        values of any type, lists and maps included, is exact in DynamoDB): a write that came in
        between is newer and will be seen in the stream itself. Removes the delete mark and the
        attributes in ``remove`` (engine-reserved names the write carried).
        """
        names, values = self._version_placeholders(stamp, compare=False)
        names["#key"] = next(iter(key))
        unchanged = ["attribute_exists(#key)"]
        for placeholder, value in (("#ts", seen[0]), ("#origin", seen[1])):
            if value is None:
                unchanged.append(f"attribute_not_exists({placeholder})")
            else:
                values[f":seen{placeholder[1:]}"] = to_client({placeholder: value})[placeholder]
                unchanged.append(f"{placeholder} = :seen{placeholder[1:]}")
        removed = sorted({DELETE_MARK, *remove})
        for index, name in enumerate(removed):
            names[f"#r{index}"] = name
        try:
            self._retrying(
                lambda: self._db.update_item(
                    TableName=self._settings.table_name,
                    Key=to_client(key),
                    # A mark left by a delete that lost to this write must not mark the write.
                    UpdateExpression="SET #ts = :ts, #origin = :origin REMOVE "
                    + ", ".join(f"#r{index}" for index in range(len(removed))),
                    ConditionExpression=" AND ".join(unchanged),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return StampResult.CHANGED
            if is_item_too_large(error):
                return StampResult.TOO_LARGE
            raise
        return StampResult.STAMPED

    def restore(self, key: TypedItem, replaced: TypedItem, stamp: Version) -> bool:
        """After a failed stamp of a write over an item with a version (a write that kept that
        version, set none, or set an older one): nothing older than ``replaced`` (that version's item
        as the write that set it made it, without engine-reserved names: ``classify.classify_batch``)
        may stay, since the peer holds that version or a newer one.
        Last-writer-wins: the unstamped write is lost to what replaced it, but

        - a version older than ``replaced`` (a replicated change that was stale on this side, a
          second write with an older version), or no item and no newer remembered delete: the
          forwarder puts ``replaced`` back;
        - an item without a version (the application's next write): it is stamped after
          ``replaced`` and after now (its own record's stamp would only be after the lowered
          version it replaced; anything written before it, a delete too, is older than now):
          ``stamp`` (the lost write's) or the engine's clock, whichever is later.

        Rounds, as the application may keep writing; True if either was written, False if a newer
        version or delete holds the key (or the writes kept coming: their own records follow)."""
        version = read_version(replaced, self._names).version
        if version is None:
            raise ValueError("restore needs an item image with a version")
        now = clock_now(self._clock())
        later = stamp if stamp.timestamp > now else Version(now, stamp.origin)
        for _ in range(DELETE_ROUNDS):
            upserted = self._retrying(lambda: self._upsert(key, replaced, version, spare_unversioned=True))
            if upserted.outcome is not Outcome.SPARED:
                return upserted.outcome is Outcome.APPLIED
            spared = upserted.spared
            if spared is None:
                continue  # written between the two calls: judge what is there now
            seen = read_version(spared, self._names).seen
            if self.stamp(key, seen, later, reserved_attributes(spared)) is StampResult.STAMPED:
                return True
        return False

    def tombstones(self, keys: Iterable[TypedItem]) -> dict[str, Tombstone]:
        """Tombstones for these keys by key digest (strongly consistent reads). A tombstone whose
        version is beyond the allowed clock skew is not remembered (written before the bound)."""
        latest = self._latest()
        found: dict[str, Tombstone] = {}
        for row_id, row in self._rows({self._tombstone_id(key) for key in keys}).items():
            digest = row_id.removeprefix(self._tombstone_prefix)
            tombstone = _tombstone_from_row(row)
            if tombstone is not None and tombstone.version.timestamp <= latest:
                found[digest] = tombstone
        return found

    def removal_receipts(self, keys: Iterable[TypedItem]) -> dict[str, Version]:
        """The removal receipts (see ``delete_with_receipt``) of these keys by key digest."""
        rows = self._rows({RECEIPT_PREFIX + self._tombstone_id(key) for key in keys})
        found: dict[str, Version] = {}
        for row_id, row in rows.items():
            tombstone = _tombstone_from_row(row)
            if tombstone is not None:
                found[row_id.removeprefix(RECEIPT_PREFIX + self._tombstone_prefix)] = tombstone.version
        return found

    def existing(self, keys: Iterable[TypedItem]) -> set[str]:
        """Digests of the keys whose item is in the table now (BatchGetItem, strongly consistent, the
        key attributes projected). The forwarder reads a local delete's item after writing its
        tombstone: an item found was put before the tombstone existed (docs/conflict-rules.md)."""
        by_value: dict[tuple[tuple[str, str, str], ...], list[TypedItem]] = {}
        for key in keys:
            by_value.setdefault(_key_value(key), []).append(key)
        if not by_value:
            return set()
        requested = sorted(by_value)
        names = {f"#k{index}": name for index, (name, _, _) in enumerate(requested[0])}
        rows = self._batch_get(
            self._settings.table_name,
            [to_client(by_value[value][0]) for value in requested],
            {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names},
            "item reads",
        )
        found = (by_value.get(_key_value(from_client(row)), []) for row in rows)
        return {key_digest(key) for spellings in found for key in spellings}

    def _rows(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """Rows of the tombstone table by their key ``k`` (BatchGetItem, strongly consistent)."""
        keys = [{TOMBSTONE_KEY: {"S": row_id}} for row_id in sorted(ids)]
        rows = self._batch_get(self._settings.tombstone_table_name, keys, {}, "tombstone reads")
        return {row[TOMBSTONE_KEY]["S"]: row for row in rows}

    def _batch_get(
        self, table: str, keys: list[dict[str, Any]], options: dict[str, Any], what: str
    ) -> list[dict[str, Any]]:
        """The items of ``table`` at ``keys`` (client form), strongly consistent, ``BATCH_GET_LIMIT``
        keys a call; unprocessed keys are asked again with backoff."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                table: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True, **options}
            }
            backoff = self._backoff_factory()
            while request:
                response = self._db.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(table, []))
                request = response.get("UnprocessedKeys") or {}
                if request and not backoff.wait():
                    raise RetryableWriteError(f"{what} kept being throttled")
        return found

    def record_probe(self, probe_id: str, origin: str) -> None:
        """Leave a receipt for a credentials probe so the operator's tool can see it arrived."""
        now = self._clock()
        self._db.put_item(
            TableName=self._settings.tombstone_table_name,
            Item={
                TOMBSTONE_KEY: {"S": f"probe#{probe_id}"},
                "o": {"S": origin},
                "received_at": {"N": f"{now:.3f}"},
                "expires_at": {"N": str(int(now) + 86400)},
            },
        )

    # -- helpers -----------------------------------------------------------------------------

    def _version_placeholders(
        self, version: Version, *, compare: bool = True
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Names and values for ``version``; with ``compare``, also the values ``_older_than`` uses
        (DynamoDB refuses a request with an expression attribute value no expression uses)."""
        names = {"#ts": self._names.timestamp, "#origin": self._names.origin}
        values: dict[str, Any] = {
            ":ts": {"N": format_timestamp(version.timestamp)},
            ":origin": {"S": version.origin},
        }
        if compare:
            values.update(
                {
                    ":number_type": {"S": "N"},
                    ":string_type": {"S": "S"},
                    ":no_origin": {"S": ""},
                    ":latest": {"N": self._latest_text()},
                }
            )
        return names, values

    def _latest_text(self) -> str:
        """``_latest()`` as DynamoDB text, formatted once per value (a whole second: it changes once
        a second, and every conditional write carries it; issue 13)."""
        latest = self._latest()
        cached = self._latest_formatted  # one tuple, read and replaced whole: safe across threads
        if cached[0] != latest:
            cached = (latest, format_timestamp(latest))
            self._latest_formatted = cached
        return cached[1]

    def _latest(self) -> Decimal:
        """The latest timestamp this side accepts as a version now (versions.latest_allowed)."""
        return latest_allowed(self._clock(), self._settings.max_clock_skew_seconds)

    def _retrying(self, operation: Callable[[], Any]) -> Any:
        backoff = self._backoff_factory()
        while True:
            try:
                return operation()
            except ClientError as error:
                code = error_code(error)
                if code == "TransactionCanceledException":
                    reasons = {r.get("Code") for r in error.response.get("CancellationReasons", [])}
                    retryable = bool(reasons & {"ThrottlingError", "TransactionConflict"})
                else:
                    retryable = code in THROTTLING_CODES
                if not retryable:
                    raise
                if not backoff.wait():
                    raise RetryableWriteError(f"gave up after repeated {code}") from error


def _tombstone_from_row(row: dict[str, Any]) -> Tombstone | None:
    timestamp = parse_timestamp(row.get("ts", {}).get("N", ""))
    origin = row.get("o", {}).get("S")
    if timestamp is None or origin is None:
        return None
    return Tombstone(
        Version(timestamp, origin, True), row.get("src", {}).get("S", TOMBSTONE_SOURCE_REPLICATED)
    )


__all__ = [
    "Applied",
    "Created",
    "Outcome",
    "RetryableWriteError",
    "StampResult",
    "TableWriter",
    "Tombstone",
    "from_client",
]
