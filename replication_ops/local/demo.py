"""``make demo``: start the partitions, deploy, load both sides, wait for idle, verify, report, tear down."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from replication.residency import ResidencyRules
from replication_ops.local.aws import SideClients
from replication_ops.local.config import (
    ORIGIN_ATTRIBUTE,
    SIDE_NAMES,
    SIDES,
    TIMESTAMP_ATTRIBUTE,
    DemoTable,
    SetupError,
)
from replication_ops.local.environment import EnvironmentOptions, LocalEnvironment
from replication_ops.local.loadgen import RESTRICTED_SIDE, LoadGenerator, LoadOptions, LoadResult, plan
from replication_ops.local.plot import plot_lag
from replication_ops.local.quiescence import wait_quiescent
from replication_ops.local.report import (
    build_report,
    failures,
    final_line,
    render,
    table_figures,
    write_report,
)
from replication_ops.local.residency_check import (
    all_items,
    canary_places,
    deployed_rules,
    log_lines_with,
    queue_bodies,
    stream_records,
)
from replication_ops.local.verify import LagSample, Verification, combined, lag_samples, scan_table, verify
from replication_ops.local.watcher import Observations, table_stream_observer

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    environment: EnvironmentOptions = field(default_factory=EnvironmentOptions)
    load: LoadOptions = field(default_factory=LoadOptions)
    drain_timeout: float = 180.0
    progress: bool = True
    destroy: bool = False  # terraform destroy before stopping (slower; proves the roots destroy cleanly)
    # The module's latency_profile on both sides ("standard" or "low_latency"): a Terraform variable
    # like any other; the pollers then follow the mappings Terraform made (event_sources.py).
    latency_profile: str = "standard"


@dataclass
class DemoResult:
    report: dict[str, Any]
    exit_code: int


class _Interrupted(KeyboardInterrupt):
    pass


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise _Interrupted(f"signal {signum}")


def _with_profile(environment: EnvironmentOptions, latency_profile: str) -> EnvironmentOptions:
    """The environment with ``latency_profile`` among each side's Terraform variables."""
    variables = {
        side: {"latency_profile": latency_profile, **environment.terraform_variables.get(side, {})}
        for side in SIDE_NAMES
    }
    return replace(environment, terraform_variables=variables)


