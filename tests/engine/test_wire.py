"""The wire format: exact round trips, aggregation within Kinesis limits, and poison detection."""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal

import pytest

from replication.changes import Change
from replication.errors import ConfigurationError, WireFormatError
from replication.settings import VersionAttributes
from replication.versions import Version
from replication.wire import KIND_PROBE, Envelope, decode, encode, pack_changes

NAMES = VersionAttributes()
KEY = {"pk": {"S": "user#1"}, "sk": {"B": "AAE="}}


def upsert(index: int = 0, payload: str = "x") -> Change:
    item = {
        **KEY,
        "pk": {"S": f"user#{index}"},
        "payload": {"S": payload},
        NAMES.timestamp: {"N": "1764200000.123456"},
        NAMES.origin: {"S": "cn-north-1"},
    }
    return Change(
        {"pk": item["pk"], "sk": KEY["sk"]}, Version(Decimal("1764200000.123456"), "cn-north-1"), item
    )


def envelope(*changes: Change) -> Envelope:
    return Envelope("changes", "cn-north-1", "profiles", NAMES, 1764200000000, changes)


def raw_record(body: object) -> bytes:
    return b"DR\x01\x01" + zlib.compress(json.dumps(body).encode())


def test_changes_round_trip_exactly() -> None:
    delete = Change(KEY, Version(Decimal("1764200001"), "us-east-1", True))
    decoded = decode(encode(envelope(upsert(), delete)))
    assert decoded.changes == (upsert(), delete)
    assert (decoded.origin, decoded.table, decoded.version_attributes) == ("cn-north-1", "profiles", NAMES)


def test_a_probe_round_trips() -> None:
    probe = Envelope(KIND_PROBE, "cn-north-1", "profiles", NAMES, 1, probe_id="p-1")
    assert decode(encode(probe)).probe_id == "p-1"


def test_a_whole_batch_fits_one_record() -> None:
    records = pack_changes(
        [upsert(i) for i in range(500)],
        origin="cn-north-1",
        table="profiles",
        name="profiles",
        version_attributes=NAMES,
        max_record_bytes=1024 * 1024,
    )
    assert len(records) == 1
    assert records[0][1] == range(500)


def test_records_are_split_to_respect_the_record_limit_and_cover_every_change_once() -> None:
    changes = [upsert(i, payload=random.Random(i).randbytes(300).hex()) for i in range(200)]
    records = pack_changes(
        changes,
        origin="cn-north-1",
        table="profiles",
        name="profiles",
        version_attributes=NAMES,
        max_record_bytes=4096,
    )
    assert len(records) > 1
    assert all(len(data) <= 4096 for data, _ in records)
    covered = [index for _, span in records for index in span]
    assert covered == list(range(200))


def test_a_change_too_large_for_any_record_is_a_configuration_error_with_advice() -> None:
    import os

    huge = upsert(payload=os.urandom(3000).hex())
    with pytest.raises(ConfigurationError, match="MAX_RECORD_BYTES"):
        pack_changes([huge], origin="o", table="t", name="t", version_attributes=NAMES, max_record_bytes=2048)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "magic"),
        (b"XX\x01\x01abc", "magic"),
        (b"DR\x02\x01" + zlib.compress(b"{}"), "format version 2"),
        (b"DR\x01\x09" + zlib.compress(b"{}"), "codec"),
        (b"DR\x01\x01not-zlib", "corrupt"),
        (b"DR\x01\x01" + zlib.compress(b"[1,2]")[:-4], "truncated"),
        (b"DR\x01\x01" + zlib.compress(b"\xff\xfe"), "not JSON"),
    ],
)
def test_undecodable_records_are_poison(data: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        decode(data)


def test_a_decompression_bomb_is_poison() -> None:
    bomb = b"DR\x01\x01" + zlib.compress(b" " * (65 * 1024 * 1024), 9)
    with pytest.raises(WireFormatError, match="inflates beyond"):
        decode(bomb)


GOOD_HEADER = {
    "k": "changes",
    "o": "cn-north-1",
    "t": "profiles",
    "va": list(NAMES.__dict__.values()),
    "at": 1,
}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**GOOD_HEADER, "k": "gossip"}, "unknown message kind"),
        ({**GOOD_HEADER, "c": []}, "no changes"),
        ({**GOOD_HEADER, "o": ""}, "non-empty"),
        ({**GOOD_HEADER, "va": ["ts"]}, "version attribute names"),
    ],
)
def test_malformed_messages_are_poison(body: dict, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        decode(raw_record(body))


GOOD_DELETE = [{"pk": {"S": "a"}}, "1764200000", "cn-north-1"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ([{"pk": {"S": "a"}}, {"x": {"S": "1"}}], "without its version"),
        ([{"pk": {"Q": "a"}}, {}], "unknown type tag"),
        ([{"pk": {"N": "one"}}, "1", "o"], "malformed N"),
        ([{"pk": {"B": "***"}}, "1", "o"], "malformed B"),
        ([{"pk": {"S": "a"}}, "soon", "o"], "malformed delete version"),
        ("not a change", "expected"),
    ],
)
def test_a_malformed_change_is_refused_and_the_others_of_its_record_are_decoded(
    change: object, reason: str
) -> None:
    envelope = decode(raw_record({**GOOD_HEADER, "c": [GOOD_DELETE, change, GOOD_DELETE]}))
    assert [position for position, _ in envelope.refused] == [1]
    assert reason in envelope.refused[0][1]
    assert len(envelope.changes) == 2


def test_refusal_reasons_name_no_map_member_and_no_value() -> None:
    secret_member = "alice@example.com"
    item = {
        "prefs": {"M": {secret_member: {"N": "not-a-number-secret"}}},
        NAMES.timestamp: {"N": "1"},
        NAMES.origin: {"S": "cn-north-1"},
    }
    envelope = decode(raw_record({**GOOD_HEADER, "c": [[{"pk": {"S": "a"}}, item]]}))
    ((_, reason),) = envelope.refused
    assert "prefs" in reason and "malformed N" in reason
    assert secret_member not in reason and "secret" not in reason


def test_a_body_nested_beyond_the_decoders_limit_is_poison_not_a_recursion_error() -> None:
    depth = 100_000
    bomb = b"DR\x01\x01" + zlib.compress(b"[" * depth + b"]" * depth)
    with pytest.raises(WireFormatError, match="nests deeper"):
        decode(bomb)


def test_inflating_stops_at_the_given_bound() -> None:
    body = json.dumps({**GOOD_HEADER, "c": [GOOD_DELETE] * 1000}).encode()
    record = b"DR\x01\x01" + zlib.compress(body)
    assert len(decode(record, max_body_bytes=len(body)).changes) == 1000
    with pytest.raises(WireFormatError, match=f"inflates beyond {len(body) - 1:,} bytes"):
        decode(record, max_body_bytes=len(body) - 1)
