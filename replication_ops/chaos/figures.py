"""What one scenario measured: key scoping, lag during the fault, catch-up time, the table.

Pure functions over the load generator's writes, the lag samples (from what the table streams'
pollers read) and the tables, so that they run in the unit tests without an environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from replication_ops.local.loadgen import Operation
from replication_ops.local.verify import LagSample

COLUMNS = (
    ("scenario", "scenario"),
    ("changes", "changes written"),
    ("lost", "lost"),
    ("differing", "differing"),
    ("max_lag", "max lag in fault (s)"),
    ("catch_up", "catch-up (s)"),
    ("result", "result"),
)


def prefixed(operations: dict[str, list[Operation]], prefix: str) -> dict[str, list[Operation]]:
    """The same plan on keys of the scenario's own (``<prefix>#user#...``), so scenarios never share keys."""
    from dataclasses import replace

    return {side: [replace(op, pk=f"{prefix}#{op.pk}") for op in ops] for side, ops in operations.items()}


def partition_key(key: str, hash_key: str = "pk") -> str:
    """The hash key value of an observations/verify key string (``key_of``'s JSON)."""
    try:
        value = json.loads(key).get(hash_key) or {}
    except ValueError:
        return ""
    return str(value.get("S", ""))


def scoped(
    tables: dict[str, dict[str, dict]], prefix: str, hash_key: str = "pk"
) -> dict[str, dict[str, dict]]:
    """Only the items of one scenario's keys (``hash_key``: the table's, a String)."""
    mark = f"{prefix}#"
    return {
        side: {key: item for key, item in items.items() if partition_key(key, hash_key).startswith(mark)}
        for side, items in tables.items()
    }


@dataclass(frozen=True)
class FaultWindow:
    began: float | None = None  # epoch seconds
    ended: float | None = None

    def contains(self, at: float) -> bool:
        return self.began is not None and self.ended is not None and self.began <= at <= self.ended


def max_lag_during(samples: list[LagSample], window: FaultWindow) -> float | None:
    """The longest replication lag of the changes written while the fault was on."""
    lags = [s.lag for s in samples if window.contains(s.written_at)]
    return round(max(lags), 2) if lags else None


def catch_up_seconds(samples: list[LagSample], window: FaultWindow) -> float | None:
    """Seconds from the end of the fault until the last change written before that end reached the
    other side (0 when everything had already arrived)."""
    if window.ended is None:
        return None
    arrivals = [s.written_at + s.lag for s in samples if s.written_at <= window.ended]
    if not arrivals:
        return None
    return round(max(0.0, max(arrivals) - window.ended), 2)


def passed(result: dict[str, Any]) -> bool:
    return (
        result.get("error") is None
        and result.get("lost") == 0
        and result.get("differing") == 0
        and result.get("uncertain", 0) == 0
        and not result.get("failed_checks")
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_table(results: list[dict[str, Any]]) -> str:
    rows = [[label for _, label in COLUMNS]]
    for result in results:
        row = {**result, "result": "PASS" if passed(result) else "FAIL"}
        rows.append([_cell(row.get(name)) for name, _ in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for result in results:
        notes = [*(result.get("failed_checks") or []), *([result["error"]] if result.get("error") else [])]
        for note in notes:
            lines.append(f"  {result['scenario']}: {note}")
    return "\n".join(lines)
