"""Admission benchmark: the replicator's per-change checks (``admission``) and DynamoDB's item-size
accounting (``limits.item_size``) on three item shapes, CPU time per item.

The walk over a value is the replicator's per-change hot path (every applied change is checked
before it is written) and the forwarder's when it stamps or marks an item. Shapes:

- ``profile``: the 292-byte Faker user profile of ``make bench`` (strings, one number);
- ``document``: an order of ~1.5 KB with nested maps and lists, numbers, a string set, a number set,
  a binary set, booleans and nulls (every branch of the walk);
- ``wide``: 200 top-level attributes of every scalar type.

Writes build/bench_admission.json and prints a table. Figures, not assertions: CI does not time
anything. Each figure sums the best of ``--rounds`` timings of short runs (``per_item_us``): on a
shared machine the best is the least disturbed.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from faker import Faker

from replication.admission import check_change, check_item, check_key
from replication.changes import Change
from replication.limits import item_size
from replication.settings import KeyAttribute, KeySchema, VersionAttributes
from replication.versions import Version
from replication_ops.local.loadgen import profile, typed

NAMES = VersionAttributes()
KEY_SCHEMA = KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "S"))
REGION = "cn-north-1"
TIMESTAMP = Decimal("1764200000.125")
LATEST = Decimal("1764300000")
CHUNK = 25


def version(index: int) -> dict[str, Any]:
    return {NAMES.timestamp: {"N": str(TIMESTAMP + index)}, NAMES.origin: {"S": REGION}}


def profiles(count: int, seed: int) -> list[dict[str, Any]]:
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    return [
        {"pk": {"S": f"user#{fake.uuid4()}"}, "sk": {"S": "profile"}, **typed(profile(fake, rng, "China"))}
        | version(index)
        for index in range(count)
    ]


def _number(rng: random.Random) -> str:
    return str(Decimal(rng.randint(-(10**12), 10**12)).scaleb(-rng.randint(0, 6)))


def documents(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = []
    for index in range(count):
        lines = [
            {
                "M": {
                    "sku": {"S": f"sku-{rng.randrange(10**6):06d}"},
                    "quantity": {"N": str(rng.randint(1, 9))},
                    "price": {"N": _number(rng)},
                    "gift": {"BOOL": rng.random() < 0.1},
                    "note": {"NULL": True},
                    "options": {"L": [{"S": rng.choice("SMLX")}, {"N": str(rng.randint(1, 40))}]},
                }
            }
            for _ in range(rng.randint(3, 12))
        ]
        items.append(
            {
                "pk": {"S": f"order#{index:08d}"},
                "sk": {"S": "order"},
                "status": {"S": rng.choice(("placed", "paid", "shipped", "送达"))},
                "total": {"N": _number(rng)},
                "lines": {"L": lines},
                "address": {
                    "M": {
                        "street": {"S": f"{rng.randint(1, 999)} Main Street"},
                        "city": {"S": rng.choice(("Beijing", "Seattle", "上海"))},
                        "geo": {"M": {"lat": {"N": _number(rng)}, "lon": {"N": _number(rng)}}},
                    }
                },
                "tags": {"SS": sorted({f"tag{rng.randrange(50)}" for _ in range(6)})},
                "scores": {"NS": sorted({_number(rng) for _ in range(6)})},
                "digests": {"BS": [base64.b64encode(rng.randbytes(16)).decode() for _ in range(3)]},
                "thumbnail": {"B": base64.b64encode(rng.randbytes(64)).decode()},
                "archived": {"BOOL": False},
                "deleted_at": {"NULL": True},
            }
            | version(index)
        )
    return items


def wides(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    makers: list[Callable[[], dict[str, Any]]] = [
        lambda: {"S": f"value {rng.randrange(10**9)}"},
        lambda: {"N": _number(rng)},
        lambda: {"B": base64.b64encode(rng.randbytes(8)).decode()},
        lambda: {"BOOL": True},
        lambda: {"NULL": True},
    ]
    return [
        {"pk": {"S": f"wide#{index:08d}"}, "sk": {"S": "wide"}}
        | {f"attribute_{n:03d}": makers[n % len(makers)]() for n in range(200)}
        | version(index)
        for index in range(count)
    ]


def per_item_us(work: Callable[[Any], Any], items: list[Any], rounds: int) -> float:
    """CPU microseconds per item of ``work``: each chunk of ``CHUNK`` items timed ``rounds`` times, the
    best time of each chunk summed (short samples, so a busy neighbour spoils few of them)."""
    chunks = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]
    best = [float("inf")] * len(chunks)
    for _ in range(rounds):
        for index, chunk in enumerate(chunks):
            began = time.process_time()
            for item in chunk:
                work(item)
            best[index] = min(best[index], time.process_time() - began)
    return round(sum(best) / len(items) * 1e6, 2)


def run(count: int, rounds: int) -> dict[str, Any]:
    shapes = {"profile": profiles(count, 42), "document": documents(count, 42), "wide": wides(count // 4, 42)}
    figures: dict[str, Any] = {"items_per_shape": count, "rounds": rounds}
    for shape, items in shapes.items():
        changes = [
            Change({"pk": item["pk"], "sk": item["sk"]}, Version(TIMESTAMP, REGION), item) for item in items
        ]
        figures[f"{shape}_item_bytes"] = round(sum(map(item_size, items)) / len(items), 1)
        figures[f"{shape}_item_size_us"] = per_item_us(item_size, items, rounds)
        figures[f"{shape}_check_item_us"] = per_item_us(check_item, items, rounds)
        check = lambda change: check_change(change, KEY_SCHEMA, LATEST)  # noqa: E731
        figures[f"{shape}_check_change_us"] = per_item_us(check, changes, rounds)  # type: ignore[arg-type]
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in shapes["profile"]]
    figures["check_key_us"] = per_item_us(lambda key: check_key(key, KEY_SCHEMA), keys, rounds)
    figures["python"] = sys.version.split()[0]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000, help="items of each shape (default 1,000)")
    parser.add_argument("--rounds", type=int, default=15, help="timings of each run (default 15)")
    parser.add_argument(
        "--out", type=Path, default=Path("build/bench_admission.json"), help="where to write the figures"
    )
    args = parser.parse_args(argv)
    figures = run(args.items, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
