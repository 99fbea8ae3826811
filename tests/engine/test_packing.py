"""Packing is linear in bytes (issue 13): each change is encoded once, and a batch that does not fit
one record is cut by measured sizes, not halved and re-compressed until it fits."""

from __future__ import annotations

import random
import zlib
from decimal import Decimal

import pytest

from replication import wire
from replication.changes import Change
from replication.settings import VersionAttributes
from replication.versions import Version

NAMES = VersionAttributes()
MAX_RECORD_BYTES = 1024 * 1024  # Kinesis's default record limit


def pack(changes: list[Change]) -> list[tuple[bytes, range]]:
    return wire.pack_changes(
        changes,
        origin="cn-north-1",
        table="docs",
        name="docs",
        version_attributes=NAMES,
        max_record_bytes=MAX_RECORD_BYTES,
    )


def text_change(index: int, size: int, rng: random.Random) -> Change:
    words = ["delta", "harbor", "profile", "region", "lantern", "orbit", "quartz", "meadow", "signal"]
    text = " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(size // 9))
    key = {"pk": {"S": f"doc#{index}"}, "sk": {"S": "body"}}
    item = {
        **key,
        "body": {"S": text},
        NAMES.timestamp: {"N": "1764200000.5"},
        NAMES.origin: {"S": "cn-north-1"},
    }
    return Change(key, Version(Decimal("1764200000.5"), "cn-north-1"), item)


def test_a_batch_larger_than_a_record_is_compressed_about_once_per_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut before it is compressed whole (a 64 KB sample says it cannot fit): each byte once, and
    the sample (issue 13: CPU per KB at 350 KB items at most twice that at 4 KB)."""
    rng = random.Random(13)
    changes = [text_change(i, 350 * 1024, rng) for i in range(40)]
    compressed_input = []
    real = zlib.compress
    monkeypatch.setattr(
        wire.zlib, "compress", lambda data, level: compressed_input.append(len(data)) or real(data, level)
    )
    packed = pack(changes)
    body_bytes = sum(len(zlib.decompress(data[wire.HEADER_BYTES :])) for data, _ in packed)
    assert len(packed) > 1
    assert sum(compressed_input) <= 1.05 * body_bytes


def test_a_run_whose_sample_compresses_better_than_the_rest_still_fits_its_records() -> None:
    """The sample is the run's start: repetitive text there, then bytes that do not compress. The
    estimate says the run fits, the measurement says it does not, and the run is split by what it
    measured, every record within the limit."""
    rng = random.Random(5)
    repetitive = [text_change(i, 100 * 1024, rng) for i in range(3)]
    for change in repetitive:
        change.item["body"] = {"S": "a" * 100 * 1024}
    noisy = []
    for i in range(3, 20):
        change = text_change(i, 1, rng)
        change.item["body"] = {"S": rng.randbytes(60 * 1024).hex()}
        noisy.append(change)
    changes = repetitive + noisy
    packed = pack(changes)
    limit = MAX_RECORD_BYTES - wire.PARTITION_KEY_BYTES
    assert len(packed) > 1
    assert all(len(data) <= limit for data, _ in packed)
    assert [i for _, span in packed for i in span] == list(range(len(changes)))


def test_records_decode_to_the_changes_they_cover_in_order() -> None:
    rng = random.Random(7)
    changes = [text_change(i, 50 * 1024, rng) for i in range(60)]
    packed = pack(changes)
    assert [c for data, _ in packed for c in wire.decode(data).changes] == changes
    assert [i for _, span in packed for i in span] == list(range(60))
