"""Item keys: taken from the stream record, never from a hard-coded schema."""

from __future__ import annotations

import hashlib
import json
from typing import Any

TypedValue = dict[str, Any]
TypedItem = dict[str, TypedValue]


# ``json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, its encoder made once
# (``json.dumps`` makes one per call with these options: most of a key's CPU, issue 13).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_key(key: TypedItem) -> str:
    """One string per key, the same on both sides, whatever the key schema (hash or hash+range)."""
    return _CANONICAL.encode(key)


def key_digest(key: TypedItem) -> str:
    """A fixed-size id for a key (64 hex characters): tombstone ids and Kinesis partition keys.

    Keys can be up to 3 KB (2,048-byte partition key plus 1,024-byte sort key), more than a
    Kinesis partition key (256 characters) or a DynamoDB hash key (2,048 bytes) can hold.
    """
    return hashlib.sha256(canonical_key(key).encode("utf-8")).hexdigest()


def without_key(item: TypedItem, key: TypedItem) -> TypedItem:
    return {name: value for name, value in item.items() if name not in key}
