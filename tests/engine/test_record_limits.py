"""Kinesis counts the partition key with the data against a record's size limit ("The record size limit
applies to the total size of the partition key and data blob", Kinesis API reference, PutRecords):
records are packed so that data and key together fit."""

from __future__ import annotations

import base64
import os
from decimal import Decimal

from replication.changes import Change
from replication.settings import KINESIS_DEFAULT_MAX_RECORD_BYTES, VersionAttributes
from replication.versions import Version
from replication.wire import KIND_CHANGES, PARTITION_KEY_BYTES, Envelope, encode, pack_changes, partition_key

NAMES = VersionAttributes()
LIMIT = KINESIS_DEFAULT_MAX_RECORD_BYTES


def binary_items(payload: bytes, count: int = 3) -> list[Change]:
    changes = []
    for i in range(count):
        key = {"pk": {"S": f"user#{i}"}, "sk": {"S": "profile"}}
        item = {
            **key,
            "blob": {"B": base64.b64encode(bytes(b ^ i for b in payload)).decode()},
            NAMES.timestamp: {"N": "1764200000.5"},
            NAMES.origin: {"S": "cn-north-1"},
        }
        changes.append(Change(key, Version(Decimal("1764200000.5"), "cn-north-1"), item))
    return changes


def one_record_size(changes: list[Change]) -> int:
    return len(encode(Envelope(KIND_CHANGES, "cn-north-1", "profiles", NAMES, 1764200000000, tuple(changes))))


def items_at_the_limit() -> list[Change]:
    """Three ~349 KB binary items whose data in one record is within the partition key's 64 bytes of
    1 MiB: they fit by their data alone, and not with their key."""
    pool = os.urandom(400 * 1024)
    length = 349 * 1024
    for _ in range(12):
        changes = binary_items(pool[:length])
        size = one_record_size(changes)
        if LIMIT - PARTITION_KEY_BYTES < size <= LIMIT:
            return changes
        length += (LIMIT - PARTITION_KEY_BYTES // 2 - size) // 3
    raise AssertionError("no payload length lands within 64 bytes of the limit")


def test_the_partition_key_is_as_long_as_packing_assumes() -> None:
    assert len(partition_key(binary_items(b"x", 1)[0]).encode("utf-8")) == PARTITION_KEY_BYTES


def test_records_fit_the_limit_with_their_partition_key() -> None:
    changes = items_at_the_limit()
    packed = pack_changes(
        changes,
        origin="cn-north-1",
        table="profiles",
        name="profiles",
        version_attributes=NAMES,
        max_record_bytes=LIMIT,
    )
    assert len(packed) > 1
    for data, span in packed:
        assert len(data) + len(partition_key(changes[span.start])) <= LIMIT
    assert [i for _, span in packed for i in span] == [0, 1, 2]
