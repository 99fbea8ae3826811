"""The demo's report: a table on stdout and ``build/local/report.json``.

Engine figures (forwarded, echoes suppressed, stamped and why, replicated, stale dropped) come from
the functions' EMF metric lines; the rest from the load generator (its writes by kind), the runner
(Kinesis records and bytes read from the inbox shards) and the observations of what its table-stream
pollers read (lag).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from replication import lag
from replication_ops.local.loadgen import WRITE_KINDS, LoadOptions, LoadResult
from replication_ops.local.verify import LagSample, Verification, percentile

FIRST_SIGHT_LAG = (
    "from the origin write's acknowledgement to the version's first sight in the other table's stream "
    "(when Lambda's poller read it: 4 times a second, so at most 0.25 s after it appeared, later if "
    "that side's forwarder was being invoked then), "
    "for every upsert that arrived with the version it ended with "
    "(its own, or the stamp the forwarder gave it: then the stamp's delay counts too)"
)
ENGINE_LAG = (
    "from the version timestamp, which the writer takes before its put (never before its stream "
    "record's second), to the replicator's write returning, for sampled applied upserts: it also counts "
    "the origin put itself, so it reads higher"
)


LAG_STAGES = (*lag.STAGES, lag.END_TO_END)
LAG_STAGE_LABELS = {
    lag.STREAM_TO_FORWARDER: "stream -> forwarder",
    lag.FORWARDER_TO_INBOX: "forwarder -> inbox",
    lag.INBOX_TO_APPLY: "inbox -> apply",
    lag.END_TO_END: "end to end",
}
STAGE_LAG = (
    "the replicators' own per-stage lag metrics (replication.lag), seconds: origin write (version "
    "timestamp, never before its stream record's second) -> forwarder send -> inbox arrival "
    "(approximateArrivalTimestamp) -> apply; applied upserts, up to 100 evenly spaced samples per "
    "table and invocation (EMF), so a large batch weighs as much as a small one; the lag above is "
    "write acknowledged until read from the other table's stream, so the two end to ends differ"
)


def lag_stages(values_ms: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    """``{stage: {"p50": s, "p99": s}}`` from the replicators' stage metrics (``{metric: [ms]}``,
    ``Runner.stage_lags`` for one table or merged); None without samples."""
    out: dict[str, dict[str, float | None]] = {}
    for stage in LAG_STAGES:
        seconds = [value / 1000 for value in values_ms.get(lag.METRICS[stage], [])]
        out[stage] = {"p50": _round(percentile(seconds, 0.50)), "p99": _round(percentile(seconds, 0.99))}
    return out


def merged_stage_values(by_table: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Every table's stage values together (``{metric: [ms]}``)."""
    merged: dict[str, list[float]] = {}
    for metrics in by_table.values():
        for name, values in metrics.items():
            merged.setdefault(name, []).extend(values)
    return merged


def _metric(summary: dict[str, Any], side: str, kind: str, name: str) -> int:
    return int(summary.get(side, {}).get(kind, {}).get("metrics", {}).get(name, 0))


# The forwarder's stamps by reason: its metric per reason (functions/forwarder/app.py, the dashboard
# in modules/replication_endpoint/monitoring.tf); ChangesStamped counts them all.
STAMP_REASON_METRICS = {
    "invalid_version": "InvalidVersionsStamped",
    "version_ahead": "VersionsAheadStamped",
    "reserved_attribute": "ReservedAttributesStamped",
}
# The two reasons without a metric of their own (no version at all; a version not newer than the one
# it replaced, e.g. an UpdateItem of one field): ChangesStamped less the others.
ABSENT_OR_NOT_NEWER = "absent_or_not_newer"
STAMP_REASONS = (ABSENT_OR_NOT_NEWER, *STAMP_REASON_METRICS)


def stamped_by_reason(summary: dict[str, Any], side: str) -> dict[str, int]:
    """The forwarder's stamps on one side by reason (its EMF metrics, summed by the runner)."""
    reasons = {
        reason: _metric(summary, side, "forwarder", name) for reason, name in STAMP_REASON_METRICS.items()
    }
    total = _metric(summary, side, "forwarder", "ChangesStamped")
    return {ABSENT_OR_NOT_NEWER: total - sum(reasons.values()), **reasons}


