"""replication_ops.capacity against the examples of AWS's documentation: "DynamoDB read and write
operations" (developerguide/read-write-operations.html) and "Amazon DynamoDB Transactions: How it
works", capacity management (developerguide/transaction-apis.html)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from replication_ops.capacity import ReadConsistency, batch_read_units, read_units, write_units

KB = 1024


def test_a_3500_byte_read_counts_as_4_kb() -> None:
    assert read_units(3500) == read_units(4 * KB) == 1


def test_an_8_kb_item_reads_for_2_strong_1_eventual_4_transactional_units() -> None:
    assert read_units(8 * KB, ReadConsistency.STRONG) == 2
    assert read_units(8 * KB, ReadConsistency.EVENTUAL) == 1
    assert read_units(8 * KB, ReadConsistency.TRANSACTIONAL) == 4


def test_a_10_kb_read_rounds_up_to_12_kb() -> None:
    assert read_units(10 * KB) == 3


def test_batch_get_item_rounds_each_item_up_on_its_own() -> None:
    # 1.5 KB and 6.5 KB count as 4 KB + 8 KB = 12 KB, not 8 KB.
    assert batch_read_units([1536, 6656]) == 3


def test_a_read_of_a_missing_item_still_consumes() -> None:
    assert read_units(0, ReadConsistency.STRONG) == 1
    assert read_units(0, ReadConsistency.EVENTUAL) == Decimal("0.5")


def test_a_500_byte_write_counts_as_1_kb() -> None:
    assert write_units(500) == write_units(KB) == 1


def test_a_write_rounds_up_to_the_next_kb() -> None:
    assert write_units(KB + 1) == 2
    assert write_units(4 * KB) == 4


def test_put_and_update_count_the_larger_of_before_and_after() -> None:
    assert write_units(3 * KB, 300) == 3
    assert write_units(300, 3 * KB) == 3


def test_a_transactional_write_takes_twice_the_units() -> None:
    assert write_units(KB, transactional=True) == 2
    assert write_units(4 * KB, transactional=True) == 8


def test_a_failed_condition_on_a_missing_item_still_consumes_one_unit() -> None:
    assert write_units(0) == 1


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        write_units(-1)
