"""Handler worker processes: warm reuse, timeouts, crashes, init errors, logs and EMF metrics."""

from __future__ import annotations

import os
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from replication.telemetry import MetricUnit, table_metrics
from replication_ops.local.runner import extract
from replication_ops.local.workers import FunctionRuntime, MetricTotals

from .conftest import write_fake_zip

HANDLER = textwrap.dedent(
    """
    import json, os, sys, time
    import replication
    started = time.time()
    calls = []

    def handler(event, context):
        calls.append(1)
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("crash"):
            os._exit(3)
        if event.get("raise"):
            raise KeyError("missing")
        metrics = [{"Name": "Seen", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}]
        print(json.dumps({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [
              {"Namespace": "N", "Dimensions": [[]], "Metrics": metrics}]},
              "Seen": len(event["Records"]), "Latency": [1.0, 2.0]}))
        return {"warm_calls": len(calls), "pid": os.getpid(), "region": os.environ["AWS_REGION"],
                "remaining": context.get_remaining_time_in_millis(), "request": context.aws_request_id,
                "memory": context.memory_limit_in_mb, "arn": context.invoked_function_arn,
                "engine": replication.__file__, "stdin": sys.stdin.read()}
    """
)


def runtime(tmp_path: Path, handler: str = HANDLER, timeout: float = 5.0) -> FunctionRuntime:
    code = tmp_path / "code"
    extract(write_fake_zip(tmp_path / "fn.zip", handler), code)
    env = {
        "PATH": os.environ["PATH"],
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(code),
        "_HANDLER": "app.handler",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "_LOCAL_FUNCTION_ARN": "arn:aws:lambda:us-east-1:1:function:f",
    }
    return FunctionRuntime(
        name="f",
        function_arn="arn:aws:lambda:us-east-1:1:function:f",
        code_dir=code,
        env=env,
        timeout=timeout,
        log_path=tmp_path / "f.log",
        max_concurrency=1,
    )


def test_a_worker_serves_warm_invocations_with_lambdas_context(tmp_path: Path) -> None:
    function = runtime(tmp_path)
    try:
        worker = function.start()
        assert worker.modules["replication"].startswith(str(function.code_dir))  # the zip's, not the repo's
        first = function.invoke({"Records": [1, 2, 3]})
        second = function.invoke({"Records": [4]})
        assert first.function_error is None and second.function_error is None
        assert (first.payload["warm_calls"], second.payload["warm_calls"]) == (1, 2)
        assert first.payload["pid"] == second.payload["pid"]
        assert first.payload["region"] == "us-east-1"
        assert 0 < first.payload["remaining"] <= 5000
        assert first.payload["memory"] == 256
        assert first.payload["arn"].endswith(":function:f")
        assert first.payload["request"] != second.payload["request"]
        assert first.payload["stdin"] == ""  # the protocol is out of the handler's reach
    finally:
        function.close()
    assert function.metrics.total("Seen") == 4
    assert function.metrics.values["Latency"] == [1.0, 2.0, 1.0, 2.0]
    log = (tmp_path / "f.log").read_text()
    assert "START RequestId" in log and "REPORT RequestId" in log and '"_aws"' in log


def test_an_exception_is_a_function_error_and_the_worker_stays_warm(tmp_path: Path) -> None:
    function = runtime(tmp_path)
    try:
        failed = function.invoke({"Records": [], "raise": True})
        assert failed.function_error == "Unhandled"
        assert failed.error is not None and failed.error["errorType"] == "KeyError"
        assert function.invoke({"Records": []}).payload["warm_calls"] == 2
        assert function.cold_starts == 1
    finally:
        function.close()
    assert '"errorType": "KeyError"' in (tmp_path / "f.log").read_text()


def test_a_timeout_kills_the_worker_and_the_next_call_starts_cold(tmp_path: Path) -> None:
    function = runtime(tmp_path, timeout=1.0)
    try:
        timed_out = function.invoke({"Records": [], "sleep": 5})
        assert timed_out.timed_out and timed_out.function_error == "Unhandled"
        assert "timed out" in timed_out.error["errorMessage"]
        again = function.invoke({"Records": []})
        assert again.payload["warm_calls"] == 1
        assert function.cold_starts == 2
    finally:
        function.close()


