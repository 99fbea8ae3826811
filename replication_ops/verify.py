"""Verify: are both tables identical? And repair: make them so by the replication rules.

Each table is scanned in parallel segments into a map of key -> SHA-256 of the item's canonical
typed JSON (numbers normalised, sets sorted): memory holds keys and 32-byte hashes, never items.
Differences found by the scans are read again, strongly consistent, on both sides, so a change that
was merely in flight while scanning is not reported. Item contents are shown only with --show-items.

``--repair`` resolves each difference as replication would: it reads both items and both
tombstones, takes the newest version (a delete wins a tie with the upsert it removed), and writes it
where it is missing with the replicator's own conditional writes (``TableWriter.apply``: an upsert,
or a tombstone and a conditional delete).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from replication.changes import Change
from replication.keys import TypedItem, canonical_key, key_digest
from replication.limits import canonical_number
from replication.settings import VersionAttributes
from replication.table_writer import TableWriter
from replication.typed_values import from_client, to_client
from replication.versions import UNVERSIONED, Version, version_of
from replication_ops.errors import aws_errors
from replication_ops.progress import Bar
from replication_ops.scanning import key_of, run_segments, same_key_schema, scan_pages
from replication_ops.sides import Pair, Side

RECHECK_CONCURRENCY = 16


# -- content hashes --------------------------------------------------------------------------


def _number(text: str) -> str:
    """A number as DynamoDB stores it, exactly (no 28-digit rounding: all 38 digits decide)."""
    try:
        return canonical_number(Decimal(text))
    except InvalidOperation:
        return text


def canonical_value(value: dict[str, Any]) -> Any:
    ((tag, inner),) = value.items()
    if tag == "N":
        return {"N": _number(inner)}
    if tag == "NS":
        return {"NS": sorted(_number(v) for v in inner)}
    if tag in ("SS", "BS"):
        return {tag: sorted(inner)}
    if tag == "M":
        return {"M": {name: canonical_value(member) for name, member in inner.items()}}
    if tag == "L":
        return {"L": [canonical_value(member) for member in inner]}
    return {tag: inner}


def content_hash(item: TypedItem) -> bytes:
    """SHA-256 of the item's canonical typed JSON (wire form: binary as base64)."""
    canonical = {name: canonical_value(value) for name, value in item.items()}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).digest()


# -- comparing -------------------------------------------------------------------------------


@dataclass
class Differences:
    only: dict[str, list[str]]  # side label -> canonical keys present only there
    differing: list[str]
    items: dict[str, int]

    @property
    def total(self) -> int:
        return sum(len(keys) for keys in self.only.values()) + len(self.differing)

    def keys(self) -> list[str]:
        return sorted({*self.differing, *(k for keys in self.only.values() for k in keys)})


def hashes(side: Side, keys: tuple[str, ...], segments: int, bar: Bar, consistent: bool) -> dict[str, bytes]:
    table = side.table_name()
    stop = threading.Event()

    def scan(segment: int) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for items, _ in scan_pages(side, table, segment, segments, consistent=consistent, stop=stop):
            for item in items:
                found[canonical_key(key_of(item, keys))] = content_hash(item)
            bar.update(len(items))
        return found

    merged: dict[str, bytes] = {}
    for part in run_segments(segments, scan, stop):
        merged.update(part)
    return merged


def read_item(side: Side, key: TypedItem) -> TypedItem | None:
    with aws_errors(f"{side.name} DynamoDB"):
        item = (
            side.client("dynamodb")
            .get_item(TableName=side.table_name(), Key=to_client(key), ConsistentRead=True)
            .get("Item")
        )
    return from_client(item) if item else None


def _same(left: TypedItem | None, right: TypedItem | None) -> bool:
    if left is None or right is None:
        return left is right
    return content_hash(left) == content_hash(right)


