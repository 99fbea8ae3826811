"""Verify: are both tables identical? And repair: make them so by the replication rules.

Each table is scanned in parallel segments into a map of key -> SHA-256 of the item's canonical
typed JSON (numbers normalised, sets sorted): memory holds keys and 32-byte hashes, never items.
Differences found by the scans are read again, strongly consistent, on both sides, so a change that
was merely in flight while scanning is not reported. Item contents are shown only with --show-items.

Residency rules (``border.py``, docs/residency.md) decide what is compared: items without either
side's excluded attributes; an item its side's rules keep there is no difference while the peer
lacks it (counted as kept), and is one while the peer holds it (a *restricted item on the peer*).

``--repair`` resolves each difference as replication would: it reads both items and both
tombstones, takes the newest version (a delete wins a tie with the upsert it removed), and writes it
where it is missing with the replicator's own conditional writes (``TableWriter.apply``: an upsert,
or a tombstone and a conditional delete). What it copies from a side is what that side's rules let
leave it (``exportable``); the newest item that they keep there is removed from the peer instead,
with its version, as the forwarder's residency removal does.
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
from replication_ops.border import Border, Summary
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
    # side label -> keys of items that side's rules keep there but the peer holds too
    restricted: dict[str, list[str]] = field(default_factory=lambda: {"cn": [], "us": []})
    # side label -> items only there that its rules keep there (no difference)
    kept: dict[str, int] = field(default_factory=lambda: {"cn": 0, "us": 0})

    @property
    def total(self) -> int:
        one_sided = (*self.only.values(), *self.restricted.values())
        return sum(len(keys) for keys in one_sided) + len(self.differing)

    def keys(self) -> list[str]:
        return sorted(
            {*self.differing, *(k for keys in (*self.only.values(), *self.restricted.values()) for k in keys)}
        )


def summary(border: Border, label: str, item: TypedItem | None) -> Summary | None:
    """How the comparison sees side ``label``'s item (None: the side lacks the key)."""
    if item is None:
        return None
    return Summary(content_hash(border.compared(item)), border.kept(label, item))


def kind(cn: Summary | None, us: Summary | None) -> str | None:
    """The difference between the two sides' items of a key: ``only_cn``, ``only_us``,
    ``restricted_cn`` (cn's rules keep it in cn, us holds it too), ``restricted_us``, ``differing``,
    or None (none: the same, or an item kept on its side that the peer lacks)."""
    if cn is None or us is None:
        present, label = (cn, "cn") if us is None else (us, "us")
        return None if present is None or present.kept else f"only_{label}"
    for label, held in (("cn", cn), ("us", us)):
        if held.kept:
            return f"restricted_{label}"
    return None if cn.digest == us.digest else "differing"


def hashes(
    side: Side, keys: tuple[str, ...], segments: int, bar: Bar, *, consistent: bool, border: Border
) -> dict[str, Summary]:
    table = side.table_name()
    stop = threading.Event()

    def scan(segment: int) -> dict[str, Summary]:
        found: dict[str, Summary] = {}
        for items, _ in scan_pages(side, table, segment, segments, consistent=consistent, stop=stop):
            for item in items:
                found[canonical_key(key_of(item, keys))] = Summary(
                    content_hash(border.compared(item)), border.kept(side.label, item)
                )
            bar.update(len(items))
        return found

    merged: dict[str, Summary] = {}
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


def _same(border: Border, left: TypedItem | None, right: TypedItem | None) -> bool:
    """The same item as the comparison sees it (without either side's excluded attributes)."""
    if left is None or right is None:
        return left is right
    return content_hash(border.compared(left)) == content_hash(border.compared(right))


