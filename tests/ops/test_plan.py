"""``ddb-replication plan``: the cost model checked against what the real code does.

- The DynamoDB capacity per change kind (replication_ops.planning.PROTOCOL, priced by capacity.py)
  against scripts/bench_capacity.py's ``capacity_of_kind``, which runs both sides' real engine on
  in-process moto with every call metered (run here at one change per kind, not read from a file).
- The module's settings the plan uses against modules/replication_endpoint/variables.tf.
- The price table's checks and the command's errors (exit 2, one line) and output.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from replication.limits import item_size
from replication_ops import planning, prices
from replication_ops.cli import main
from replication_ops.errors import ConfigError
from tests.terraform.hcl_blocks import attributes, blocks

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "modules" / "replication_endpoint"


def _bench_capacity() -> Any:
    spec = importlib.util.spec_from_file_location("bench_capacity", ROOT / "scripts" / "bench_capacity.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_capacity() -> Any:
    from replication_ops.local import moto_fidelity

    moto_fidelity.apply()
    return _bench_capacity()


@pytest.mark.parametrize("size", [300, 4000])
@pytest.mark.parametrize("kind", planning.KINDS)
def test_the_plans_capacity_per_change_kind_is_what_the_engine_consumes(
    bench_capacity: Any, kind: str, size: int
) -> None:
    measured = bench_capacity.capacity_of_kind(kind, size)
    key, attributes_ = bench_capacity.item_of(0, size)
    version = {
        bench_capacity.NAMES.timestamp: {"N": "1764200000.123"},
        bench_capacity.NAMES.origin: {"S": "cn-north-1"},
    }
    item_bytes = item_size({**key, **attributes_, **version})
    modelled = planning.capacity_of_kind(kind, item_bytes, item_size(key))
    assert modelled["origin"]["wcu"] + modelled["peer"]["wcu"] == measured["wcu"], measured["calls"]
    assert modelled["origin"]["rcu"] + modelled["peer"]["rcu"] == measured["rcu"], measured["calls"]


@functools.cache
def _module_defaults() -> dict[str, str]:
    """Each variable's raw default in the module's variables.tf (read once: the HCL reader is slow)."""
    found = {}
    for block in blocks((MODULE / "variables.tf").read_text(), "variable"):
        default = attributes(block.body).get("default")
        if default is not None:
            found[block.labels[0]] = default.strip('"')
    return found


def _module_default(name: str) -> str:
    return _module_defaults()[name]


@pytest.mark.parametrize("name", sorted(planning.MODULE_DEFAULTS))
def test_the_plan_uses_the_modules_defaults(name: str) -> None:
    assert str(planning.MODULE_DEFAULTS[name]) == _module_default(name)


def test_the_forwarders_batching_window_is_the_profiles_as_the_module_sets_it() -> None:
    lambda_tf = (MODULE / "lambda.tf").read_text()
    assert _module_default("forwarder_batching_window_seconds") == "null"
    expected = "coalesce(var.forwarder_batching_window_seconds, local.low_latency ? 0 : 1)"
    assert expected in lambda_tf
    assert planning.PROFILE_BATCHING_WINDOW == {"standard": 1, "low_latency": 0}


def _load(**changes: Any) -> planning.Load:
    base: dict[str, Any] = {"rates": {"cn": 40.0, "us": 40.0}, "item_bytes": 300}
    return planning.Load(**{**base, **changes})


def _plan(**changes: Any) -> dict[str, Any]:
    figures = planning.Measured({"forwarder": 100.0, "replicator": 600.0}, "test", 0.3, "test")
    return planning.plan(_load(**changes), figures, prices.load())


def test_each_side_adds_the_capacity_of_its_own_changes_as_origin_and_the_peers_as_replica() -> None:
    document = _plan(rates={"cn": 10.0, "us": 0.0}, mix={"delete": 1.0})
    per_kind = planning.capacity_of_kind("delete", 300, 64)
    assert document["sides"]["cn"]["dynamodb"]["wcu_per_second"] == pytest.approx(
        10 * per_kind["origin"]["wcu"]
    )
    assert document["sides"]["us"]["dynamodb"]["wcu_per_second"] == pytest.approx(
        10 * per_kind["peer"]["wcu"]
    )
    assert document["sides"]["cn"]["dynamodb"]["global_tables_replicated_wcu_per_second"] == 0
    assert document["sides"]["us"]["dynamodb"]["global_tables_replicated_wcu_per_second"] == 10


def test_a_standard_forwarder_batches_a_second_of_changes_and_a_low_latency_one_a_poll() -> None:
    standard = _plan(rates={"cn": 40.0, "us": 0.0}, mix={"update": 1.0})["sides"]["cn"]["forwarder"]
    low = _plan(rates={"cn": 40.0, "us": 0.0}, mix={"update": 1.0}, latency_profile="low_latency")
    assert standard["changes_per_invocation"] == pytest.approx(41)  # the first record, then 1 s of 40/s
    # 4 polls a second: 10 a poll on average, a poll being non-empty almost always
    assert low["sides"]["cn"]["forwarder"]["changes_per_invocation"] == pytest.approx(
        10 / (1 - math.exp(-10)), abs=0.01
    )
    assert low["sides"]["us"]["kinesis"]["efo_consumer_shard_hours_per_month"] == 730


def test_a_record_beyond_the_peers_maximum_is_split() -> None:
    side = _plan(rates={"cn": 400.0, "us": 0.0}, mix={"update": 1.0}, bytes_per_change=4000.0)["sides"]["cn"]
    # 401 changes a batch (1 s at 400/s), 4000 bytes each: 1.6 MB, two records of at most 1 MiB
    assert side["forwarder"]["kinesis_records_per_second"] == pytest.approx(2 * 400 / 401, rel=1e-3)
    assert side["forwarder"]["record_bytes"] <= planning.MODULE_DEFAULTS["peer_max_record_bytes"]


def test_a_missing_price_leaves_the_total_unknown_and_names_the_line() -> None:
    document = _plan()
    cn = document["sides"]["cn"]["cost"]
    assert cn["currency"] == "CNY" and document["sides"]["us"]["cost"]["currency"] == "USD"
    unknown = [name for name, line in cn["lines"].items() if line["price"] is None]
    assert unknown and cn["missing"] == unknown and cn["monthly_total"] is None


def _price_file(tmp_path: Path, change: Any) -> Path:
    document = json.loads(prices.default_path().read_text())
    change(document)
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(document))
    return path


def test_every_price_in_the_table_names_its_page_and_date() -> None:
    table = prices.load()
    for partition in prices.PARTITIONS:
        for price in table.prices[partition].values():
            assert price.source.startswith("https://") and price.read_on
            assert price.value is not None or price.note


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda d: d["partitions"]["aws"]["prices"]["kinesis_shard_hour"].update(value=-1),
            "aws.prices.kinesis_shard_hour.value",
        ),
        (
            lambda d: d["partitions"]["aws"]["prices"]["lambda_request"].update(unit="per request"),
            "aws.prices.lambda_request.unit",
        ),
        (lambda d: d["partitions"]["aws-cn"].update(currency="USD"), "aws-cn.currency"),
        (
            lambda d: d["partitions"]["aws"]["prices"].pop("nat_gateway_data_processed_gb"),
            "aws.prices.nat_gateway_data_processed_gb",
        ),
        (
            lambda d: d["partitions"]["aws"]["prices"]["kinesis_shard_hour"].update(read_on="last week"),
            "kinesis_shard_hour.read_on",
        ),
        (
            lambda d: d["partitions"]["aws"]["prices"]["kinesis_shard_hour"].update(value=None, note=None),
            "kinesis_shard_hour.note",
        ),
    ],
)
def test_a_bad_price_table_is_refused_naming_the_field(tmp_path: Path, change: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        prices.load(_price_file(tmp_path, change))


@pytest.fixture(autouse=True)
def _no_bench_json_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plans use issue 13's figures, whatever make bench left in build/: the tests run in a
    folder with no build/bench.json."""
    monkeypatch.chdir(tmp_path)


