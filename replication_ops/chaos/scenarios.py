"""The eight fault scenarios of `make chaos`, each injected where it happens in AWS.

- the network: a ``FaultProxy`` between each side's forwarder and the peer's endpoint (the
  Terraform variable ``peer_endpoint_url`` points at it), and one in front of each replicator's own
  endpoint (the ``AWS_ENDPOINT_URL`` its workers get);
- AWS API responses: the same proxies answer PutRecords with some records rejected and DynamoDB
  calls with ``ThrottlingException``;
- the process: the workers running the real Lambda zips are killed with SIGKILL mid-invocation.

A scenario's ``fault`` runs in a thread beside the load; it returns once the fault is gone and
notes when the fault began and ended. ``after`` runs once the load is done and replication idle
(operations: redrive, cleaning the failure queue); ``check`` returns what did not hold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from replication_ops.chaos.faults import FaultPlan, LinkState

if TYPE_CHECKING:
    from replication_ops.chaos.proxy import FaultProxy
    from replication_ops.chaos.run import ChaosRun

CN, US = "cn-north-1", "us-east-1"
POISON_DATA = b"\x00\x01 not a replication record (chaos: poison message) \xff"
REPLICATOR_DYNAMODB_CALLS = ("PutItem", "TransactWriteItems", "DeleteItem", "UpdateItem", "BatchGetItem")


@dataclass(frozen=True)
class Scale:
    """Durations (seconds) and load of one run: ``full`` for `make chaos`, ``reduced`` for the test."""

    name: str
    load_seconds: float  # per scenario
    rate: float  # operations per second, per side
    outage_seconds: float  # scenario 1: refused, then as long blackholed
    exhaust_seconds: float  # scenario 8: longer than the retry budget
    crash_interval: float  # scenario 5: seconds between kills
    drain_timeout: float

    def operations(self, seconds: float | None = None) -> int:
        return max(10, round((seconds or self.load_seconds) * self.rate))


FULL = Scale("full", load_seconds=45, rate=20, outage_seconds=30, exhaust_seconds=30, crash_interval=2.0,
             drain_timeout=240)  # fmt: skip
REDUCED = Scale("reduced", load_seconds=10, rate=10, outage_seconds=4, exhaust_seconds=14, crash_interval=1.0,
                drain_timeout=150)  # fmt: skip


@dataclass
class Context:
    """One scenario's run: the environment, the load's end, the fault's window, notes."""

    run: ChaosRun
    scale: Scale
    load_done: threading.Event = field(default_factory=threading.Event)
    began: float | None = None
    ended: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    fault_thread: threading.Thread | None = None
    fault_errors: list[BaseException] = field(default_factory=list)

    def fault_on(self) -> None:
        self.began = time.time()

    def fault_off(self) -> None:
        self.ended = time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.failed_checks.append(message)


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    title: str
    fault: Callable[[Context], None]
    after: Callable[[Context], None] | None = None  # once the load is done and replication idle
    before: Callable[[Context], None] | None = None  # before the load starts
    load_seconds: Callable[[Scale], float] | None = None

    def seconds(self, scale: Scale) -> float:
        return self.load_seconds(scale) if self.load_seconds else scale.load_seconds