def run_demo(options: DemoOptions, say: Callable[[str], None] = print) -> DemoResult:
    """The whole demo; tears everything down whatever happens (Ctrl-C and SIGTERM included)."""
    from replication_ops.local.daemon import running_server

    server = running_server(options.environment.paths)
    if server:
        raise SetupError(
            f"`make up` runs in {options.environment.paths.base} (pid {server}): `make down` first "
            "(or give the demo another --build-dir)"
        )
    environment = LocalEnvironment(_with_profile(options.environment, options.latency_profile), say=say)
    environment.preflight()  # a missing prerequisite is one line, before anything starts
    previous = signal.getsignal(signal.SIGTERM)
    in_main = _in_main_thread()
    previous_int = signal.getsignal(signal.SIGINT)
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started ignoring it
    began = time.monotonic()
    try:
        environment.start()
        result = _load_and_verify(environment, options, began, say)
    finally:
        if options.destroy:
            try:
                environment.destroy()
            except Exception as error:
                say(f"terraform destroy failed: {error}")
        say("tearing down (workers, partitions)")
        environment.stop()
        options.environment.paths.environment_json.unlink(missing_ok=True)  # it described this run
        if in_main:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    say(final_line(result.report, options.environment.paths.report_json))  # the result, seen last
    return result


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _load_and_verify(
    environment: LocalEnvironment,
    options: DemoOptions,
    began: float,
    say: Callable[[str], None],
) -> DemoResult:
    runner = environment.runner
    assert runner is not None
    paths = options.environment.paths
    tables = options.environment.tables
    clients = {side: SideClients(environment.partitions[side].endpoint_url, side) for side in SIDE_NAMES}
    observations = _observe(runner)

    load_options = options.load
    say(
        f"load: {load_options.operations} operations per side at {load_options.rate:g}/s over the tables "
        f"{', '.join(t.name for t in tables)} in turn ({load_options.conflict_share:.0%} conflicting), both "
        f"sides at once; own-key upserts {load_options.unversioned_share:.0%} unversioned, "
        f"{load_options.decimal_time_share:.0%} Decimal(time.time()), "
        f"{load_options.invalid_version_share:.0%} invalid versions"
    )
    generator = LoadGenerator(
        {side: clients[side].dynamodb for side in SIDE_NAMES},
        {table.name: environment.table(SIDE_NAMES[0], table.name) for table in tables},
        load_options,
        progress=options.progress,
    )
    load = generator.run(plan(load_options, tables))
    # How busy the machine was, the 1, 5 and 15 minutes to the load's end: lag figures are the
    # profiles' only on a quiet machine (README, "Latency profiles").
    load_average = [round(figure, 2) for figure in os.getloadavg()]
    errors = sum(1 for w in load.writes if w.error)
    if errors:
        say(f"  {errors} writes failed (their keys are left out of the oracle)")

    say("waiting until replication is idle (every stream and inbox drained, no invocation in flight)")

    def sources() -> list[Any]:
        runner.check_health()  # a poller stopped, or the observations failed
        return runner.consumers()

    def describe() -> str:
        busy = [
            f"{c.config.function_arn.split(':')[6]}:{c.shard_id}"
            for c in runner.consumers()
            if not c.snapshot()[0]
        ]
        return f"busy pollers: {busy or 'none'}"

    waited = wait_quiescent(
        sources, timeout=options.drain_timeout, refresh=runner.refresh_shards, describe=describe
    )
    drained_at = time.time()
    say(f"  idle {waited:.1f} s after the load ended")

    scanned = {
        table.name: {
            side: scan_table(clients[side].dynamodb, environment.table(side, table.name), table.key_names)
            for side in SIDE_NAMES
        }
        for table in tables
    }
    rules = {  # what leaves each side, as deployed (the residency switch decides)
        side: deployed_rules(runner.function_environment(side, "forwarder"), side, clients[side].ssm)
        for side in SIDE_NAMES
    }
    residency = _residency_check(environment, clients, load_options.canary)
    runner.stop()  # workers exit, their last log lines (EMF metrics) are read
    logs = paths.logs.glob("lambda-*.log")
    residency["places"]["function_logs"] = log_lines_with(load_options.canary, logs)
    iam = environment.iam_record()
    peers = {side: SIDES[side].peer for side in SIDE_NAMES}
    verifications, lags_by_table, figures = _verify_tables(
        tables, scanned=scanned, load=load, observations=observations, rules=rules, runner=runner
    )
    verification = combined(verifications)
    lags = sorted((s for samples in lags_by_table.values() for s in samples), key=lambda s: s.written_at)
    timings = dict(environment.timings)
    timings["total_until_verified"] = round(time.monotonic() - began, 2)
    report = build_report(
        sides=list(SIDE_NAMES),
        peers=peers,
        options=load_options,
        load=load,
        runner_summary=runner.summary(),
        inbox={side: runner.inbox_totals(side) for side in SIDE_NAMES},
        lags=lags,
        verification=verification,
        timings=timings,
        drained_at=drained_at,
        settings={
            "inbox_shards": options.environment.inbox_shards,
            "max_concurrency": options.environment.max_concurrency,
            "residency_rules_deployed": options.environment.residency_rules,
            "latency_profile": options.latency_profile,
            "peer_writer_authentication": options.environment.peer_writer_authentication,
            "terraform_variables_not_in_roots": environment.missing_variables,
        },
        tables=figures,
        residency=residency,
        stage_values=runner.stage_lags(),
    )
    report["machine"] = {"cpus": os.cpu_count(), "load_average_at_load_end": load_average}
    if iam is not None:
        iam.write(paths.iam_json)
        report["iam"] = iam.summary()
    for slow in report["lag_seconds"]["slowest"][:2]:  # what the streams showed, for a look at outliers
        slow["streams"] = {side: observations[side].history.get(slow["key"], []) for side in SIDE_NAMES}
    write_report(report, paths.report_json)
    plot = plot_lag(
        lags_by_table, paths.base / "lag.png", stages={name: f["lag_stages"] for name, f in figures.items()}
    )
    say("")
    say(render(report))
    say(f"report: {paths.report_json}   plot: {plot}   logs: {paths.logs}")
    for example in verification.examples:
        say(f"  mismatch: {example}")
    _say_iam(report, paths.iam_json, say)
    return DemoResult(report, 1 if failures(report) else 0)