# The engine's figures per table (its EMF metrics with the ``table`` dimension, summed by the runner):
# report name -> (function, metric).
TABLE_METRICS = {
    "forwarded": ("forwarder", "ChangesForwarded"),
    "echoes_suppressed": ("forwarder", "EchoesSuppressed"),
    "stamped": ("forwarder", "ChangesStamped"),
    "residency_filtered": ("forwarder", "ResidencyFiltered"),
    "residency_removals": ("forwarder", "ResidencyRemovals"),
    "residency_filter_errors": ("forwarder", "ResidencyFilterErrors"),
    "received_from_peer": ("replicator", "ChangesReceived"),
    "replicated_in": ("replicator", "ChangesApplied"),
    "stale_dropped": ("replicator", "StaleDropped"),
    "tombstone_hits": ("replicator", "TombstoneHits"),
}


def lag_summary(values: list[float]) -> dict[str, Any]:
    """Samples and p50/p95/p99/max in seconds (None without samples), for the report and each table."""
    return {
        "samples": len(values),
        "p50": _round(percentile(values, 0.50)),
        "p95": _round(percentile(values, 0.95)),
        "p99": _round(percentile(values, 0.99)),
        "max": _round(max(values) if values else None),
    }


def table_figures(
    name: str,
    *,
    sides: list[str],
    load: LoadResult,
    verification: Verification,
    table_metrics: dict[str, dict[str, dict[str, dict[str, float]]]],  # Runner.table_metrics()
    lags: list[LagSample],
    rules: dict[str, Any],  # side -> the residency rules deployed there (only sides with rules)
    stage_values: dict[str, list[float]] | None = None,  # this table's Runner.stage_lags() entry
) -> dict[str, Any]:
    """One table's entry of the report: its own lost and differing items, its writes and the engine's
    counts for it (from the metrics' ``table`` dimension) per side, its lag."""

    def metric(side: str, kind: str, metric_name: str) -> int:
        return int(table_metrics.get(side, {}).get(kind, {}).get(name, {}).get(metric_name, 0))

    values = [s.lag for s in lags]
    return {
        "lost": len(verification.lost),
        "items_differing": len(verification.differing),
        "items": verification.items,
        "keys_written": verification.keys_written,
        "keys_uncertain": verification.uncertain,
        "residency_rules": rules,
        "sides": {
            side: {
                "changes_written": load.changes(side),
                "writes_by_kind": load.by_kind(side),
                **{key: metric(side, *source) for key, source in TABLE_METRICS.items()},
                "lost": verification.lost_by_side.get(side, 0),
            }
            for side in sides
        },
        "lag_seconds": lag_summary(values),
        "lag_stages": lag_stages(stage_values or {}),
    }


