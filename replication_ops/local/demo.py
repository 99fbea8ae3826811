"""``make demo``: start the partitions, deploy, load both sides, wait for idle, verify, report, tear down."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replication_ops.local.aws import SideClients
from replication_ops.local.config import ORIGIN_ATTRIBUTE, SIDE_NAMES, SIDES, TIMESTAMP_ATTRIBUTE, SetupError
from replication_ops.local.environment import EnvironmentOptions, LocalEnvironment
from replication_ops.local.loadgen import LoadGenerator, LoadOptions
from replication_ops.local.plot import plot_lag
from replication_ops.local.quiescence import wait_quiescent
from replication_ops.local.report import build_report, render, write_report
from replication_ops.local.verify import lag_samples, scan_table, verify
from replication_ops.local.watcher import Observations, StreamWatcher

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    environment: EnvironmentOptions = field(default_factory=EnvironmentOptions)
    load: LoadOptions = field(default_factory=LoadOptions)
    drain_timeout: float = 180.0
    progress: bool = True
    destroy: bool = False  # terraform destroy before stopping (slower; proves the roots destroy cleanly)


@dataclass
class DemoResult:
    report: dict[str, Any]
    exit_code: int


class _Interrupted(KeyboardInterrupt):
    pass


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise _Interrupted(f"signal {signum}")


def run_demo(options: DemoOptions, say: Callable[[str], None] = print) -> DemoResult:
    """The whole demo; tears everything down whatever happens (Ctrl-C and SIGTERM included)."""
    from replication_ops.local.daemon import running_server

    server = running_server(options.environment.paths)
    if server:
        raise SetupError(
            f"`make up` runs in {options.environment.paths.base} (pid {server}): `make down` first "
            "(or give the demo another --build-dir)"
        )
    environment = LocalEnvironment(options.environment, say=say)
    environment.preflight()  # a missing prerequisite is one line, before anything starts
    previous = signal.getsignal(signal.SIGTERM)
    in_main = _in_main_thread()
    previous_int = signal.getsignal(signal.SIGINT)
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started ignoring it
    watchers: list[StreamWatcher] = []
    began = time.monotonic()
    try:
        environment.start()
        return _load_and_verify(environment, options, watchers, began, say)
    finally:
        for watcher in watchers:
            watcher.stop()
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


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _load_and_verify(
    environment: LocalEnvironment,
    options: DemoOptions,
    watchers: list[StreamWatcher],
    began: float,
    say: Callable[[str], None],
) -> DemoResult:
    runner = environment.runner
    assert runner is not None
    paths = options.environment.paths
    observations = {side: Observations(side) for side in SIDE_NAMES}
    clients = {side: SideClients(environment.partitions[side].endpoint_url, side) for side in SIDE_NAMES}
    for side in SIDE_NAMES:
        table = environment.table(side)
        stream_arn = clients[side].dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        watcher = StreamWatcher(
            clients[side],
            stream_arn,
            observations[side],
            timestamp_attribute=TIMESTAMP_ATTRIBUTE,
            origin_attribute=ORIGIN_ATTRIBUTE,
        )
        watcher.start()
        watchers.append(watcher)

    load_options = options.load
    say(
        f"load: {load_options.operations} operations per side at {load_options.rate:g}/s "
        f"({load_options.conflict_share:.0%} conflicting), both sides at once; own-key upserts "
        f"{load_options.unversioned_share:.0%} unversioned, {load_options.decimal_time_share:.0%} "
        f"Decimal(time.time()), {load_options.invalid_version_share:.0%} invalid versions"
    )
    generator = LoadGenerator(
        {side: clients[side].dynamodb for side in SIDE_NAMES},
        environment.table(SIDE_NAMES[0]),
        load_options,
        progress=options.progress,
    )
    load = generator.run()
    errors = sum(1 for w in load.writes if w.error)
    if errors:
        say(f"  {errors} writes failed (their keys are left out of the oracle)")

    say("waiting until replication is idle (every stream and inbox drained, no invocation in flight)")

    def sources() -> list[Any]:
        runner.check_health()
        for watcher in watchers:
            if watcher.error:
                raise RuntimeError(f"a stream watcher failed: {watcher.error}")
        return [*runner.consumers(), *(view for watcher in watchers for view in watcher.sources())]

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

    tables = {side: scan_table(clients[side].dynamodb, environment.table(side)) for side in SIDE_NAMES}
    runner.stop()  # workers exit, their last log lines (EMF metrics) are read
    iam = environment.iam_record()
    verification = verify(tables, load, observations)
    peers = {side: SIDES[side].peer for side in SIDE_NAMES}
    lags = lag_samples(load, observations, peers)
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
            "terraform_variables_not_in_roots": environment.missing_variables,
        },
    )
    if iam is not None:
        iam.write(paths.iam_json)
        report["iam"] = iam.summary()
    for slow in report["lag_seconds"]["slowest"][:2]:  # what the streams showed, for a look at outliers
        slow["streams"] = {side: observations[side].history.get(slow["key"], []) for side in SIDE_NAMES}
    write_report(report, paths.report_json)
    plot = plot_lag(lags, paths.base / "lag.png")
    say("")
    say(render(report))
    say(f"report: {paths.report_json}   plot: {plot}   logs: {paths.logs}")
    if verification.examples:
        for example in verification.examples:
            say(f"  mismatch: {example}")
    denied = _say_iam(report, paths.iam_json, say)
    return DemoResult(report, 0 if report["converged"] and not denied else 1)


def _say_iam(report: dict[str, Any], path: Any, say: Callable[[str], None]) -> list[str]:
    """The IAM line of the demo (when enforced); the calls a policy denied."""
    if "iam" not in report:
        return []
    denied: list[str] = report["iam"]["denied"]
    calls = report["iam"]["calls"]
    say(f"IAM enforced: {calls:,} calls authorized by the callers' policies, {len(denied)} denied ({path})")
    for line in denied:
        say(f"  denied: {line}")
    return denied
