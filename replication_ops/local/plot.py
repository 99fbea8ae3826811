"""A PNG of the replication lag, one row per table: over time (per origin side) and its distribution.

Both panels keep their top quarter free of data (the y axis reaches 1.3 times the highest point or
bar) and put their legend there, so the legend never hides the slowest changes; the maximum is
marked in both (a cross on the slowest change, a line in the distribution)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replication_ops.local.verify import LagSample, percentile

HEADROOM = 1.3  # the y axis reaches this times the highest point: the legend's band


def plot_lag(tables: dict[str, list[LagSample]], path: Path, *, title: str = "Replication lag") -> Path:
    """``tables``: each table's samples, a row each (in the order given)."""
    import matplotlib.pyplot as plt

    figure = lag_figure(tables, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def lag_figure(tables: dict[str, list[LagSample]], *, title: str = "Replication lag") -> Any:
    """The figure (a matplotlib Figure; the caller closes it): a row per table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(tables))
    figure, axes = plt.subplots(rows, 2, figsize=(12, 4.5 * rows), dpi=110, squeeze=False)
    for (name, samples), (over_time, distribution) in zip(tables.items(), axes, strict=False):
        _table_row(name, samples, over_time, distribution)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _table_row(name: str, samples: list[LagSample], over_time: Any, distribution: Any) -> None:
    start = min((s.written_at for s in samples), default=0.0)
    origins = sorted({s.origin for s in samples})
    for origin in origins:
        mine = [s for s in samples if s.origin == origin]
        over_time.scatter(
            [s.written_at - start for s in mine],
            [s.lag for s in mine],
            s=6,
            alpha=0.6,
            label=f"written in {origin}",
        )
    if samples:
        slowest = max(samples, key=lambda s: s.lag)
        over_time.scatter(
            [slowest.written_at - start],
            [slowest.lag],
            marker="x",
            s=60,
            color="red",
            zorder=3,
            label=f"max {slowest.lag:.2f} s",
        )
        over_time.set_ylim(0, max(slowest.lag * HEADROOM, 0.1))
    over_time.set_xlabel("time of the origin write (s since the first)")
    over_time.set_ylabel("lag until visible on the other side (s)")
    over_time.set_title(f"{name}: lag over time")
    over_time.grid(True, alpha=0.3)
    if origins:
        over_time.legend(loc="upper left", fontsize=8, ncol=len(origins) + 1)

    values = [s.lag for s in samples]
    if values:
        counts, _, _ = distribution.hist(
            values, bins=min(50, max(5, len(values) // 10)), color="tab:blue", alpha=0.8
        )
        for fraction, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
            mark = percentile(values, fraction)
            if mark is not None:
                distribution.axvline(
                    mark,
                    color="black",
                    linestyle=style,
                    linewidth=1,
                    label=f"p{int(fraction * 100)} {mark:.2f} s",
                )
        distribution.axvline(
            max(values), color="red", linestyle="-.", linewidth=1, label=f"max {max(values):.2f} s"
        )
        distribution.set_ylim(0, max(counts) * HEADROOM)
        distribution.legend(loc="upper left", fontsize=8, ncol=4)
    else:
        distribution.text(0.5, 0.5, "no samples", ha="center", va="center", transform=distribution.transAxes)
    distribution.set_xlabel("lag (s)")
    distribution.set_ylabel("changes")
    distribution.set_title(f"{name}: distribution ({len(values)} changes)")
    distribution.grid(True, alpha=0.3)
