"""DynamoDB's capacity arithmetic: the read and write units one request consumes, by AWS's billing rules.

Used by the capacity benchmark (``scripts/bench_capacity.py``), which counts what the engine's calls
consume, and usable by a cost model. Every rule here is AWS's, from the DynamoDB Developer Guide:

- "DynamoDB read and write operations"
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
  a strongly consistent read of an item up to 4 KB takes one read unit, an eventually consistent one
  half, a transactional one two; read sizes are rounded up to the next 4 KB (a 3,500-byte item reads
  as 4 KB, a 10 KB item as 12 KB); BatchGetItem rounds each item up on its own (1.5 KB and 6.5 KB
  read as 12 KB); a read of an item that does not exist still consumes one read unit (strongly
  consistent) or half (eventually consistent). A write of up to 1 KB takes one write unit, a
  transactional one two; write sizes are rounded up to the next 1 KB; PutItem and UpdateItem count
  the larger of the item before and after, DeleteItem the size of the deleted item; a conditional
  write whose condition fails still consumes write units, by the size of the existing item (at least
  one).
- "Amazon DynamoDB Transactions: How it works", capacity management for transactions
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html):
  DynamoDB performs two underlying reads or writes of every item in a transaction (prepare and
  commit), so each action of TransactWriteItems, a ``ConditionCheck`` included, takes twice the
  units of the same write alone.

Item sizes are DynamoDB's (attribute names plus values: ``replication.limits.item_size``).
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


class ReadConsistency(Enum):
    EVENTUAL = "eventual"
    STRONG = "strong"
    TRANSACTIONAL = "transactional"


_READ_FACTOR = {
    ReadConsistency.EVENTUAL: Decimal("0.5"),
    ReadConsistency.STRONG: Decimal(1),
    ReadConsistency.TRANSACTIONAL: Decimal(2),
}


def _units(size_bytes: int, unit_bytes: int) -> int:
    """Whole units of ``unit_bytes`` that ``size_bytes`` rounds up to; at least one (a missing item,
    size 0, still consumes one)."""
    if size_bytes < 0:
        raise ValueError(f"an item size is never negative: {size_bytes}")
    return max(1, -(-size_bytes // unit_bytes))


def read_units(size_bytes: int, consistency: ReadConsistency = ReadConsistency.STRONG) -> Decimal:
    """Read capacity units one item read consumes (GetItem, or one item of BatchGetItem).
    ``size_bytes``: the item's size, 0 if it does not exist."""
    return _units(size_bytes, READ_UNIT_BYTES) * _READ_FACTOR[consistency]


def batch_read_units(sizes: list[int], consistency: ReadConsistency = ReadConsistency.STRONG) -> Decimal:
    """BatchGetItem: each item rounded up on its own, then summed."""
    return sum((read_units(size, consistency) for size in sizes), Decimal(0))


def write_units(before_bytes: int, after_bytes: int = 0, *, transactional: bool = False) -> int:
    """Write capacity units one item write consumes: by the larger of the item before and after
    (PutItem, UpdateItem; DeleteItem: ``before_bytes`` is the deleted item; a failed condition: the
    existing item), rounded up to 1 KB, at least one; twice that in a transaction."""
    units = max(_units(before_bytes, WRITE_UNIT_BYTES), _units(after_bytes, WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


__all__ = ["ReadConsistency", "batch_read_units", "read_units", "write_units"]
