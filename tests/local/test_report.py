"""The report (table, JSON, plot), the command line and the background server's bookkeeping."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from replication_ops.local.__main__ import build_parser, main
from replication_ops.local.config import Paths
from replication_ops.local.daemon import clean, describe_environment, running_server
from replication_ops.local.loadgen import (
    DECIMAL_TIME,
    EPOCH_MILLISECONDS,
    PUT,
    STRING_TIMESTAMP,
    UNVERSIONED,
    UPDATE,
    LoadOptions,
    LoadResult,
    Operation,
    Write,
)
from replication_ops.local.plot import plot_lag
from replication_ops.local.report import build_report, final_line, render, table_figures, write_report
from replication_ops.local.verify import LagSample, Verification, combined

CN, US = "cn-north-1", "us-east-1"


def _write(side: str, ts: str) -> Write:
    op = Operation(side, 0.0, PUT, "user#1", "profile", {})
    return Write(op, (Decimal(ts), side), {}, None, 100.0, 100.1)


def _report(lost: list[str] | None = None) -> dict:
    summary = {
        CN: {
            "forwarder": {"metrics": {"ChangesForwarded": 2, "EchoesSuppressed": 1, "ChangesStamped": 0}},
            "replicator": {"metrics": {"ChangesApplied": 1, "StaleDropped": 1}},
        },
        US: {
            "forwarder": {"metrics": {"ChangesForwarded": 1, "EchoesSuppressed": 2}},
            "replicator": {"metrics": {"ChangesApplied": 2}},
        },
    }
    verification = Verification(
        items={CN: 2, US: 2},
        differing=[],
        lost=lost or [],
        lost_by_side={CN: len(lost or []), US: 0},
        uncertain=0,
        keys_written=2,
    )
    return build_report(
        sides=[CN, US],
        peers={CN: US, US: CN},
        options=LoadOptions(operations=2, rate=1),
        load=LoadResult([_write(CN, "100.1"), _write(CN, "100.2"), _write(US, "100.3")], 100.0, 102.0),
        runner_summary=summary,
        inbox={CN: (1, 150), US: (2, 300)},
        lags=[LagSample(100.1, 1.0, CN), LagSample(100.2, 2.0, CN), LagSample(100.3, 1.5, US)],
        verification=verification,
        timings={"terraform": 50.0},
        drained_at=104.0,
    )


def test_the_report_has_every_figure_the_issue_asks_for() -> None:
    report = _report()
    assert report["converged"] is True
    totals = report["totals"]
    assert totals["changes_written"] == 3
    assert totals["replicated"] == 3 and totals["stale_dropped"] == 1 and totals["echoes_suppressed"] == 3
    assert totals["lost"] == 0 and totals["items_differing"] == 0
    assert totals["kinesis_records"] == 3 and totals["kinesis_bytes"] == 450
    assert totals["bytes_per_change"] == 150.0 and totals["kinesis_records_per_change"] == 1.0
    words = ("definition", "engine_metric_definition", "slowest")
    lag = {k: v for k, v in report["lag_seconds"].items() if k not in words}
    assert report["lag_seconds"]["slowest"][0]["lag"] == 2.0
    assert lag == {"samples": 3, "p50": 1.5, "p95": 2.0, "p99": 2.0, "max": 2.0}
    assert report["throughput_per_second"]["writes"] == 1.5
    assert report["sides"][CN]["changes_written"] == 2 and report["sides"][US]["replicated_in"] == 2
    json.dumps(report)
    text = render(report)
    for label in (
        "changes written",
        "replicated in",
        "stale dropped",
        "echoes suppressed",
        "lost",
        "differing",
    ):
        assert label in text
    assert "CONVERGED" in text and "NOT CONVERGED" not in text
    assert "NOT CONVERGED" in render(_report(lost=["k"]))


def test_the_report_counts_writes_by_kind_and_the_engines_stamps_by_reason() -> None:
    def write(kind: str, style: str) -> Write:
        return Write(
            Operation(CN, 0.0, kind, "user#1", "profile", {}, style=style), None, {}, None, 100.0, 100.1
        )

    writes = [
        write(PUT, DECIMAL_TIME),
        write(PUT, UNVERSIONED),
        write(UPDATE, UNVERSIONED),
        write(UPDATE, UNVERSIONED),
        write(PUT, STRING_TIMESTAMP),
        write(UPDATE, EPOCH_MILLISECONDS),
        _write(US, "100.3"),
    ]
    forwarder = {"ChangesStamped": 9, "InvalidVersionsStamped": 1, "VersionsAheadStamped": 2}
    report = build_report(
        sides=[CN, US],
        peers={CN: US, US: CN},
        options=LoadOptions(operations=7, rate=1),
        load=LoadResult(writes, 100.0, 102.0),
        runner_summary={CN: {"forwarder": {"metrics": forwarder}}},
        inbox={},
        lags=[],
        verification=Verification({CN: 1, US: 1}, [], [], {CN: 0, US: 0}, 0, 1),
        timings={},
        drained_at=104.0,
    )
    assert report["sides"][CN]["writes_by_kind"] == {
        "versioned": 0,
        "decimal_time": 1,
        "unversioned_put": 1,
        "unversioned_update": 2,
        "invalid_version": 2,
        "delete": 0,
    }
    assert report["totals"]["writes_by_kind"]["versioned"] == 1  # us-east-1's
    assert report["sides"][CN]["stamped_by_reason"] == {
        "absent_or_not_newer": 6,  # ChangesStamped less the reasons with a metric of their own
        "invalid_version": 1,
        "version_ahead": 2,
        "reserved_attribute": 0,
    }
    assert report["totals"]["stamped_by_reason"]["version_ahead"] == 2
    text = render(report)
    for label in (
        "PutItem without a version",
        "UpdateItem of 1 field",
        "Decimal(time.time())",
        "beyond the clock",
    ):
        assert label in text


def test_both_lag_figures_say_what_they_measure() -> None:
    report = _report()
    report["runner"][US]["replicator"]["ReplicationLatency_ms"] = {
        "samples": 2,
        "p50": 1680.0,
        "p99": 3400.0,
        "max": 3580.0,
    }
    text = render(report)
    assert "from the origin write's acknowledgement to the version's first sight" in text
    assert "the version timestamp, which the writer takes before its put" in text
    assert "applied in us-east-1: p50 1.68  p99 3.40  max 3.58  (2 samples)" in text
    assert report["lag_seconds"]["engine_metric_definition"].startswith("from the version timestamp")


def _display_points(axes) -> list[tuple[float, float]]:
    points = [tuple(xy) for collection in axes.collections for xy in collection.get_offsets()]
    points += [(patch.get_x() + patch.get_width() / 2, patch.get_height()) for patch in axes.patches]
    return [tuple(axes.transData.transform(point)) for point in points]


def test_the_lag_plot_keeps_its_legends_off_the_data_and_marks_the_maximum() -> None:
    import matplotlib.pyplot as plt

    from replication_ops.local.plot import lag_figure

    samples = [LagSample(100.0 + n / 10, 1 + (n % 7) / 10, CN if n % 2 else US) for n in range(200)]
    samples.append(LagSample(105.0, 3.58, CN))  # the slowest change, where a legend used to sit
    figure = lag_figure({"profiles": samples, "events": samples})
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        for axes in figure.axes:
            legend = axes.get_legend().get_window_extent(renderer)
            inside = [p for p in _display_points(axes) if legend.contains(*p)]
            assert not inside, f"{axes.get_title()}: the legend covers {len(inside)} data points"
            assert any("max 3.58 s" in text.get_text() for text in axes.get_legend().get_texts())
    finally:
        plt.close(figure)


def test_report_json_and_plot_are_written(tmp_path: Path) -> None:
    report = _report()
    write_report(report, tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["converged"] is True
    image = plot_lag(
        {"profiles": [LagSample(100.0 + n / 10, 1 + (n % 7) / 10, CN if n % 2 else US) for n in range(200)]},
        tmp_path / "lag.png",
    )
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = plot_lag({"profiles": []}, tmp_path / "empty.png")
    assert empty.stat().st_size > 0


def test_the_command_line_has_help_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "--operations", "50", "--rate", "5", "--conflict-share", "0.2"])
    assert (args.operations, args.rate, args.conflict_share) == (50, 5.0, 0.2)
    assert parser.parse_args(["up"]).cn_port != 0
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--conflict-share", "2"])
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--help"])
    assert "--operations" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["demo", "--update-share", "0.9", "--delete-share", "0.5"])
    assert refused.value.code == 2


def test_environment_description_names_both_sides() -> None:
    document = {
        "sides": {
            side: {
                "endpoint_url": f"http://127.0.0.1:{port}",
                "region": side,
                "aws_access_key_id": "AKIA",
                "aws_secret_access_key": "s",
                "table": "user-profiles",
            }
            for side, port in ((CN, 1), (US, 2))
        },
        "version_attributes": {"timestamp": "last_update_timestamp", "origin": "last_updater_region"},
    }
    text = describe_environment(document)
    assert "http://127.0.0.1:1" in text and "http://127.0.0.1:2" in text and "put-item" in text
    assert "Roles Anywhere" not in text  # access_key mode: no CA to name
    text = describe_environment({**document, "pair_ca_dir": "/b/pair-ca"})
    assert "IAM Roles Anywhere" in text and "/b/pair-ca (ddb-replication credentials/rotate --ca-dir)" in text


def test_a_stale_pid_file_is_not_a_running_server(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.ensure()
    assert running_server(paths) is None
    paths.pid_file.write_text(json.dumps({"pid": os.getpid()}))  # alive, but not our server
    assert running_server(paths) is None
    paths.environment_json.write_text("{}")
    (paths.terraform / "x").mkdir()
    clean(paths)
    assert (
        not paths.pid_file.exists() and not paths.environment_json.exists() and not paths.terraform.exists()
    )


def test_each_table_has_its_own_figures_and_the_top_level_sums_them() -> None:
    def verification(lost: list[str], differing: list[str]) -> Verification:
        return Verification({CN: 3, US: 2}, differing, lost, {CN: 0, US: len(lost)}, 0, 4)

    verifications = {"accounts": verification([], []), "profiles": verification(["k1", "k2"], ["k1"])}
    metrics = {
        CN: {
            "forwarder": {"profiles": {"ChangesForwarded": 5, "ResidencyFiltered": 3, "ResidencyRemovals": 1}}
        },
        US: {"replicator": {"profiles": {"ChangesApplied": 4}, "accounts": {"ChangesApplied": 2}}},
    }
    load = LoadResult([_write(CN, "100.1")], 100.0, 101.0)
    tables = {
        name: table_figures(
            name,
            sides=[CN, US],
            load=load.of_table(name),
            verification=v,
            table_metrics=metrics,
            lags=[LagSample(100.1, 1.0, CN)],
            rules={},
        )
        for name, v in verifications.items()
    }
    profiles = tables["profiles"]
    assert profiles["lag_seconds"] == {"samples": 1, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}
    assert profiles["lost"] == 2 and profiles["items_differing"] == 1 and profiles["items"] == {CN: 3, US: 2}
    assert (
        profiles["sides"][CN]["residency_filtered"] == 3 and profiles["sides"][CN]["residency_removals"] == 1
    )
    assert (
        profiles["sides"][US]["replicated_in"] == 4 and tables["accounts"]["sides"][US]["replicated_in"] == 2
    )
    assert (
        profiles["sides"][CN]["changes_written"] == 1
        and tables["accounts"]["sides"][CN]["changes_written"] == 0
    )
    report = build_report(
        sides=[CN, US],
        peers={CN: US, US: CN},
        options=LoadOptions(operations=2, rate=1),
        load=load,
        runner_summary={},
        inbox={},
        lags=[],
        verification=combined(verifications),
        timings={},
        drained_at=102.0,
        tables=tables,
        residency={"canary": "c", "side": US, "places": {"tables": 2, "function_logs": 1}},
    )
    assert report["lost"] == report["totals"]["lost"] == 2 and report["items_differing"] == 1
    assert report["totals"]["lost"] == sum(t["lost"] for t in report["tables"].values())
    assert report["residency_canary_leaks"] == 3
    text = render(report)
    assert "profiles" in text and "accounts" in text and "FOUND (must be 0)" in text


# The replicators' stage metrics (milliseconds) of two tables, as Runner.stage_lags gives them.
STAGE_VALUES = {
    "profiles": {
        "StreamToForwarderLatency": [700.0, 900.0],
        "ForwarderToInboxLatency": [100.0, 300.0],
        "InboxToApplyLatency": [200.0, 400.0],
        "ReplicationLatency": [1000.0, 1600.0],
    },
    "accounts": {"StreamToForwarderLatency": [500.0], "ReplicationLatency": [800.0]},
}


def test_the_report_gives_each_stage_p50_and_p99_in_seconds_over_all_tables() -> None:
    report = build_report(
        sides=[CN, US],
        peers={CN: US, US: CN},
        options=LoadOptions(operations=2, rate=1),
        load=LoadResult([], 100.0, 101.0),
        runner_summary={},
        inbox={},
        lags=[],
        verification=combined({}),
        timings={},
        drained_at=102.0,
        stage_values=STAGE_VALUES,
    )
    assert report["lag_stages"] == {
        "stream_to_forwarder": {"p50": 0.7, "p99": 0.9},
        "forwarder_to_inbox": {"p50": 0.1, "p99": 0.3},
        "inbox_to_apply": {"p50": 0.2, "p99": 0.4},
        "end_to_end": {"p50": 1.0, "p99": 1.6},
    }


def test_each_table_entry_has_its_own_stages_and_a_stage_without_samples_has_none() -> None:
    figures = table_figures(
        "accounts",
        sides=[CN, US],
        load=LoadResult([], 100.0, 101.0),
        verification=Verification({}, [], [], {}, 0, 0),
        table_metrics={},
        lags=[],
        rules={},
        stage_values=STAGE_VALUES["accounts"],
    )
    assert figures["lag_stages"]["stream_to_forwarder"] == {"p50": 0.5, "p99": 0.5}
    assert figures["lag_stages"]["inbox_to_apply"] == {"p50": None, "p99": None}


def test_the_summary_names_each_stage() -> None:
    report = _report()
    report["lag_stages"] = {
        "stream_to_forwarder": {"p50": 0.7, "p99": 0.9},
        "forwarder_to_inbox": {"p50": 0.1, "p99": 0.3},
        "inbox_to_apply": {"p50": 0.2, "p99": 0.4},
        "end_to_end": {"p50": 1.0, "p99": 1.6},
    }
    text = render(report)
    assert (
        "lag per stage (s, p50 / p99): stream -> forwarder 0.7 / 0.9, forwarder -> inbox 0.1 / 0.3, "
        "inbox -> apply 0.2 / 0.4, end to end 1.0 / 1.6"
    ) in text


def test_the_demos_last_line_gives_the_verdict_the_lag_and_the_report() -> None:
    line = final_line(_report(), Path("build/local/report.json"))
    assert line == (
        "demo passed: CONVERGED (0 lost, 0 items differing); replication lag p50 1.5 s / p99 2.0 s; "
        "report build/local/report.json"
    )


def test_the_demos_last_line_names_every_reason_it_failed() -> None:
    report = _report(lost=["user#1"])
    report["residency_canary_leaks"] = 2
    report["iam"] = {"calls": 10, "denied": ["kinesis:PutRecords by the forwarder"]}
    line = final_line(report, Path("report.json"))
    assert line.startswith(
        "demo FAILED: NOT CONVERGED (1 lost, 0 items differing); residency canary found 2 times; "
        "IAM denied 1 call(s); replication lag p50 "
    )


def test_the_plot_stacks_each_stages_p50_and_marks_end_to_ends_p50_and_p99_beside_it() -> None:
    """Only medians are stacked (p99s of stages do not add up to a p99), in the order a change passes
    the stages; end to end's p50 and p99 are markers on their own row, and the caption says what the
    stack is."""
    import matplotlib.pyplot as plt

    from replication_ops.local.plot import lag_figure

    stages = {
        "stream_to_forwarder": {"p50": 0.7, "p99": 0.9},
        "forwarder_to_inbox": {"p50": 0.1, "p99": 0.3},
        "inbox_to_apply": {"p50": 0.2, "p99": 0.4},
        "end_to_end": {"p50": 1.1, "p99": 1.6},
    }
    figure = lag_figure({"profiles": [LagSample(100.0, 1.0, CN)]}, stages={"profiles": stages})
    try:
        breakdown = figure.axes[2]
        bars = [(round(p.get_x(), 3), round(p.get_width(), 3)) for p in breakdown.patches]
        assert bars == [(0.0, 0.7), (0.7, 0.1), (0.8, 0.2)]  # each starting where the one before ended
        stack_row = {round(p.get_y() + p.get_height() / 2, 3) for p in breakdown.patches}
        marks = {
            line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in breakdown.get_lines()
            if line.get_marker() not in ("None", None, "")
        }
        assert marks == {"end to end p50 1.1 s": ([1.1], [0]), "end to end p99 1.6 s": ([1.6], [0])}
        assert stack_row == {1.0}  # the stack's own row, above end to end's
        labels = [t.get_text() for t in breakdown.get_legend().get_texts()]
        assert labels == [
            "stream -> forwarder",
            "forwarder -> inbox",
            "inbox -> apply",
            "end to end p50 1.1 s",
            "end to end p99 1.6 s",
        ]
        assert "each stage's median (p50)" in breakdown.get_xlabel()
    finally:
        plt.close(figure)
