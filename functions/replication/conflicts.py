"""Every conflict on record: what the engine resolved between two writes of a key, counted per table
and kind and sampled into a structured log, so an operator can answer "which writes lost, and to
what?" (docs/conflict-rules.md, "Conflicts on record"). DynamoDB global tables record nothing of the
kind.

The kinds, in the conflict rules' own terms (``ConflictKind``):

- ``stale-dropped``: a replicated change older than the version the table holds is not written (the
  replicator; a duplicate of the version the table holds is no conflict and is not counted);
- ``tie-broken``: the same, between two versions with the same timestamp: the greater origin won;
- ``delete-won``: an upsert older than a remembered delete loses to it (the replicator's change
  refused by a tombstone or a newer delete; the forwarder's new item older than a remembered delete,
  removed and not sent);
- ``stamped``: a local write without a valid, newer version of its own is given one (the forwarder).

Where they are found, and what each knows then, without any read or write of its own: the
replicator's change (the loser) and the version that won, as the failed condition returned it
(``TableWriter.resolve``: ReturnValuesOnConditionCheckFailure=ALL_OLD, no read capacity); the
forwarder's decision (``classify.Decision``: the remembered delete and the write's version; the stamp
and the version the write carried). A conflict between the two sides' writes is recorded once, on
the side of the write that won, where the losing change arrives; the side where the winner is applied
over the loser sees an ordinary newer change. Changes of one key in one inbox batch that coalescing
supersedes (``replication.coalesce``) are the peer's own sequence, not a conflict. A batch Lambda
retries may record a conflict again (at least once, as the metrics it shares a batch with).

The count is one metric, ``Conflicts``, with the dimensions ``service``, ``table`` and ``kind``
(rather than a metric per kind, the style of the older counts): one metric name for one question,
summed over kinds with a SEARCH or metric math, and a new kind needs no new alarm or widget. The
older metrics that count some of the same events (``StaleDropped``, ``TombstoneHits``,
``ChangesStamped``) stay as they are: operators alarm on them. Only kinds that occurred are emitted.

The log: one line per conflict, each logged with probability ``sample_rate`` and at most
``max_lines`` per invocation (a uniform sample of those), at INFO. A line holds the kind, the table,
the key's digest, the winning and the losing version (timestamp, origin, delete or not; null where
not known, ``unknown`` says why), the stamp's reason, and the key itself only with ``log_keys``
(ConflictLogSettings), never for an item the forwarder's residency rules keep on this side
(docs/residency.md). Never item contents.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from replication.keys import TypedItem, key_digest
from replication.settings import ConflictLogSettings
from replication.telemetry import MetricUnit, logger, table_metrics
from replication.versions import Version, format_timestamp

METRIC = "Conflicts"
KIND_DIMENSION = "kind"
LOG_MESSAGE = "conflict resolved"


class ConflictKind(Enum):
    STALE_DROPPED = "stale-dropped"  # a change older than the version the table holds: not written
    TIE_BROKEN = "tie-broken"  # equal timestamps: the greater origin won
    DELETE_WON = "delete-won"  # an upsert older than a remembered (or newer) delete lost to it
    STAMPED = "stamped"  # a local write without a valid, newer version was given one


@dataclass(frozen=True)
class Conflict:
    """One resolved conflict of ``key``: the version that won and the one that lost (None where not
    known: ``unknown`` says why). ``stamped``: ``winner`` is the stamp the write was given,
    ``loser`` the version the write carried (None: none, or none valid; ``reason`` says which).
    ``key_loggable``: False for an item the residency rules keep on this side (no key in any line)."""

    kind: ConflictKind
    key: TypedItem
    winner: Version | None
    loser: Version | None
    unknown: str | None = None
    reason: str | None = None
    key_loggable: bool = True


def resolved(incoming: Version, held: Version) -> ConflictKind | None:
    """The kind of conflict a change that lost (``incoming``) to ``held`` was, or None for a
    duplicate (the same version: nothing lost). A tie is a tie whatever won it, a delete too."""
    if held.order() == incoming.order():
        return None
    if held.timestamp == incoming.timestamp and held.origin != incoming.origin:
        return ConflictKind.TIE_BROKEN
    if held.is_delete and not incoming.is_delete:
        return ConflictKind.DELETE_WON
    return ConflictKind.STALE_DROPPED


def counts(conflicts: Sequence[tuple[str, Conflict]]) -> Counter[tuple[str, ConflictKind]]:
    """Conflicts by (table, kind)."""
    return Counter((table, conflict.kind) for table, conflict in conflicts)


def record(
    conflicts: Sequence[tuple[str, Conflict]],
    settings: ConflictLogSettings,
    *,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """Count ``conflicts`` (table, conflict: one invocation's) as ``Conflicts`` per table and kind
    (each its own EMF document, flushed here), and log a sample of them. Returns the lines logged."""
    for (table, kind), count in sorted(
        counts(conflicts).items(), key=lambda item: (item[0][0], item[0][1].value)
    ):
        metric = table_metrics(table)
        metric.add_dimension(KIND_DIMENSION, kind.value)
        metric.add_metric(METRIC, MetricUnit.Count, count)
        metric.flush_metrics()
    lines = [line(table, conflict, settings) for table, conflict in sample(conflicts, settings, rng)]
    for entry in lines:
        logger.info(LOG_MESSAGE, extra=entry)
    return lines


def sample(
    conflicts: Sequence[tuple[str, Conflict]], settings: ConflictLogSettings, rng: random.Random | None = None
) -> list[tuple[str, Conflict]]:
    """Each conflict with probability ``sample_rate``, then at most ``max_lines`` of those, chosen
    uniformly (so one table's burst early in a batch cannot crowd out the rest), in their order."""
    draw = rng or random
    taken = [index for index in range(len(conflicts)) if draw.random() < settings.sample_rate]
    if len(taken) > settings.max_lines:
        taken = sorted(draw.sample(taken, settings.max_lines))
    return [conflicts[index] for index in taken]


def line(table: str, conflict: Conflict, settings: ConflictLogSettings) -> dict[str, Any]:
    """The structured fields of one conflict's log line (no item contents)."""
    entry: dict[str, Any] = {
        "kind": conflict.kind.value,
        "table": table,
        "key_digest": key_digest(conflict.key),
        "winner": _version(conflict.winner),
        "loser": _version(conflict.loser),
    }
    if conflict.unknown:
        entry["unknown"] = conflict.unknown
    if conflict.reason:
        entry["reason"] = conflict.reason
    if settings.log_keys and conflict.key_loggable:
        entry["key"] = conflict.key
    return entry


def _version(version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "timestamp": format_timestamp(version.timestamp),
        "origin": version.origin,
        "delete": version.is_delete,
    }


__all__ = ["METRIC", "Conflict", "ConflictKind", "counts", "line", "record", "resolved", "sample"]
