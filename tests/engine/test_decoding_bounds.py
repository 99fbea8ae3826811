"""What decoding a record costs in memory is bounded by its inflated size: the replicator's decode budget
(``applying.decode_budget_bytes``) rests on ``DECODE_EXPANSION``, the most bytes of Python objects
one byte of body can become. The bodies here are the worst shapes for CPython's JSON decoder and for
the changes built from it (counted with tracemalloc, allocations only: no timing)."""

from __future__ import annotations

import tracemalloc

import pytest

from replication.applying import DECODE_EXPANSION
from replication.wire import decode_body

HEADER = (
    '{"k":"changes","o":"cn-north-1","t":"profiles",'
    '"va":["last_update_timestamp","last_updater_region"],"at":1,"c":['
)
VERSION = '"last_update_timestamp":{"N":"1"},"last_updater_region":{"S":"o"}'


def body(entries: list[str]) -> bytes:
    return (HEADER + ",".join(entries) + "]}").encode()


SHAPES = {
    "tiny deletes": body(['[{"a":{"S":""}},"1","o"]'] * 5000),
    "tiny upserts, distinct keys": body([f'[{{"a":{{"S":"{i}"}}}},{{{VERSION}}}]' for i in range(5000)]),
    "lists nested 900 deep": body(['[{"a":{"S":""}},{"x":' + "[" * 900 + "]" * 900 + "}]"] * 100),
    "one-member maps nested 900 deep": body(
        ['[{"a":{"S":""}},{"x":' + '{"":' * 900 + "{}" + "}" * 900 + "}]"] * 40
    ),
    "empty maps": body(['[{"a":{"S":""}},{"x":[' + ",".join(["{}"] * 500) + "]}]"] * 100),
    "typed maps nested 32 levels": body(
        [
            f'[{{"a":{{"S":"{i}"}}}},{{{VERSION},"x":' + '{"M":{"":' * 31 + '{"NULL":true}' + "}}" * 31 + "}]"
            for i in range(500)
        ]
    ),
    "typed lists nested 32 levels": body(
        [
            f'[{{"a":{{"S":"{i}"}}}},{{{VERSION},"x":' + '{"L":[' * 31 + '{"NULL":true}' + "]}" * 31 + "}]"
            for i in range(500)
        ]
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_decoding_a_body_takes_at_most_decode_expansion_bytes_per_byte(shape: str) -> None:
    raw = SHAPES[shape]
    tracemalloc.start()
    try:
        envelope = decode_body(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert envelope.changes or envelope.refused
    assert peak <= DECODE_EXPANSION * len(raw), f"{peak / len(raw):.1f} bytes per byte of body"
