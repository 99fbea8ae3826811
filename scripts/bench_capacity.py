"""Capacity benchmark: the DynamoDB capacity the engine consumes per replicated change, by AWS's rules.

Runs the real forwarder and replicator of both sides in process on moto (``tests/engine/harness.Pair``)
with the engine's DynamoDB client wrapped: every call the engine makes is counted in read and write
capacity units by AWS's billing rules (``replication_ops.capacity``; item sizes by DynamoDB's rules,
``replication.limits.item_size``), the sizes of the items before a write read from moto without being
counted. The application's own writes are not counted: what is left is what replication adds.

Kinds, each on a fresh pair, the change made on one side and replicated to the other, echoes and
stamps included: a new item, a versioned update, an unversioned update (an UpdateItem of one field,
which the forwarder stamps), a delete; at ~300-byte and ~4 KB items. The mix: 60% new items, 30%
updates, 10% deletes, both directions (issue 13). Merges ``wcu_per_change_mix``,
``rcu_per_change_mix`` and ``capacity_per_kind`` into build/bench.json (other fields kept) and
prints them with the targets. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from moto import mock_aws

from replication.limits import item_size
from replication_ops.capacity import ReadConsistency, batch_read_units, read_units, write_units
from replication_ops.local import moto_fidelity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.engine.harness import NAMES, Pair, Side

# ~4 KB: within 4,096 bytes after the changes below, so one 4 KB read unit and four write units.
SIZES = {"300b": 300, "4kb": 4000}
KINDS = ("new", "update", "unversioned_update", "delete")
MIX = (("new", 0.6), ("update", 0.3), ("delete", 0.1))
# Targets of issue 13 (per replicated change; global tables: 1.0 replicated WCU, no reads).
TARGETS = {
    "wcu_per_change_mix": 2.0,
    "rcu_per_change_mix": 0.5,
    "new_300b_wcu": 2,
    "delete_300b_wcu": 3,
}


class Ledger:
    """Capacity consumed by the engine's calls, by (operation, table)."""

    def __init__(self) -> None:
        self.wcu: Counter[tuple[str, str]] = Counter()
        self.rcu: Counter[tuple[str, str]] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        self.wcu.clear()
        self.rcu.clear()
        self.calls.clear()

    def total_wcu(self) -> Decimal:
        return Decimal(sum(self.wcu.values()))

    def total_rcu(self) -> Decimal:
        return sum(self.rcu.values(), Decimal(0))