ARGS = [
    "plan",
    "--cn-rate",
    "40",
    "--us-rate",
    "40",
    "--item-bytes",
    "300",
]


def test_plan_prints_both_sides_and_global_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ARGS) == 0
    text = capsys.readouterr().out
    assert "cn-north-1 (CNY)" in text and "us-east-1 (USD)" in text and "global tables" in text
    assert "no price in" in text  # the China prices not found are said


def test_plan_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document["sides"]) == {"cn", "us"}
    assert document["measured"]["cpu_source"].startswith("issue 13")


def _exit_code(args: list[str]) -> int:
    """main's return, or argparse's exit code (a bad flag value stops in argparse)."""
    try:
        return main(args)
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--mix", "new=60,updates=40"], "'updates' is not a change kind"),
        (["--mix", "new=0"], "add up to 0"),
        (["--item-bytes", "0"], "--item-bytes"),
        (["--cn-rate", "-5"], "--cn-rate"),
        (["--latency-profile", "fast"], "--latency-profile"),
        (["--item-bytes", "1"], "cannot hold keys of 64 B"),
        (["--cn-rate", "0", "--us-rate", "0"], "both rates are 0"),
        (["--item-bytes", "300", "--key-bytes", "3072"], "cannot hold keys of 3072 B"),
    ],
)
def test_bad_input_is_exit_2_in_one_line(
    capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    assert _exit_code([*ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "no such file"), ("[1, 2]", "not a JSON object"), ("{", "not a bench.json")],
)
def test_a_bench_file_named_but_missing_or_not_a_bench_json_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    path = tmp_path / "figures.json"
    if content is not None:
        path.write_text(content)
    assert _exit_code([*ARGS, "--bench", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "figures",
    [
        {"forwarder_us_per_change_realistic": "fast"},
        {"forwarder_us_per_change_realistic": True},
        {"replicator_us_per_change": -5},
        {"forwarder_us_per_change": float("nan")},
        {"bytes_per_change": 88.7, "average_item_bytes": 0},
        {"bytes_per_change": "x", "average_item_bytes": 292},
    ],
)
def test_a_bench_figure_that_is_not_a_number_of_its_range_is_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], figures: dict[str, Any]
) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(figures))
    assert _exit_code([*ARGS, "--bench", str(path)]) == 2
    err = capsys.readouterr().err
    name = next(n for n, v in figures.items() if not isinstance(v, float) or v != 88.7)
    assert f"{name} is " in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_default_bench_json_gives_the_cpu_figures_when_it_exists(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*ARGS, "--json"]) == 0
    assert "issue 13's measured forwarder figure (no build/bench.json)" in capsys.readouterr().out
    planning.DEFAULT_BENCH.parent.mkdir()
    planning.DEFAULT_BENCH.write_text(json.dumps({"forwarder_us_per_change_realistic": 123.0}))
    assert main([*ARGS, "--json"]) == 0
    text = capsys.readouterr().out
    assert "build/bench.json:forwarder_us_per_change_realistic" in text