def test_a_crash_is_a_function_error(tmp_path: Path) -> None:
    function = runtime(tmp_path)
    try:
        crashed = function.invoke({"Records": [], "crash": True})
        assert crashed.function_error == "Unhandled"
        assert function.invoke({"Records": []}).function_error is None
    finally:
        function.close()


def test_an_init_error_is_reported_and_fails_invocations(tmp_path: Path) -> None:
    function = runtime(tmp_path, handler="raise ImportError('no such module: settings')\n")
    try:
        worker = function.start()
        assert worker.init_error is not None and "no such module" in worker.init_error["errorMessage"]
        result = function.invoke({"Records": []})
        assert result.function_error == "Unhandled"
    finally:
        function.close()


@pytest.mark.parametrize(
    ("line", "counted"),
    [
        ('{"_aws": {"CloudWatchMetrics": [{"Metrics": [{"Name": "A"}]}]}, "A": 2}', True),
        ('{"_aws": {"CloudWatchMetrics": [{"Metrics": [{"Name": "A"}]}]}, "A": [1, 2]}', True),
        ('{"level": "INFO", "message": "batch applied"}', False),
        ("START RequestId: 1", False),
        ('{"_aws": broken', False),
    ],
)
def test_emf_lines_are_recognised(line: str, counted: bool) -> None:
    totals = MetricTotals()
    assert (totals.add_line(line) is not None) is counted
    assert (totals.total("A") > 0) is counted


def test_extract_replaces_what_was_there(tmp_path: Path) -> None:
    target = tmp_path / "code"
    target.mkdir()
    (target / "stale.py").write_text("x")
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.py", "")
    extract(archive, target)
    assert sorted(p.name for p in target.iterdir()) == ["app.py"]


def _emf_lines(capsys: pytest.CaptureFixture[str], emit: Callable[[], None]) -> list[str]:
    emit()
    return [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_metric_totals_count_an_endpoint_total_once_and_each_table_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The engine emits ConfigurationErrors per table and as the endpoint's total; the totals are
    the endpoint's figure (what its alarm watches), a per-table-only metric is summed over tables."""

    def emit() -> None:
        for name, applied in (("orders", 3), ("users", 4)):
            table = table_metrics(name)
            table.add_metric("ChangesApplied", MetricUnit.Count, applied)
            table.add_metric("ConfigurationErrors", MetricUnit.Count, 1)
            table.flush_metrics()
        endpoint = EphemeralMetrics(namespace="test", service="replicator")
        endpoint.add_metric("ConfigurationErrors", MetricUnit.Count, 2)
        endpoint.flush_metrics()

    totals = MetricTotals()
    for line in _emf_lines(capsys, emit):
        assert totals.add_line(line) is not None
    assert totals.total("ConfigurationErrors") == 2
    assert totals.total("ChangesApplied") == 7
    assert totals.by_table() == {
        "orders": {"ChangesApplied": 3, "ConfigurationErrors": 1},
        "users": {"ChangesApplied": 4, "ConfigurationErrors": 1},
    }


def test_metric_totals_keep_each_tables_values_of_a_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    """The replicators' lag metrics are distributions: the local report takes their percentiles
    per table, from the values the EMF documents carry (Powertools writes several as a list)."""

    def emit() -> None:
        for name, values in (("orders", (120.0, 80.0)), ("users", (300.0,))):
            table = table_metrics(name)
            for value in values:
                table.add_metric("InboxToApplyLatency", MetricUnit.Milliseconds, value)
            table.add_metric("ChangesApplied", MetricUnit.Count, len(values))
            table.flush_metrics()

    totals = MetricTotals()
    for line in _emf_lines(capsys, emit):
        totals.add_line(line)
    assert totals.values_by_table(("InboxToApplyLatency",)) == {
        "orders": {"InboxToApplyLatency": [120.0, 80.0]},
        "users": {"InboxToApplyLatency": [300.0]},
    }