class MeteredDynamoDB:
    """The engine's DynamoDB client, counting the capacity each call consumes (AWS's rules). A call
    that fails with a failed condition is counted too: DynamoDB charges it."""

    def __init__(self, inner: Any, ledger: Ledger) -> None:
        self._inner = inner
        self._ledger = ledger
        self._key_names: dict[str, list[str]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # -- sizes, read from moto without being counted -------------------------------------------

    def _keys_of(self, table: str) -> list[str]:
        if table not in self._key_names:
            schema = self._inner.describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [entry["AttributeName"] for entry in schema]
        return self._key_names[table]

    def _size(self, table: str, key: dict[str, Any]) -> int:
        key = {name: key[name] for name in self._keys_of(table)}
        item = self._inner.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0

    def _count_write(self, operation: str, table: str, units: int) -> None:
        self._ledger.wcu[(operation, table)] += units
        self._ledger.calls[(operation, table)] += 1

    # -- the calls the engine makes ---------------------------------------------------------------

    def put_item(self, **request: Any) -> Any:
        table = request["TableName"]
        before = self._size(table, request["Item"])
        try:
            response = self._inner.put_item(**request)
        except ClientError:
            self._count_write("PutItem", table, write_units(before))  # a failed condition: what exists
            raise
        self._count_write("PutItem", table, write_units(before, item_size(request["Item"])))
        return response

    def update_item(self, **request: Any) -> Any:
        table = request["TableName"]
        before = self._size(table, request["Key"])
        try:
            response = self._inner.update_item(**request)
        except ClientError:
            self._count_write("UpdateItem", table, write_units(before))
            raise
        self._count_write("UpdateItem", table, write_units(before, self._size(table, request["Key"])))
        return response

    def delete_item(self, **request: Any) -> Any:
        table = request["TableName"]
        before = self._size(table, request["Key"])
        try:
            return self._inner.delete_item(**request)
        finally:
            self._count_write("DeleteItem", table, write_units(before))

    def transact_write_items(self, **request: Any) -> Any:
        actions = []
        for entry in request["TransactItems"]:
            ((kind, action),) = entry.items()
            table = action["TableName"]
            key = action.get("Key") or action["Item"]
            after = item_size(action["Item"]) if kind == "Put" else 0
            actions.append((kind, table, key, self._size(table, key), after))
        try:
            response = self._inner.transact_write_items(**request)
        except ClientError:
            # Cancelled: each action counted by the item it found, as a failed conditional write.
            for kind, table, _, before, _ in actions:
                units = write_units(before, transactional=True)
                self._count_write(f"TransactWriteItems.{kind}", table, units)
            raise
        for kind, table, key, before, put in actions:
            after = self._size(table, key) if kind == "Update" else put
            units = write_units(before, after, transactional=True)
            self._count_write(f"TransactWriteItems.{kind}", table, units)
        return response

    def get_item(self, **request: Any) -> Any:
        table = request["TableName"]
        response = self._inner.get_item(**request)
        item = response.get("Item")
        # The whole item's size counts, whatever a projection returns.
        size = self._size(table, request["Key"]) if item else 0
        consistency = ReadConsistency.STRONG if request.get("ConsistentRead") else ReadConsistency.EVENTUAL
        self._ledger.rcu[("GetItem", table)] += read_units(size, consistency)
        self._ledger.calls[("GetItem", table)] += 1
        return response

    def batch_get_item(self, **request: Any) -> Any:
        sizes: dict[str, list[int]] = {}
        for table, spec in request["RequestItems"].items():
            sizes[table] = [self._size(table, key) for key in spec["Keys"]]
        response = self._inner.batch_get_item(**request)
        unprocessed = response.get("UnprocessedKeys") or {}
        for table, spec in request["RequestItems"].items():
            consistency = ReadConsistency.STRONG if spec.get("ConsistentRead") else ReadConsistency.EVENTUAL
            done = len(spec["Keys"]) - len(unprocessed.get(table, {}).get("Keys", []))
            self._ledger.rcu[("BatchGetItem", table)] += batch_read_units(sizes[table][:done], consistency)
            self._ledger.calls[("BatchGetItem", table)] += 1
        return response


@contextmanager
def metered_pair() -> Iterator[tuple[Pair, Ledger]]:
    ledger = Ledger()
    with mock_aws():
        pair = Pair(engine_client=lambda side, db: MeteredDynamoDB(db, ledger))
        yield pair, ledger


class Clock:
    """Versions that always move forward (the application's writes), near the engine's clock."""

    def __init__(self) -> None:
        self._last = Decimal(int(time.time()))

    def next(self) -> str:
        self._last = max(self._last + Decimal("0.001"), Decimal(str(round(time.time(), 3))))
        return str(self._last)


def item_of(index: int, target: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A key and attributes making an item of about ``target`` bytes, version attributes included."""
    key = {"pk": {"S": f"user#{index:08d}"}, "sk": {"S": "profile"}}
    version = {NAMES.timestamp: {"N": "1764200000.123"}, NAMES.origin: {"S": "cn-north-1"}}
    base = {"name": {"S": "Jane Doe"}, "city": {"S": "Shanghai"}, "bio": {"S": ""}}
    pad = max(0, target - item_size({**key, **version, **base}))
    return key, {**base, "bio": {"S": "x" * pad}}


def change(side: Side, kind: str, key: dict[str, Any], attributes: dict[str, Any], clock: Clock) -> None:
    if kind == "delete":
        side.delete(key)
    elif kind == "unversioned_update":
        side.update_field(key, "city", f"city-{clock.next()}")
    else:
        side.put(key, {**attributes, "city": {"S": f"city-{clock.next()}"}}, clock.next())


def capacity_of_kind(kind: str, size: int) -> dict[str, Any]:
    """One change of ``kind`` made on cn-north-1 and replicated, echo and stamp included."""
    clock = Clock()
    with metered_pair() as (pair, ledger):
        key, attributes = item_of(0, size)
        if kind != "new":
            pair.china.put(key, attributes, clock.next())
            pair.settle()
            ledger.reset()
        change(pair.china, kind, key, attributes, clock)
        pair.settle()
        return {
            "wcu": float(ledger.total_wcu()),
            "rcu": float(ledger.total_rcu()),
            "calls": {f"{op} {table}": n for (op, table), n in sorted(ledger.calls.items())},
        }


def capacity_of_mix(size: int, changes: int, seed: int) -> dict[str, float]:
    """``changes`` changes of the 60/30/10 mix, half made on each side, replicated in batches."""
    rng = random.Random(seed)
    clock = Clock()
    with metered_pair() as (pair, ledger):
        live: list[int] = []
        made = 0
        next_key = 0
        while made < changes:
            for _ in range(10):
                side = pair.china if made % 2 == 0 else pair.us
                roll, kind = rng.random(), "new"
                for name, share in MIX:
                    if roll < share:
                        kind = name
                        break
                    roll -= share
                if kind != "new" and not live:
                    kind = "new"
                if kind == "new":
                    index, next_key = next_key, next_key + 1
                    live.append(index)
                else:
                    index = rng.choice(live)
                    if kind == "delete":
                        live.remove(index)
                key, attributes = item_of(index, size)
                change(side, kind, key, attributes, clock)
                made += 1
            pair.settle()
        return {
            "wcu_per_change": float(ledger.total_wcu() / changes),
            "rcu_per_change": float(ledger.total_rcu() / changes),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200, help="changes in the mix (default 200)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=Path("build/bench.json"))
    args = parser.parse_args()
    # In-process moto only: never a real account, whatever the shell holds (as tests/conftest.py).
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    moto_fidelity.apply()

    per_kind = {
        f"{kind}_{label}": capacity_of_kind(kind, size) for label, size in SIZES.items() for kind in KINDS
    }
    mix = {label: capacity_of_mix(size, args.changes, args.seed) for label, size in SIZES.items()}
    figures = {
        "wcu_per_change_mix": mix["300b"]["wcu_per_change"],
        "rcu_per_change_mix": mix["300b"]["rcu_per_change"],
        "wcu_per_change_mix_4kb": mix["4kb"]["wcu_per_change"],
        "rcu_per_change_mix_4kb": mix["4kb"]["rcu_per_change"],
        "capacity_per_kind": per_kind,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    merged.update(figures)
    args.out.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")

    print(f"{'capacity per replicated change':<38}{'WCU':>8}{'RCU':>8}   target")
    for label in SIZES:
        print(
            f"{'mix 60/30/10, ' + label:<38}{mix[label]['wcu_per_change']:>8.2f}"
            f"{mix[label]['rcu_per_change']:>8.2f}   <= 2.0 WCU, <= 0.5 RCU"
        )
    goals = {"new": "<= 2 WCU (300 B)", "delete": "<= 3 WCU (300 B)"}
    for name, figure in per_kind.items():
        kind = name.rsplit("_", 1)[0]
        goal = goals.get(kind, "") if name.endswith("300b") else ""
        print(f"{name:<38}{figure['wcu']:>8.1f}{figure['rcu']:>8.1f}   {goal}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