def compare(pair: Pair, *, segments: int, consistent: bool, show_progress: bool) -> Differences:
    keys = same_key_schema(pair.cn, pair.us)
    scanned: dict[str, dict[str, bytes]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        bars = {
            side.label: Bar(f"scan {side.table}: {side.label}", enabled=show_progress) for side in pair.both()
        }
        futures = {
            side.label: pool.submit(hashes, side, keys, segments, bars[side.label], consistent)
            for side in pair.both()
        }
        try:
            for label, future in futures.items():
                scanned[label] = future.result()
        finally:
            for bar in bars.values():
                bar.close()
    cn, us = scanned["cn"], scanned["us"]
    candidates = sorted({*(cn.keys() ^ us.keys()), *(k for k in cn.keys() & us.keys() if cn[k] != us[k])})
    items = {"cn": len(cn), "us": len(us)}
    del scanned, cn, us
    differences = Differences(only={"cn": [], "us": []}, differing=[], items=items)
    # Read again, consistently: a change in flight during the scans is not a difference.
    for text, (left, right) in _still_different(pair, candidates):
        if left is not None and right is None:
            differences.only["cn"].append(text)
        elif right is not None and left is None:
            differences.only["us"].append(text)
        else:
            differences.differing.append(text)
    return differences


def _still_different(
    pair: Pair, candidates: list[str]
) -> list[tuple[str, tuple[TypedItem | None, TypedItem | None]]]:
    def reread(text: str) -> tuple[str, tuple[TypedItem | None, TypedItem | None]]:
        key = json.loads(text)
        return text, (read_item(pair.cn, key), read_item(pair.us, key))

    with ThreadPoolExecutor(max_workers=RECHECK_CONCURRENCY) as pool:
        reread_all = list(pool.map(reread, candidates))
    return [(text, items) for text, items in reread_all if not _same(*items)]


# -- repairing -------------------------------------------------------------------------------


@dataclass
class Repair:
    key: str
    winner: str  # "upsert on cn", "delete on us", ...
    writes: list[str] = field(default_factory=list)
    resolved: bool = False
    note: str = ""


@dataclass
class SideState:
    side: Side
    writer: TableWriter
    item: TypedItem | None
    tombstone: Version | None


def _winner(states: list[SideState], names: VersionAttributes) -> tuple[Version, SideState, bool] | None:
    """(version, where, is_delete) of the newest state, or None when two different items tie."""
    candidates: list[tuple[Version, SideState, bool]] = []
    for state in states:
        if state.item is not None:
            candidates.append((version_of(state.item, names) or UNVERSIONED, state, False))
        if state.tombstone is not None:
            candidates.append((state.tombstone, state, True))
    best = max(candidates, key=lambda c: c[0].order())
    ties = [c for c in candidates if c[0].order() == best[0].order() and not c[2]]
    if not best[2] and len(ties) > 1 and not _same(ties[0][1].item, ties[1][1].item):
        return None
    return best


def repair_key(pair: Pair, writers: dict[str, TableWriter], text: str, names: VersionAttributes) -> Repair:
    key = json.loads(text)
    states = []
    for side in pair.both():
        writer = writers[side.label]
        with aws_errors(f"{side.name} tombstones"):
            tombstone = writer.tombstones([key]).get(key_digest(key))
        states.append(SideState(side, writer, read_item(side, key), tombstone.version if tombstone else None))
    winner = _winner(states, names)
    if winner is None:
        return Repair(
            text,
            "tie",
            note="both sides hold different items with the same version: write the right one again "
            "(with a newer version) and replication settles it",
        )
    version, where, is_delete = winner
    kind = "delete" if is_delete else "upsert"
    repair = Repair(text, f"{kind} on {where.side.label} ({version.timestamp} {version.origin or '-'})")
    winning_item = None if is_delete else where.item
    for state in states:
        if _same(state.item, winning_item):
            continue
        with aws_errors(f"{state.side.name} DynamoDB"):
            outcome = state.writer.apply(Change(key, version, winning_item))
        action = "delete" if is_delete else "upsert"
        repair.writes.append(f"{action} on {state.side.label}: {outcome.value}")
    after = [read_item(side, key) for side in pair.both()]
    repair.resolved = _same(*after)
    if not repair.resolved:
        repair.note = "still different after the write (a concurrent change?): verify again"
    return repair


def repair(
    pair: Pair,
    differences: Differences,
    names: VersionAttributes,
    *,
    show_progress: bool,
    concurrency: int = 8,
) -> list[Repair]:
    writers = {side.label: side.writer(names) for side in pair.both()}
    keys = differences.keys()
    with (
        Bar("repair", total=len(keys), enabled=show_progress) as bar,
        ThreadPoolExecutor(max_workers=concurrency) as pool,
    ):

        def one(text: str) -> Repair:
            result = repair_key(pair, writers, text, names)
            bar.update(1)
            return result

        return list(pool.map(one, keys))


# -- the report ------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    identical: bool
    items: dict[str, int]
    only_in: dict[str, int]
    differing: int
    samples: dict[str, list[Any]]
    seconds: float
    shown_items: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] | None = None
    repaired: int = 0
    unresolved: int = 0


def run(
    pair: Pair,
    names: VersionAttributes,
    *,
    segments: int = 4,
    samples: int = 10,
    show_items: bool = False,
    do_repair: bool = False,
    consistent: bool = False,
    show_progress: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> VerifyReport:
    began = clock()
    differences = compare(pair, segments=segments, consistent=consistent, show_progress=show_progress)
    sample = {
        "only_in_cn": [json.loads(k) for k in differences.only["cn"][:samples]],
        "only_in_us": [json.loads(k) for k in differences.only["us"][:samples]],
        "differing": [json.loads(k) for k in differences.differing[:samples]],
    }
    report = VerifyReport(
        identical=differences.total == 0,
        items=differences.items,
        only_in={label: len(keys) for label, keys in differences.only.items()},
        differing=len(differences.differing),
        samples=sample,
        seconds=0.0,
    )
    if show_items:
        for keys in sample.values():
            for key in keys:
                report.shown_items.append(
                    {"key": key, "cn": read_item(pair.cn, key), "us": read_item(pair.us, key)}
                )
    if do_repair and differences.total:
        repairs = repair(pair, differences, names, show_progress=show_progress)
        report.repairs = [vars(r) for r in repairs]
        report.repaired = sum(r.resolved for r in repairs)
        report.unresolved = len(repairs) - report.repaired
    report.seconds = round(clock() - began, 2)
    return report


def render(report: VerifyReport) -> str:
    lines = [
        f"items: cn {report.items['cn']}, us {report.items['us']} ({report.seconds:g} s)",
        f"only in cn: {report.only_in['cn']}, only in us: {report.only_in['us']}, "
        f"differing: {report.differing}",
    ]
    for name, keys in report.samples.items():
        if keys:
            lines.append(f"  {name.replace('_', ' ')} (sample): " + ", ".join(canonical_key(k) for k in keys))
    for shown in report.shown_items:
        lines.append(f"  {canonical_key(shown['key'])}")
        lines.extend(f"    {label}: {json.dumps(shown[label])}" for label in ("cn", "us"))
    if report.repairs is not None:
        lines.append(f"repair: {report.repaired} resolved, {report.unresolved} unresolved")
        for r in report.repairs:
            writes = "; ".join(r["writes"]) or "no write needed"
            lines.append(
                f"  {r['key']}: {r['winner']} -> {writes}" + (f" ({r['note']})" if r["note"] else "")
            )
    elif report.identical:
        lines.append("identical")
    return "\n".join(lines)
