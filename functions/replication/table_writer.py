"""Conditional writes that enforce the conflict rules in DynamoDB itself (see docs/conflict-rules.md).

Every write carries the comparison in its condition expression, so concurrent writers (the
application, the replicator, the forwarder) can never let an older version replace a newer one.
Tombstones live in a small table keyed by the digest of the item key, with a TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from replication.backoff import Backoff
from replication.changes import Change
from replication.keys import TypedItem, key_digest
from replication.settings import TableSettings
from replication.typed_values import from_client, to_client
from replication.versions import Version, format_timestamp, parse_timestamp, version_of

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
# the engine removed the item (an echo), not the application.
DELETE_MARK = "_ddbrep_deleting"
# Mark-and-delete rounds before a delete gives up for now (each lost round: the application rewrote
# the item with an older version between the mark and the delete).
DELETE_ROUNDS = 4
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


@dataclass(frozen=True)
class Tombstone:
    version: Version
    source: str


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class RetryableWriteError(Exception):
    """Throttling or conflicts outlasted the retry budget; the change must be retried later."""


def _older_than(incoming: Version, *, timestamp: str, origin: str, allow_equal: bool) -> str:
    """Condition text: the stored version (attributes ``timestamp``/``origin``) sorts before ``incoming``.

    ``allow_equal`` also accepts an equal (timestamp, origin): a delete wins over the upsert it removed.
    A missing timestamp is the oldest version; a missing origin sorts before any origin.
    """
    compare = "<=" if allow_equal else "<"
    return (
        f"(attribute_not_exists({timestamp}) OR {timestamp} < :ts OR "
        f"({timestamp} = :ts AND (attribute_not_exists({origin}) OR {origin} {compare} :origin)))"
    )


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
        self._backoff_factory = backoff_factory
        self._clock = clock

    # -- the replicator's writes -------------------------------------------------------------

    def apply(self, change: Change) -> Outcome:
        return self._retrying(lambda: self._apply_once(change))

    def _apply_once(self, change: Change) -> Outcome:
        if change.item is None:
            return self._apply_delete(change.key, change.version)
        return self._apply_upsert(change.key, change.item, change.version)

    def _apply_upsert(
        self, key: TypedItem, item: TypedItem, version: Version, *, spare_unversioned: bool = False
    ) -> Outcome:
        """Write ``item`` unless the table holds a newer (or the same) version or remembers a newer
        delete. An item without a version is the oldest, replaced if no newer delete is remembered;
        with ``spare_unversioned`` it stays (``SPARED``)."""
        names, values = self._version_placeholders(version)
        any_key = next(iter(key))
        names["#key"] = any_key
        condition = _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False)
        versioned = f"(attribute_exists(#ts) AND attribute_exists(#origin) AND {condition})"
        client_item = to_client(item)
        # Fast path: the item exists with a version; one conditional put, no tombstone involved
        # (a delete newer than the item would have removed it, or is removing it and re-checks).
        try:
            self._db.put_item(
                TableName=self._settings.table_name,
                Item=client_item,
                ConditionExpression=f"attribute_exists(#key) AND {versioned}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Outcome.APPLIED
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            current = error.response.get("Item")
            if current and version_of(from_client(current), self._names) is not None:
                return Outcome.STALE
            if current and spare_unversioned:
                return Outcome.SPARED
        # The item is absent, or has no version (written without one since a delete, or from before
        # replication): replacing it must not resurrect a newer delete.
        replaceable = versioned if spare_unversioned else condition
        tombstone_names = {"#ts": "ts", "#origin": "o", "#k": TOMBSTONE_KEY}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self._settings.tombstone_table_name,
                            "Key": {TOMBSTONE_KEY: {"S": key_digest(key)}},
                            "ConditionExpression": "attribute_not_exists(#k) OR "
                            + _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False),
                            "ExpressionAttributeNames": tombstone_names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._settings.table_name,
                            "Item": client_item,
                            "ConditionExpression": f"attribute_not_exists(#key) OR {replaceable}",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
            return Outcome.APPLIED
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return Outcome.TOMBSTONED
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                # Written meanwhile: newer, or (spare_unversioned) maybe without a version.
                return Outcome.SPARED if spare_unversioned else Outcome.STALE
            raise

    def _apply_delete(self, key: TypedItem, version: Version) -> Outcome:
        # Tombstone first: from this moment no older upsert can recreate the item.
        remembered = self.remember_delete(key, version, TOMBSTONE_SOURCE_REPLICATED)
        result = self.delete_if_older(key, version)
        if result is DeleteResult.REMOVED or (result is DeleteResult.ABSENT and remembered):
            return Outcome.APPLIED
        return Outcome.STALE

    # -- writes shared with the forwarder ----------------------------------------------------

    def remember_delete(self, key: TypedItem, version: Version, source: str) -> bool:
        """Write the tombstone unless a newer (or the same) one is there; True if written."""
        _, values = self._version_placeholders(version)
        expires_at = int(self._clock()) + self._settings.tombstone_ttl_seconds
        try:
            self._db.put_item(
                TableName=self._settings.tombstone_table_name,
                Item={
                    TOMBSTONE_KEY: {"S": key_digest(key)},
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
            )
            return True
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
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

        ``spare_unversioned``: the forwarder enforcing a remembered delete removes only items that
        carry a version. An item without one is the application's write after the delete, which
        the forwarder stamps after it (docs/conflict-rules.md); the replicator removes such items.

        Raises ``RetryableWriteError`` when the application rewrote the item with an older
        version between every mark and delete of ``DELETE_ROUNDS`` rounds.
        """
        names, values = self._version_placeholders(version)
        names["#key"] = next(iter(key))
        names["#mark"] = DELETE_MARK
        mark = {"S": f"{format_timestamp(version.timestamp)} {version.origin}"}
        values[":mark"] = mark
        older = _older_than(version, timestamp="#ts", origin="#origin", allow_equal=True)
        if spare_unversioned:
            older = f"attribute_exists(#ts) AND attribute_exists(#origin) AND {older}"
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
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                item = error.response.get("Item")
                if not item:
                    return DeleteResult.ABSENT
                if item.get(DELETE_MARK) == mark:  # left by the previous round: this delete lost
                    self._unmark(key, mark)
                return DeleteResult.NEWER
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
            return DeleteResult.REMOVED
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

    def stamp(self, key: TypedItem, seen: Version | None, stamp: Version) -> bool:
        """Give a local write without a newer version of its own the version ``stamp``.

        Only if the version attributes are still what the stream record showed (``seen``); a write
        that came in between is newer and will be seen in the stream itself. True if stamped.
        """
        names, values = self._version_placeholders(stamp)
        names["#key"] = next(iter(key))
        names["#mark"] = DELETE_MARK
        if seen is None:
            unchanged = "(attribute_not_exists(#ts) OR attribute_not_exists(#origin))"
        else:
            unchanged = "(#ts = :seen_ts AND #origin = :seen_origin)"
            values[":seen_ts"] = {"N": format_timestamp(seen.timestamp)}
            values[":seen_origin"] = {"S": seen.origin}
        try:
            self._retrying(
                lambda: self._db.update_item(
                    TableName=self._settings.table_name,
                    Key=to_client(key),
                    # A mark left by a delete that lost to this write must not mark the write.
                    UpdateExpression="SET #ts = :ts, #origin = :origin REMOVE #mark",
                    ConditionExpression=f"attribute_exists(#key) AND {unchanged}",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def restore(self, key: TypedItem, replaced: TypedItem, stamp: Version) -> bool:
        """After a failed stamp of a write that lowered the item's version (set none, or an older
        one): nothing older than ``replaced`` (the item that write replaced, with its version) may
        stay, since the peer holds that version or a newer one. Last-writer-wins: the unstamped write
        is lost to what replaced it, but

        - a version older than ``replaced`` (a replicated change that was stale on this side, a
          second write with an older version), or no item and no newer remembered delete: the
          forwarder puts ``replaced`` back;
        - an item without a version (the application's next write): it is stamped after
          ``replaced`` and after now (its own record's stamp would only be after the lowered
          version it replaced; anything written before it, a delete too, is older than now):
          ``stamp`` (the lost write's) or the engine's clock, whichever is later.

        Rounds, as the application may keep writing; True if either was written, False if a newer
        version or delete holds the key (or the writes kept coming: their own records follow)."""
        version = version_of(replaced, self._names)
        if version is None:
            raise ValueError("restore needs an item image with a version")
        item = {name: value for name, value in replaced.items() if name != DELETE_MARK}
        now = Decimal(repr(self._clock()))
        later = stamp if stamp.timestamp > now else Version(now, stamp.origin)
        for _ in range(DELETE_ROUNDS):
            outcome = self._retrying(lambda: self._apply_upsert(key, item, version, spare_unversioned=True))
            if outcome is not Outcome.SPARED:
                return outcome is Outcome.APPLIED
            if self.stamp(key, None, later):
                return True
        return False

    def tombstones(self, keys: Iterable[TypedItem]) -> dict[str, Tombstone]:
        """Tombstones for these keys by key digest (strongly consistent reads)."""
        digests = sorted({key_digest(key) for key in keys})
        found: dict[str, Tombstone] = {}
        for start in range(0, len(digests), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._settings.tombstone_table_name: {
                    "Keys": [{TOMBSTONE_KEY: {"S": d}} for d in digests[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            backoff = self._backoff_factory()
            while request:
                response = self._db.batch_get_item(RequestItems=request)
                for row in response.get("Responses", {}).get(self._settings.tombstone_table_name, []):
                    tombstone = _tombstone_from_row(row)
                    if tombstone is not None:
                        found[row[TOMBSTONE_KEY]["S"]] = tombstone
                request = response.get("UnprocessedKeys") or {}
                if request and not backoff.wait():
                    raise RetryableWriteError("tombstone reads kept being throttled")
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

    def _version_placeholders(self, version: Version) -> tuple[dict[str, str], dict[str, Any]]:
        names = {"#ts": self._names.timestamp, "#origin": self._names.origin}
        values = {
            ":ts": {"N": format_timestamp(version.timestamp)},
            ":origin": {"S": version.origin},
        }
        return names, values

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


__all__ = ["Outcome", "RetryableWriteError", "TableWriter", "Tombstone", "from_client"]
