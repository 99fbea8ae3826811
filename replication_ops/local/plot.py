"""A PNG of the replication lag, one row per table: over time (per origin side), its distribution and,
when the replicators measured them, its stages: each stage's median (p50) stacked in the order a
change passes them, with end to end's p50 and p99 beside the stack. Only medians are stacked, and
even they do not add up to end to end's median exactly (a median of sums is not the sum of the
medians); p99s would add up to much more than end to end's p99 (a change slow in one stage is
rarely slow in all), so the tail is end to end's own.

Both panels keep their top quarter free of data (the y axis reaches 1.3 times the highest point or
bar) and put their legend there, so the legend never hides the slowest changes; the maximum is
marked in both (a cross on the slowest change, a line in the distribution)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replication import lag
from replication_ops.local.verify import LagSample, percentile

HEADROOM = 1.3  # the y axis reaches this times the highest point: the legend's band


STAGE_LABELS = {
    lag.STREAM_TO_FORWARDER: "stream -> forwarder",
    lag.FORWARDER_TO_INBOX: "forwarder -> inbox",
    lag.INBOX_TO_APPLY: "inbox -> apply",
}
Stages = dict[str, dict[str, dict[str, float | None]]]  # table -> the report's lag_stages


def plot_lag(
    tables: dict[str, list[LagSample]],
    path: Path,
    *,
    title: str = "Replication lag",
    stages: Stages | None = None,
) -> Path:
    """``tables``: each table's samples, a row each (in the order given); ``stages``: each table's
    ``lag_stages`` (the report's), drawn as a third panel."""
    import matplotlib.pyplot as plt

    figure = lag_figure(tables, title=title, stages=stages)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def lag_figure(
    tables: dict[str, list[LagSample]], *, title: str = "Replication lag", stages: Stages | None = None
) -> Any:
    """The figure (a matplotlib Figure; the caller closes it): a row per table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(tables))
    columns = 3 if stages else 2
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.5 * rows), dpi=110, squeeze=False)
    for (name, samples), panels in zip(tables.items(), axes, strict=False):
        _table_row(name, samples, panels[0], panels[1])
        if stages:
            stage_breakdown(name, stages.get(name, {}), panels[2])
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


ROWS = ("end to end", "stages\n(each p50)")  # bottom to top
CAPTION = "seconds; stacked: each stage's median (p50)\n(the medians need not add up to end to end's)"


def stage_breakdown(name: str, stages: dict[str, dict[str, float | None]], axes: Any) -> None:
    """Two rows: at the top each stage's p50 stacked left to right in the order a change passes them,
    under it end to end's p50 and p99, markers on a line from one to the other."""
    end_to_end = stages.get(lag.END_TO_END, {})
    marks = [
        (end_to_end.get("p50"), "o", f"end to end p50 {end_to_end.get('p50')} s"),
        (end_to_end.get("p99"), "D", f"end to end p99 {end_to_end.get('p99')} s"),
    ]
    known = [value for value, _, _ in marks if value is not None]
    if not known and all(stages.get(stage, {}).get("p50") is None for stage in STAGE_LABELS):
        axes.text(0.5, 0.5, "no stage samples", ha="center", va="center", transform=axes.transAxes)
    else:
        end_to_end_row, stack_row = range(len(ROWS))
        left = 0.0
        handles = []
        for stage, label in STAGE_LABELS.items():
            width = stages.get(stage, {}).get("p50") or 0.0
            handles.append(axes.barh([stack_row], [width], left=[left], label=label))
            left += width
        axes.plot(known, [end_to_end_row] * len(known), color="black", linewidth=1)
        for value, marker, label in marks:
            if value is not None:
                handles.extend(
                    axes.plot(
                        [value], [end_to_end_row], marker=marker, color="black", linestyle="", label=label
                    )
                )
        axes.set_yticks(range(len(ROWS)), ROWS)
        axes.set_xlim(0, max([left, *known]) * HEADROOM or 1.0)
        axes.set_ylim(-0.6, len(ROWS) + 0.6)  # a free band above the bars for the legend
        axes.legend(handles=handles, loc="upper left", fontsize=8, ncol=2)
    axes.set_xlabel(CAPTION)
    axes.set_title(f"{name}: lag by stage")
    axes.grid(True, axis="x", alpha=0.3)