def test_a_bad_prices_file_is_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _price_file(
        tmp_path, lambda d: d["partitions"]["aws"]["prices"]["lambda_request"].update(value="cheap")
    )
    assert main([*ARGS, "--prices", str(path)]) == 2
    err = capsys.readouterr().err
    assert "partitions.aws.prices.lambda_request.value" in err and err.count("\n") == 1


def test_plan_help_says_what_it_estimates_and_where_prices_come_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "prices.json" in text and "--cn-rate" in text and "global tables" in text


def _orders_table() -> None:
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_a_sides_rate_is_read_from_the_tables_consumed_write_capacity(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """3,600 write units an hour for 24 hours, items of 2,000 bytes (2 units a write): 0.5 changes/s."""
    with mock_aws():
        _orders_table()
        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for hour in range(1, 25):
            cloudwatch.put_metric_data(
                Namespace="AWS/DynamoDB",
                MetricData=[
                    {
                        "MetricName": "ConsumedWriteCapacityUnits",
                        "Dimensions": [{"Name": "TableName", "Value": "orders"}],
                        "Timestamp": now - dt.timedelta(hours=hour) + dt.timedelta(minutes=30),
                        "Value": 3600.0,
                    }
                ],
            )
        args = [
            "plan",
            "--cn-rate",
            "0",
            "--us-table",
            "orders",
            "--item-bytes",
            "2000",
            "--period-hours",
            "24",
        ]
        assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["inputs"]["changes_per_second"]["us"] == pytest.approx(0.5)
    assert document["read_from_aws"]["us"]["busiest_hour_changes_per_second"] == pytest.approx(0.5)


def test_a_table_that_reports_no_size_yet_needs_item_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        _orders_table()  # moto, like a new table on AWS, reports TableSizeBytes 0
        assert main(["plan", "--cn-rate", "1", "--us-table", "orders"]) == 2
    err = capsys.readouterr().err
    assert "--item-bytes" in err and "six hours" in err and err.count("\n") == 1


def test_an_unknown_table_is_exit_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        assert main(["plan", "--cn-rate", "1", "--us-table", "nope", "--item-bytes", "10"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and err.count("\n") == 1


@pytest.mark.parametrize("kind", planning.KINDS)
def test_the_stream_records_each_side_forwarder_reads_per_change_are_the_plans(
    bench_capacity: Any, kind: str
) -> None:
    """What the forwarder's batches hold (the plan sizes them and its invocations from it): the
    origin's own write (and its stamp), the peer's replicated write (a delete: mark and removal),
    counted on the real engine of both sides."""
    clock = bench_capacity.Clock()
    with bench_capacity.metered_pair() as (pair, _):
        key, attributes_ = bench_capacity.item_of(0, 300)
        if kind != "new":
            pair.china.put(key, attributes_, clock.next())
            pair.settle()
        read = {"origin": 0, "peer": 0}
        for side, role in ((pair.china, "origin"), (pair.us, "peer")):
            process = side.forwarder.process

            def counting(batch: list[Any], process: Any = process, role: str = role) -> Any:
                read[role] += len(batch)
                return process(batch)

            side.forwarder.process = counting  # type: ignore[method-assign]
        bench_capacity.change(pair.china, kind, key, attributes_, clock)
        pair.settle()
    assert read == planning.STREAM_RECORDS[kind]


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, (list, tuple)):
        return [n for item in value for n in _numbers(item)]
    raise AssertionError(f"not JSON: {value!r}")


MIXES = st.dictionaries(st.sampled_from(planning.KINDS), st.floats(0.01, 100), min_size=1).map(
    lambda shares: {kind: share / sum(shares.values()) for kind, share in shares.items()}
)


LOADS = st.builds(
    planning.Load,
    rates=st.fixed_dictionaries({"cn": st.floats(0, 1e5), "us": st.floats(0, 1e5)}),
    item_bytes=st.integers(1, 400 * 1024),
    key_bytes=st.integers(1, 3072),
    mix=MIXES,
    latency_profile=st.sampled_from(sorted(planning.PROFILE_BATCHING_WINDOW)),
    inbox_stream_mode=st.sampled_from(["ON_DEMAND", "PROVISIONED"]),
    inbox_shards=st.integers(1, 64),
    stream_shards=st.integers(1, 64),
    billing_mode=st.sampled_from(["PAY_PER_REQUEST", "PROVISIONED"]),
    bytes_per_change=st.none() | st.floats(1, 400 * 1024),
    forwarder_wait_ms=st.floats(0, 60_000),
    replicator_wait_ms=st.floats(0, 60_000),
)


@given(load=LOADS)
def test_any_load_plans_to_finite_non_negative_figures_and_every_protocol_step_is_counted_once(
    load: planning.Load,
) -> None:
    figures = planning.Measured({"forwarder": 100.0, "replicator": 600.0}, "test", 0.3, "test")
    document = planning.plan(load, figures, prices.load())
    assert all(math.isfinite(n) and n >= 0 for n in _numbers(document))
    per_change = {
        kind: sum(
            step["wcu"] for step in planning.capacity_of_kind(kind, load.item_bytes, load.key_bytes).values()
        )
        for kind in load.mix
    }
    expected = sum(load.rates.values()) * sum(share * per_change[kind] for kind, share in load.mix.items())
    both = sum(document["sides"][side]["dynamodb"]["wcu_per_second"] for side in ("cn", "us"))
    assert both == pytest.approx(expected, rel=1e-6, abs=0.01)


def test_a_reader_that_stops_reading_ends_the_plan_without_a_traceback() -> None:
    """`ddb-replication plan ... | head -1`: the pipe's reader is gone before the plan is printed."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away: the first write gets EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from replication_ops.cli import main; raise SystemExit(main())", *ARGS],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
