"""What the golden wire tests share (test_forwarder_wire_golden.py, test_replicator_wire_golden.py):
deterministic items built from a seeded ``random.Random``, and the comparison of the calls a handler
made with the digests pinned in a golden file. The items' values and their order are part of the
pinned request bodies: change them only with the golden files (FORWARDER_GOLDEN_WRITE=1,
REPLICATOR_GOLDEN_WRITE=1)."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

from .harness import NAMES

LETTERS = "abcdefghijklmnopqrstuvwxyz éüß中文"


def text(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(low, high)))


def profile(rng: random.Random, *, binary_set: bool = False) -> dict[str, Any]:
    """~300 bytes of every type a profile holds (binary as base64 text, as Lambda's JSON and the wire
    have it); ``binary_set`` adds a BS attribute."""
    attributes: dict[str, Any] = {
        "name": {"S": text(rng, 8, 24)},
        "email": {"S": text(rng, 10, 30) + "@example.com"},
        "age": {"N": str(rng.randint(18, 90))},
        "score": {"N": f"{rng.randint(-999, 999)}.{rng.randint(0, 99):02d}"},
        "active": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "avatar": {"B": "aGVsbG8gd29ybGQ=" if rng.random() < 0.5 else "AAECAwQ="},
        "tags": {"SS": sorted({text(rng, 3, 8) for _ in range(3)})},
        "ids": {"NS": [str(n) for n in sorted({rng.randint(1, 10_000) for _ in range(3)})]},
    }
    if binary_set:
        attributes["blobs"] = {"BS": ["AAE=", "AQI="]}
    attributes["address"] = {
        "M": {
            "street": {"S": text(rng, 10, 30)},
            "zip": {"N": str(rng.randint(10000, 99999))},
            "lines": {"L": [{"S": text(rng, 4, 12)}, {"N": "7"}, {"BOOL": False}]},
        }
    }
    return attributes


def versioned(
    key: dict[str, Any], rng: random.Random, timestamp: Any, origin: str, *, binary_set: bool = False
) -> dict[str, Any]:
    """The key, a profile and the version attributes."""
    return {
        **key,
        **profile(rng, binary_set=binary_set),
        NAMES.timestamp: {"N": str(timestamp)},
        NAMES.origin: {"S": origin},
    }


def digests(calls: list[tuple[str, bytes]]) -> list[list[Any]]:
    """(operation, body length, SHA-256 of the body) of each call."""
    return [[operation, len(body), hashlib.sha256(body).hexdigest()] for operation, body in calls]


def assert_golden(calls: list[tuple[str, bytes]], golden: Path, write_variable: str) -> None:
    """The calls are the golden file's, in order; with ``write_variable`` set, the file is written
    from them first (an intended protocol change)."""
    found = digests(calls)
    if os.environ.get(write_variable):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(found, indent=0) + "\n")
    pinned = json.loads(golden.read_text())
    for index, (got, want) in enumerate(zip(found, pinned, strict=False)):
        assert got == want, f"call {index} differs: {calls[index][0]} {calls[index][1][:2000]!r}"
    assert len(found) == len(pinned)


def assert_same_calls(calls: list[tuple[str, bytes]], golden: Path) -> None:
    """The golden file's calls, in any order (a thread pool chooses it)."""
    assert sorted(digests(calls)) == sorted(json.loads(golden.read_text()))
