"""Conditional writes that enforce the conflict rules in DynamoDB itself (see docs/conflict-rules.md).

Every write carries the comparison in its condition expression, so concurrent writers (the
application, the replicator, the forwarder) can never let an older version replace a newer one.
Tombstones live in a small table keyed by the digest of the item key, with a TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from replication.backoff import Backoff
from replication.changes import Change
from replication.keys import TypedItem, key_digest
from replication.settings import TableSettings
from replication.typed_values import from_client, to_client
from replication.versions import Version, format_timestamp, parse_timestamp

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
BATCH_GET_LIMIT = 100


class Outcome(Enum):
    APPLIED = "applied"
    STALE = "stale"  # the table already holds a newer (or the same) version
    TOMBSTONED = "tombstoned"  # a newer delete is remembered for this key


class DeleteResult(Enum):
    REMOVED = "removed"
    ABSENT = "absent"
    NEWER = "newer"  # the item holds a newer version: the delete lost


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

    def _apply_upsert(self, key: TypedItem, item: TypedItem, version: Version) -> Outcome:
        names, values = self._version_placeholders(version)
        any_key = next(iter(key))
        names["#key"] = any_key
        condition = _older_than(version, timestamp="#ts", origin="#origin", allow_equal=False)
        client_item = to_client(item)
        # Fast path: the item exists; one conditional put, no tombstone involved.
        try:
            self._db.put_item(
                TableName=self._settings.table_name,
                Item=client_item,
                ConditionExpression=f"attribute_exists(#key) AND {condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Outcome.APPLIED
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            if error.response.get("Item"):
                return Outcome.STALE
        # The item is absent: creating it must not resurrect a newer delete.
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
                            "ConditionExpression": f"attribute_not_exists(#key) OR {condition}",
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
                return Outcome.STALE
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

    def delete_if_older(self, key: TypedItem, version: Version) -> DeleteResult:
        """Delete the item unless its version is newer than the delete: mark it, then delete it while
        the mark is there. The mark (in the REMOVE record's old image) tells the forwarder that the
        engine removed the item; an application write in between replaces or keeps the mark."""
        names, values = self._version_placeholders(version)
        names["#key"] = next(iter(key))
        names["#mark"] = DELETE_MARK
        values[":mark"] = {"S": f"{format_timestamp(version.timestamp)} {version.origin}"}
        try:
            self._db.update_item(
                TableName=self._settings.table_name,
                Key=to_client(key),
                UpdateExpression="SET #mark = :mark",
                ConditionExpression="attribute_exists(#key) AND "
                + _older_than(version, timestamp="#ts", origin="#origin", allow_equal=True),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return DeleteResult.NEWER if error.response.get("Item") else DeleteResult.ABSENT
            raise
        try:
            self._db.delete_item(
                TableName=self._settings.table_name,
                Key=to_client(key),
                ConditionExpression="#mark = :mark",
                ExpressionAttributeNames={"#mark": DELETE_MARK},
                ExpressionAttributeValues={":mark": values[":mark"]},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return DeleteResult.NEWER  # replaced by the application meanwhile: a newer local write
            raise
        return DeleteResult.REMOVED

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