def _counters(proxies: list[FaultProxy]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for proxy in proxies:
        for name, value in proxy.counters.as_dict().items():
            totals[name] = totals.get(name, 0) + value
    return totals


def _since(proxies: list[FaultProxy], before: dict[str, int]) -> dict[str, int]:
    """What the proxies counted since ``before`` (a ``_counters`` snapshot)."""
    return {name: value - before.get(name, 0) for name, value in _counters(proxies).items()}


def _whole_load(ctx: Context, proxies: list[FaultProxy], plan: Callable[[], FaultPlan]) -> dict[str, int]:
    """Each proxy gets its own ``plan()`` (own random stream) for the whole load, then none;
    returns what the proxies counted meanwhile."""
    before = _counters(proxies)
    for proxy in proxies:
        proxy.plan = plan()
    ctx.fault_on()
    ctx.load_done.wait()
    for proxy in proxies:
        proxy.plan = FaultPlan()
    ctx.fault_off()
    return _since(proxies, before)


# -- 1 peer unreachable ----------------------------------------------------------------------


def peer_unreachable(ctx: Context) -> None:
    """cn-north-1's forwarder cannot reach us-east-1: refused, then blackholed, then healed."""
    link = ctx.run.peer_proxies[CN]
    before = _counters([link])
    ctx.sleep(min(3.0, ctx.scale.load_seconds / 4))
    ctx.fault_on()
    link.set_state(LinkState.REFUSE)
    ctx.sleep(ctx.scale.outage_seconds)
    link.set_state(LinkState.BLACKHOLE)
    ctx.sleep(ctx.scale.outage_seconds)
    link.set_state(LinkState.UP)
    ctx.fault_off()
    ctx.notes["proxy"] = {name: n for name, n in _since([link], before).items() if n}


# -- 2 bad Internet --------------------------------------------------------------------------


def bad_internet(ctx: Context) -> None:
    """Both directions: 300 ms +- 100 ms latency and 5% of requests reset (half of them after the
    peer processed the request: the reply is lost), for the whole load."""
    links = list(ctx.run.peer_proxies.values())
    counted = _whole_load(
        ctx, links, lambda: FaultPlan(latency_ms=300, jitter_ms=100, reset_share=0.05, seed=2)
    )
    for name in ("requests", "resets", "replies_lost"):
        ctx.notes[name] = counted[name]
    # resets are spread evenly, so every 20 requests on a link see one
    ctx.require(counted["resets"] > 0 or counted["requests"] < 2 * 20, "no request was reset")


# -- 3 inbox throttling ----------------------------------------------------------------------


def inbox_throttling(ctx: Context) -> None:
    """Both inboxes reject 30% of PutRecords records as ProvisionedThroughputExceeded."""
    links = list(ctx.run.peer_proxies.values())
    counted = _whole_load(ctx, links, lambda: FaultPlan(throttle={"PutRecords": 0.3}, seed=3))
    ctx.notes["records_rejected"] = counted["throttled_records"]
    ctx.require(ctx.notes["records_rejected"] > 0, "no PutRecords record was rejected")


# -- 4 table throttling on the replicator ----------------------------------------------------


def table_throttling(ctx: Context) -> None:
    """Each replicator's DynamoDB calls: 30% answered with ThrottlingException."""
    proxies = list(ctx.run.replicator_proxies.values())
    throttled = dict.fromkeys(REPLICATOR_DYNAMODB_CALLS, 0.3)
    counted = _whole_load(ctx, proxies, lambda: FaultPlan(throttle=throttled, seed=4))
    ctx.notes["calls_throttled"] = counted["throttled_calls"]
    ctx.require(ctx.notes["calls_throttled"] > 0, "no replicator call was throttled")


# -- 5 crash mid-batch -----------------------------------------------------------------------

# us-east-1's forwarder keeps a finite retry budget for scenario 8; the others retry until the
# records expire, so killing them only causes redeliveries.
CRASH_TARGETS = ((CN, "forwarder"), (CN, "replicator"), (US, "replicator"))


def crash_mid_batch(ctx: Context) -> None:
    """SIGKILL a worker of a forwarder or replicator while it runs an invocation, over and over."""
    rng = random.Random(5)
    kills: dict[str, int] = {}
    ctx.fault_on()
    turn = 0
    while not ctx.load_done.is_set():
        # Round robin, but a function none of whose invocations a kill has failed yet goes first.
        cut_short = _invocations_killed(ctx)
        order = sorted(
            range(len(CRASH_TARGETS)), key=lambda i: (cut_short[i] > 0, (i - turn) % len(CRASH_TARGETS))
        )
        side, kind = CRASH_TARGETS[order[0]]
        turn += 1
        pid = _busy_worker(ctx, side, kind, timeout=3.0)
        if pid is not None:
            time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside the batch
            try:
                os.kill(pid, signal.SIGKILL)
                kills[f"{side}:{kind}"] = kills.get(f"{side}:{kind}", 0) + 1
            except ProcessLookupError:
                pass
        ctx.load_done.wait(ctx.scale.crash_interval)
    ctx.fault_off()
    ctx.notes["kills"] = kills
    ctx.require(sum(kills.values()) > 0, "no worker was killed mid-invocation")


def crash_before(ctx: Context) -> None:
    ctx.notes["_errors_before"] = [ctx.run.function_errors(side, kind) for side, kind in CRASH_TARGETS]


def _invocations_killed(ctx: Context) -> list[int]:
    """Per target, the invocations that failed since the scenario began (a kill is the only cause)."""
    before = ctx.notes["_errors_before"]
    return [ctx.run.function_errors(side, kind) - before[i] for i, (side, kind) in enumerate(CRASH_TARGETS)]


def crash_after(ctx: Context) -> None:
    """A kill counts only if it failed an invocation (the worker may have finished just before)."""
    names = [f"{side}:{kind}" for side, kind in CRASH_TARGETS]
    cut_short = dict(zip(names, _invocations_killed(ctx), strict=True))
    ctx.notes["invocations_killed"] = cut_short
    for name, count in cut_short.items():
        ctx.require(count > 0, f"no {name} invocation was cut short by a kill")


def _busy_worker(ctx: Context, side: str, kind: str, timeout: float) -> int | None:
    function = ctx.run.runner.function(side, kind)
    if function is None:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ctx.load_done.is_set():
        busy = function.runtime.busy_pids()
        if busy:
            return busy[0]
        time.sleep(0.005)
    return None


# -- 6 poison message ------------------------------------------------------------------------


def poison_message(ctx: Context) -> None:
    """Malformed records put straight into cn-north-1's inbox (one per shard) during the load."""
    clients = ctx.run.clients[CN]
    stream = ctx.run.environment.roots[CN].outputs["inbox_stream_name"]
    ctx.sleep(ctx.scale.load_seconds / 3)
    ctx.fault_on()
    shards = clients.kinesis.list_shards(StreamName=stream)["Shards"]
    put = 0
    for shard in shards:
        clients.kinesis.put_record(
            StreamName=stream,
            Data=POISON_DATA,
            PartitionKey="chaos-poison",
            ExplicitHashKey=shard["HashKeyRange"]["StartingHashKey"],
        )
        put += 1
    ctx.notes["poison_records_put"] = put
    ctx.load_done.wait()  # the window: from the poison until the load ends (the shards must keep flowing)
    ctx.fault_off()


def poison_before(ctx: Context) -> None:
    function = ctx.run.runner.function(CN, "replicator")
    ctx.notes["_poison_metric_before"] = function.runtime.metrics.total("PoisonMessages") if function else 0


def poison_after(ctx: Context) -> None:
    put = ctx.notes.get("poison_records_put", 0)
    function = ctx.run.runner.function(CN, "replicator")
    assert function is not None
    metric = function.runtime.metrics.total("PoisonMessages") - ctx.notes.get("_poison_metric_before", 0)
    ctx.notes["poison_metric"] = int(metric)
    found = ctx.run.drain_failure_queue(CN, kind="poison")
    ctx.notes["poison_in_failure_queue"] = found
    ctx.require(metric >= put > 0, f"PoisonMessages metric {metric:g} for {put} poison records")
    ctx.require(found >= put, f"{found} poison messages in the failure queue for {put} records")


# -- 7 credential rotation -------------------------------------------------------------------


def credential_rotation(ctx: Context) -> None:
    """`ddb-replication rotate --direction both` under load, with a short adoption wait: in
    roles_anywhere mode (the environment's default) it re-issues both forwarders' certificates from
    the pair's CA (``--ca-dir``), in access_key mode it replaces both peer-writer keys."""
    ctx.sleep(min(2.0, ctx.scale.load_seconds / 5))
    ctx.fault_on()
    code, output = ctx.run.cli(
        "rotate",
        "--direction",
        "both",
        "--adoption-wait",
        "3",
        "--probe-timeout",
        "60",
        *ctx.run.environment.options.credentials_arguments(),
    )
    ctx.fault_off()
    ctx.notes["rotate_exit"] = code
    ctx.require(code == 0, f"rotate exited {code}: {output[-500:]}")


# -- 8 retries exhausted ---------------------------------------------------------------------


def retries_exhausted(ctx: Context) -> None:
    """us-east-1's forwarder (retry budget: Terraform forwarder_maximum_retry_attempts) cannot reach
    cn-north-1 for longer than its budget lasts: its batches go to the failure queue."""
    link = ctx.run.peer_proxies[US]
    ctx.sleep(2.0)
    ctx.fault_on()
    link.set_state(LinkState.REFUSE)
    ctx.sleep(ctx.scale.exhaust_seconds)
    link.set_state(LinkState.UP)
    ctx.fault_off()


def redrive_before(ctx: Context) -> None:
    ctx.notes["_discarded_before"] = ctx.run.discarded(US, "forwarder")


def redrive_after(ctx: Context) -> None:
    discarded = ctx.run.discarded(US, "forwarder") - ctx.notes.get("_discarded_before", 0)
    ctx.notes["records_given_up"] = discarded
    ctx.require(discarded > 0, "no batch reached the failure queue (the fault was shorter than the budget)")
    code, output = ctx.run.cli("redrive", "--side", "us", "--via", "local", "--json")
    ctx.notes["redrive_exit"] = code
    try:
        document = json.loads(output[output.index("{") :])
        statuses: dict[str, int] = {}
        for value in document.values():
            for entry in value if isinstance(value, list) else []:
                if isinstance(entry, dict) and "status" in entry:
                    statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
        ctx.notes["redrive_messages"] = statuses
    except ValueError:
        ctx.notes["redrive_output"] = output[-500:]
    ctx.require(code == 0, f"redrive exited {code}: {output[-300:]}")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        1,
        "peer-unreachable",
        "peer refused, then blackholed, then healed",
        peer_unreachable,
        load_seconds=lambda s: 2 * s.outage_seconds + max(6.0, s.load_seconds / 2),
    ),
    Scenario(2, "bad-internet", "300 ms +- 100 ms latency, 5% of requests reset", bad_internet),
    Scenario(3, "inbox-throttling", "30% of PutRecords records rejected", inbox_throttling),
    Scenario(4, "table-throttling", "30% of replicator DynamoDB calls throttled", table_throttling),
    Scenario(
        5,
        "crash-mid-batch",
        "forwarder/replicator workers killed mid-invocation",
        crash_mid_batch,
        after=crash_after,
        before=crash_before,
    ),
    Scenario(
        6,
        "poison-message",
        "malformed records in an inbox",
        poison_message,
        after=poison_after,
        before=poison_before,
    ),
    Scenario(7, "credential-rotation", "`ddb-replication rotate` under load", credential_rotation),
    Scenario(
        8,
        "retries-exhausted",
        "peer refused beyond the retry budget, then `redrive`",
        retries_exhausted,
        after=redrive_after,
        before=redrive_before,
        load_seconds=lambda s: s.exhaust_seconds + max(6.0, s.load_seconds / 2),
    ),
)


def select(names: list[str] | None) -> list[Scenario]:
    """Scenarios by number or name (all when none given)."""
    if not names:
        return list(SCENARIOS)
    chosen = []
    for name in names:
        matches = [s for s in SCENARIOS if name in (str(s.number), s.name)]
        if not matches:
            raise ValueError(f"unknown scenario {name!r}: one of {', '.join(s.name for s in SCENARIOS)}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def cli_command(*args: str, env_json: str) -> list[str]:
    return [sys.executable, "-m", "replication_ops.cli", *args, "--local-env", env_json, "--quiet"]


def run_cli(args: list[str], timeout: float = 240) -> tuple[int, str]:
    completed = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    return completed.returncode, completed.stdout + completed.stderr