def compare(
    pair: Pair, border: Border, *, segments: int, consistent: bool, show_progress: bool
) -> Differences:
    keys = same_key_schema(pair.cn, pair.us)
    scanned: dict[str, dict[str, Summary]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        bars = {
            side.label: Bar(f"scan {side.table}: {side.label}", enabled=show_progress) for side in pair.both()
        }
        futures = {
            side.label: pool.submit(
                hashes, side, keys, segments, bars[side.label], consistent=consistent, border=border
            )
            for side in pair.both()
        }
        try:
            for label, future in futures.items():
                scanned[label] = future.result()
        finally:
            for bar in bars.values():
                bar.close()
    cn, us = scanned["cn"], scanned["us"]
    candidates = sorted(k for k in cn.keys() | us.keys() if kind(cn.get(k), us.get(k)) is not None)
    items = {"cn": len(cn), "us": len(us)}
    differences = Differences(only={"cn": [], "us": []}, differing=[], items=items)
    for label, mine, theirs in (("cn", cn, us), ("us", us, cn)):
        differences.kept[label] = sum(1 for k, held in mine.items() if held.kept and k not in theirs)
    del scanned, cn, us
    # Read again, consistently: a change in flight during the scans is not a difference.
    for text, found in _still_different(pair, border, candidates):
        if found == "differing":
            differences.differing.append(text)
        else:
            group, label = found.split("_")
            (differences.only if group == "only" else differences.restricted)[label].append(text)
    return differences


def _still_different(pair: Pair, border: Border, candidates: list[str]) -> list[tuple[str, str]]:
    def reread(text: str) -> tuple[str, str | None]:
        key = json.loads(text)
        left, right = read_item(pair.cn, key), read_item(pair.us, key)
        return text, kind(summary(border, "cn", left), summary(border, "us", right))

    with ThreadPoolExecutor(max_workers=RECHECK_CONCURRENCY) as pool:
        reread_all = list(pool.map(reread, candidates))
    return [(text, found) for text, found in reread_all if found is not None]


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


def _winner(
    states: list[SideState], names: VersionAttributes, border: Border
) -> tuple[Version, SideState, bool] | None:
    """(version, where, is_delete) of the newest state, or None when two different items tie. Of
    the same item on both sides, the side whose rules keep it there is where it is (so that the
    peer's copy is removed, not kept)."""
    candidates: list[tuple[Version, SideState, bool]] = []
    for state in states:
        if state.item is not None:
            candidates.append((version_of(state.item, names) or UNVERSIONED, state, False))
        if state.tombstone is not None:
            candidates.append((state.tombstone, state, True))
    best = max(candidates, key=lambda c: c[0].order())
    ties = [c for c in candidates if c[0].order() == best[0].order() and not c[2]]
    if not best[2] and len(ties) > 1:
        if not _same(border, ties[0][1].item, ties[1][1].item):
            return None
        kept = [c for c in ties if c[1].item is not None and border.kept(c[1].side.label, c[1].item)]
        return (kept or ties)[0]
    return best


def repair_key(
    pair: Pair, writers: dict[str, TableWriter], text: str, names: VersionAttributes, border: Border
) -> Repair:
    key = json.loads(text)
    states = []
    for side in pair.both():
        writer = writers[side.label]
        with aws_errors(f"{side.name} tombstones"):
            tombstone = writer.tombstones([key]).get(key_digest(key))
        states.append(SideState(side, writer, read_item(side, key), tombstone.version if tombstone else None))
    winner = _winner(states, names, border)
    if winner is None:
        return Repair(
            text,
            "tie",
            note="both sides hold different items with the same version: write the right one again "
            "(with a newer version) and replication settles it",
        )
    version, where, is_delete = winner
    kind_ = "delete" if is_delete else "upsert"
    repair = Repair(text, f"{kind_} on {where.side.label} ({version.timestamp} {version.origin or '-'})")
    for state in states:
        if is_delete:
            wanted = None
        elif state is where:
            continue
        else:
            assert where.item is not None
            # Only what the winning side's rules let leave it; an item they keep there is removed
            # from the peer with its version (the forwarder's residency removal).
            wanted = border.exportable(where.side.label, where.item)
            if wanted is None and border.own_write_of(state.side.label, where.item):
                repair.note = (
                    f"{state.side.label}'s own write, which {where.side.label}'s residency rules keep "
                    f"there: write it again on {state.side.label}"
                )
                continue
        if _same(border, state.item, wanted):
            continue
        with aws_errors(f"{state.side.name} DynamoDB"):
            outcome = state.writer.apply(Change(key, version, wanted))
        action = "delete" if is_delete else "upsert" if wanted is not None else "residency removal"
        repair.writes.append(f"{action} on {state.side.label}: {outcome.value}")
    after = [summary(border, side.label, read_item(side, key)) for side in pair.both()]
    repair.resolved = kind(*after) is None
    if not repair.resolved and not repair.note:
        repair.note = "still different after the write (a concurrent change?): verify again"
    return repair


def repair(
    pair: Pair,
    differences: Differences,
    names: VersionAttributes,
    border: Border,
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
            result = repair_key(pair, writers, text, names, border)
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
    # side label -> items that side's residency rules keep there but the peer holds too (differences)
    restricted_on_peer: dict[str, int] = field(default_factory=lambda: {"cn": 0, "us": 0})
    # side label -> items only there that its residency rules keep there (not differences)
    kept: dict[str, int] = field(default_factory=lambda: {"cn": 0, "us": 0})
    excluded_attributes: list[str] = field(default_factory=list)  # left out of the comparison
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
    """Compare (and with ``do_repair``, repair) the pair's table (``Pair.for_table``) under both
    sides' deployed residency rules (``Border.of``)."""
    began = clock()
    border = Border.of(pair, names)
    differences = compare(pair, border, segments=segments, consistent=consistent, show_progress=show_progress)
    restricted = differences.restricted["cn"] + differences.restricted["us"]
    sample = {
        "only_in_cn": [json.loads(k) for k in differences.only["cn"][:samples]],
        "only_in_us": [json.loads(k) for k in differences.only["us"][:samples]],
        "differing": [json.loads(k) for k in differences.differing[:samples]],
        "restricted_on_peer": [json.loads(k) for k in sorted(restricted)[:samples]],
    }
    report = VerifyReport(
        identical=differences.total == 0,
        items=differences.items,
        only_in={label: len(keys) for label, keys in differences.only.items()},
        differing=len(differences.differing),
        samples=sample,
        seconds=0.0,
        restricted_on_peer={label: len(keys) for label, keys in differences.restricted.items()},
        kept=differences.kept,
        excluded_attributes=sorted(border.excluded),
    )
    if show_items:
        for keys in sample.values():
            for key in keys:
                report.shown_items.append(
                    {"key": key, "cn": read_item(pair.cn, key), "us": read_item(pair.us, key)}
                )
    if do_repair and differences.total:
        repairs = repair(pair, differences, names, border, show_progress=show_progress)
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
    restricted, kept = report.restricted_on_peer, report.kept
    if any(restricted.values()):
        lines.append(
            f"restricted items on the peer: {restricted['cn']} that cn's residency rules keep in cn are "
            f"in us, {restricted['us']} that us's keep in us are in cn"
        )
    if any(kept.values()) or report.excluded_attributes:
        lines.append(
            f"kept by the residency rules (no difference): cn {kept['cn']}, us {kept['us']}"
            + (
                f"; not compared: {', '.join(report.excluded_attributes)}"
                if report.excluded_attributes
                else ""
            )
        )
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