def build_report(
    *,
    sides: list[str],
    peers: dict[str, str],
    options: LoadOptions,
    load: LoadResult,
    runner_summary: dict[str, Any],
    inbox: dict[str, tuple[int, int]],  # side -> (Kinesis records, data bytes) read from its inbox
    lags: list[LagSample],
    verification: Verification,
    timings: dict[str, float],
    drained_at: float,
    settings: dict[str, Any] | None = None,
    tables: dict[str, dict[str, Any]] | None = None,  # table_figures by logical table
    residency: dict[str, Any] | None = None,  # the canary check: {"canary", "places"}
    stage_values: dict[str, dict[str, list[float]]] | None = None,  # Runner.stage_lags()
) -> dict[str, Any]:
    """The report; ``verification`` is every table's (``verify.combined``); ``lost`` and
    ``items_differing`` are the tables' sums; ``residency_canary_leaks`` the places the canary was
    found (the demo fails unless 0)."""
    per_side: dict[str, Any] = {}
    for side in sides:
        peer = peers[side]
        records_in, bytes_in = inbox.get(side, (0, 0))
        per_side[side] = {
            "changes_written": load.changes(side),
            "writes": load.counts(side),
            "writes_by_kind": load.by_kind(side),
            "forwarded": _metric(runner_summary, side, "forwarder", "ChangesForwarded"),
            "echoes_suppressed": _metric(runner_summary, side, "forwarder", "EchoesSuppressed"),
            "stamped": _metric(runner_summary, side, "forwarder", "ChangesStamped"),
            "stamped_by_reason": stamped_by_reason(runner_summary, side),
            "too_large_to_version": _metric(runner_summary, side, "forwarder", "ItemsTooLargeToVersion"),
            "kinesis_records_sent": _metric(runner_summary, side, "forwarder", "RecordsSent"),
            "kinesis_bytes_sent": _metric(runner_summary, side, "forwarder", "BytesSent"),
            "received_from_peer": _metric(runner_summary, side, "replicator", "ChangesReceived"),
            "replicated_in": _metric(runner_summary, side, "replicator", "ChangesApplied"),
            "stale_dropped": _metric(runner_summary, side, "replicator", "StaleDropped"),
            "tombstone_hits": _metric(runner_summary, side, "replicator", "TombstoneHits"),
            "poison_messages": _metric(runner_summary, side, "replicator", "PoisonMessages"),
            "invocations": {
                kind: runner_summary.get(side, {}).get(kind, {}).get("invocations", 0)
                for kind in ("forwarder", "replicator")
            },
            "inbox_kinesis_records": records_in,
            "inbox_kinesis_bytes": bytes_in,
            "lag_samples_from_peer": sum(1 for s in lags if s.origin == peer),
            "items": verification.items.get(side, 0),
            "lost": verification.lost_by_side.get(side, 0),
        }
    changes = sum(v["changes_written"] for v in per_side.values())
    forwarded = sum(v["forwarded"] for v in per_side.values())
    kinesis_records = sum(v["inbox_kinesis_records"] for v in per_side.values())
    kinesis_bytes = sum(v["inbox_kinesis_bytes"] for v in per_side.values())
    per_change_base = forwarded or changes
    load_seconds = max(1e-9, load.finished - load.started)
    replicated = sum(v["replicated_in"] for v in per_side.values())
    values = [s.lag for s in lags]
    leaks = sum(residency["places"].values()) if residency else 0
    return {
        "converged": verification.converged,
        "lost": len(verification.lost),
        "items_differing": len(verification.differing),
        "residency_canary_leaks": leaks,
        "residency_canary": residency,
        "tables": tables or {},
        "settings": {**asdict(options), **(settings or {})},
        "timings_seconds": {
            **timings,
            "load": round(load_seconds, 2),
            "drain_after_load": round(max(0.0, drained_at - load.finished), 2),
        },
        "sides": per_side,
        "totals": {
            "changes_written": changes,
            "forwarded": forwarded,
            "replicated": replicated,
            "replicated_observed": len(lags),
            "stale_dropped": sum(v["stale_dropped"] for v in per_side.values()),
            "tombstone_hits": sum(v["tombstone_hits"] for v in per_side.values()),
            "echoes_suppressed": sum(v["echoes_suppressed"] for v in per_side.values()),
            "stamped": sum(v["stamped"] for v in per_side.values()),
            "stamped_by_reason": {
                reason: sum(v["stamped_by_reason"][reason] for v in per_side.values())
                for reason in STAMP_REASONS
            },
            "too_large_to_version": sum(v["too_large_to_version"] for v in per_side.values()),
            "writes_by_kind": {
                kind: sum(v["writes_by_kind"][kind] for v in per_side.values()) for kind in WRITE_KINDS
            },
            "lost": len(verification.lost),
            "items_differing": len(verification.differing),
            "keys_written": verification.keys_written,
            "keys_uncertain": verification.uncertain,
            "kinesis_records": kinesis_records,
            "kinesis_bytes": kinesis_bytes,
            "bytes_per_change": round(kinesis_bytes / per_change_base, 1) if per_change_base else None,
            "kinesis_records_per_change": round(kinesis_records / per_change_base, 4)
            if per_change_base
            else None,
            # Lambda invocations (both functions, both sides) per change forwarded: what a batching
            # window saves.
            "invocations_per_change": round(
                sum(sum(v["invocations"].values()) for v in per_side.values()) / per_change_base, 4
            )
            if per_change_base
            else None,
        },
        "lag_seconds": {
            "definition": FIRST_SIGHT_LAG,
            "engine_metric_definition": ENGINE_LAG,
            **lag_summary(values),
            "slowest": [
                {
                    "key": s.key,
                    "origin": s.origin,
                    "version": s.version,
                    "stamped": s.stamped,
                    "lag": round(s.lag, 3),
                }
                for s in sorted(lags, key=lambda s: s.lag, reverse=True)[:5]
            ],
        },
        "lag_stages": lag_stages(merged_stage_values(stage_values or {})),
        "lag_stages_definition": STAGE_LAG,
        "throughput_per_second": {
            "writes": round(changes / load_seconds, 1),
            "replicated": round(replicated / max(1e-9, drained_at - load.started), 1),
        },
        "runner": runner_summary,
        "verification": {
            "differing_keys": verification.differing[:20],
            "lost_keys": verification.lost[:20],
            "examples": verification.examples,
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


WRITE_KIND_LABELS = {
    "versioned": "upserts versioned (clock, us)",
    "decimal_time": "upserts Decimal(time.time())",
    "unversioned_put": "PutItem without a version",
    "unversioned_update": "UpdateItem of 1 field, version kept",
    "invalid_version": "upserts with an invalid version",
}
STAMP_REASON_LABELS = {
    ABSENT_OR_NOT_NEWER: "no version / not newer",
    "invalid_version": "invalid version",
    "version_ahead": "version beyond the clock skew",
    "reserved_attribute": "reserved attribute",
}


def render(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    sides = list(report["sides"])
    rows: list[tuple[str, ...]] = [("", *sides, "total")]

    def row(label: str, key: str, total: Any = None) -> None:
        values = [str(report["sides"][side].get(key, "")) for side in sides]
        rows.append((label, *values, "" if total is None else str(total)))

    totals = report["totals"]
    row("changes written", "changes_written", totals["changes_written"])
    rows.append(
        (
            "  put / update / delete",
            *[
                "{} / {} / {}".format(
                    report["sides"][s]["writes"].get("put", 0),
                    report["sides"][s]["writes"].get("update", 0),
                    report["sides"][s]["writes"].get("delete", 0),
                )
                for s in sides
            ],
            "",
        )
    )
    rows.append(
        (
            "  conflicting writes",
            *[str(report["sides"][s]["writes"].get("conflicting", 0)) for s in sides],
            "",
        )
    )
    for kind, label in WRITE_KIND_LABELS.items():
        rows.append(
            (
                f"  {label}",
                *[str(report["sides"][s]["writes_by_kind"].get(kind, 0)) for s in sides],
                str(totals["writes_by_kind"].get(kind, 0)),
            )
        )
    row("forwarded to peer", "forwarded", totals["forwarded"])
    row("echoes suppressed", "echoes_suppressed", totals["echoes_suppressed"])
    row("stamped in place", "stamped", totals["stamped"])
    for reason, label in STAMP_REASON_LABELS.items():
        rows.append(
            (
                f"  {label}",
                *[str(report["sides"][s]["stamped_by_reason"].get(reason, 0)) for s in sides],
                str(totals["stamped_by_reason"].get(reason, 0)),
            )
        )
    row("too large to version", "too_large_to_version", totals["too_large_to_version"])
    row("replicated in (applied)", "replicated_in", totals["replicated"])
    row("stale dropped", "stale_dropped", totals["stale_dropped"])
    row("tombstone hits", "tombstone_hits", totals["tombstone_hits"])
    row("inbox Kinesis records", "inbox_kinesis_records", totals["kinesis_records"])
    row("inbox Kinesis bytes", "inbox_kinesis_bytes", totals["kinesis_bytes"])
    row("items in table", "items")
    row("lost (must be 0)", "lost", totals["lost"])
    rows.append(("items differing (must be 0)", "", "", str(totals["items_differing"])))

    lag = report["lag_seconds"]
    throughput = report["throughput_per_second"]
    lines = _table(rows)
    if report.get("tables"):
        lines.append("")
        lines.extend(_table(_table_rows(report)))
    lines.append("")
    lines.append(
        "replication lag (s): p50 {p50}  p95 {p95}  p99 {p99}  max {max}  ({samples} samples)".format(**lag)
    )
    lines.append(f"  {FIRST_SIGHT_LAG}")
    engines = [
        (side, report.get("runner", {}).get(side, {}).get("replicator", {}).get("ReplicationLatency_ms"))
        for side in sides
    ]
    if any(engine for _, engine in engines):
        lines.append(f"the engine's ReplicationLatency metric (s): {ENGINE_LAG}")
        for side, engine in engines:
            if engine:
                lines.append(
                    f"  applied in {side}: p50 {engine['p50'] / 1000:.2f}  p99 {engine['p99'] / 1000:.2f}  "
                    f"max {engine['max'] / 1000:.2f}  ({engine['samples']} samples)"
                )
    lines.extend(_stage_lines(report))
    lines.append(
        f"throughput: {throughput['writes']} writes/s during the load, "
        f"{throughput['replicated']} replicated changes/s until drained"
    )
    lines.append(
        f"per change: {totals['bytes_per_change']} bytes, "
        f"{totals['kinesis_records_per_change']} Kinesis records, "
        f"{totals['invocations_per_change']} Lambda invocations"
    )
    timings = report["timings_seconds"]
    lines.append("timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    lines.append("CONVERGED" if report["converged"] else "NOT CONVERGED")
    canary = report.get("residency_canary")
    if canary:
        found = ", ".join(f"{place} {n}" for place, n in canary["places"].items())
        verdict = "found nowhere" if not report["residency_canary_leaks"] else "FOUND (must be 0)"
        lines.append(f"residency canary on the us side: {verdict}: {found}")
    return "\n".join(lines)


def failures(report: dict[str, Any]) -> list[str]:
    """Why the demo fails (empty: it passes): not converged, the residency canary found on the us
    side, a call an IAM policy denied."""
    found = []
    if not report["converged"]:
        found.append(f"NOT CONVERGED ({report['lost']} lost, {report['items_differing']} items differing)")
    if report.get("residency_canary_leaks"):
        found.append(f"residency canary found {report['residency_canary_leaks']} times")
    denied = report.get("iam", {}).get("denied", [])
    if denied:
        found.append(f"IAM denied {len(denied)} call(s)")
    return found


def final_line(report: dict[str, Any], path: Path) -> str:
    """The demo's last line, after the teardown: the verdict, the lag, where the report is."""
    lag = report["lag_seconds"]
    verdict = (
        "demo FAILED: " + "; ".join(failures(report))
        if failures(report)
        else f"demo passed: CONVERGED ({report['lost']} lost, {report['items_differing']} items differing)"
    )
    return f"{verdict}; replication lag p50 {lag['p50']} s / p99 {lag['p99']} s; report {path}"


def _stage_lines(report: dict[str, Any]) -> list[str]:
    """The per-stage lag line, when the replicators measured any."""
    stages = report.get("lag_stages") or {}
    if not any(figures["p50"] is not None for figures in stages.values()):
        return []
    parts = (f"{LAG_STAGE_LABELS[stage]} {f['p50']} / {f['p99']}" for stage, f in stages.items())
    return ["lag per stage (s, p50 / p99): " + ", ".join(parts), f"  {STAGE_LAG}"]


TABLE_ROWS = (
    ("changes written", "changes_written"),
    ("forwarded", "forwarded"),
    ("stamped", "stamped"),
    ("residency: filtered", "residency_filtered"),
    ("residency: removals", "residency_removals"),
    ("residency: filter errors", "residency_filter_errors"),
    ("replicated in", "replicated_in"),
    ("stale dropped", "stale_dropped"),
)


def _table_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per table: its figures per side (``cn / us``), items, lost and differing."""
    tables = report["tables"]
    sides = list(report["sides"])
    rows: list[tuple[str, ...]] = [(f"per table ({' / '.join(sides)})", *tables)]
    for label, key in TABLE_ROWS:
        rows.append(
            (label, *[" / ".join(str(t["sides"][side][key]) for side in sides) for t in tables.values()])
        )
    rows.append(("items", *[" / ".join(str(t["items"].get(s, 0)) for s in sides) for t in tables.values()]))
    rows.append(
        (
            "lag p50 / p95 / max (s)",
            *["{p50} / {p95} / {max}".format(**t["lag_seconds"]) for t in tables.values()],
        )
    )
    rows.append(("lost (must be 0)", *[str(t["lost"]) for t in tables.values()]))
    rows.append(("items differing (must be 0)", *[str(t["items_differing"]) for t in tables.values()]))
    return rows


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[i]) for i, cell in enumerate(row) if i]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