def _observe(runner: Any) -> dict[str, Observations]:
    """Every table stream's records as its poller reads them, from now on (before any load). One
    ``Observations`` per side for all its tables: the demo's tables have different key attributes, so a
    key string names one item of one table."""
    observations = {side: Observations(side) for side in SIDE_NAMES}
    runner.observe_table_streams(
        table_stream_observer(
            observations, timestamp_attribute=TIMESTAMP_ATTRIBUTE, origin_attribute=ORIGIN_ATTRIBUTE
        )
    )
    return observations


def _verify_tables(
    tables: tuple[DemoTable, ...],
    *,
    scanned: dict[str, dict[str, dict[str, dict]]],
    load: LoadResult,
    observations: dict[str, Observations],
    rules: dict[str, dict[str, ResidencyRules]],
    runner: Any,
) -> tuple[dict[str, Verification], dict[str, list[LagSample]], dict[str, Any]]:
    """Each table against the oracle with the residency rules deployed for it: its verification, lag
    samples and report entry."""
    peers = {side: SIDES[side].peer for side in SIDE_NAMES}
    verifications, lags, figures = {}, {}, {}
    for table in tables:
        table_load = load.of_table(table.name)
        table_rules = {side: rules[side][table.name] for side in SIDE_NAMES}
        lags[table.name] = lag_samples(table_load, observations, peers)
        verifications[table.name] = verify(scanned[table.name], table_load, observations, table_rules)
        figures[table.name] = table_figures(
            table.name,
            sides=list(SIDE_NAMES),
            load=table_load,
            verification=verifications[table.name],
            table_metrics=runner.table_metrics(),
            lags=lags[table.name],
            stage_values=runner.stage_lags().get(table.name, {}),
            rules={
                side: {"export_filter": r.export_filter, "excluded_attributes": sorted(r.excluded_attributes)}
                for side, r in table_rules.items()
                if r.restricts
            },
        )
    return verifications, lags, figures


def _residency_check(
    environment: LocalEnvironment, clients: dict[str, SideClients], canary: str
) -> dict[str, Any]:
    """Where the canary written on cn-north-1 was found on the us side (``residency_check``); the
    function logs are counted again once the workers have stopped (their last lines)."""
    us = SIDES[RESTRICTED_SIDE].peer
    outputs = environment.roots[us].outputs
    places = canary_places(
        canary,
        tables=all_items(clients[us].dynamodb),
        inbox_records=stream_records(clients[us].kinesis, outputs["inbox_stream_name"]),
        logs=[],
        failure_messages=queue_bodies(clients[us].sqs, outputs["failure_queue_url"]),
    )
    return {"canary": canary, "side": us, "places": places}


def _say_iam(report: dict[str, Any], path: Any, say: Callable[[str], None]) -> None:
    """The IAM line of the demo (when enforced) and each call a policy denied."""
    if "iam" not in report:
        return
    denied: list[str] = report["iam"]["denied"]
    calls = report["iam"]["calls"]
    say(f"IAM enforced: {calls:,} calls authorized by the callers' policies, {len(denied)} denied ({path})")
    for line in denied:
        say(f"  denied: {line}")
