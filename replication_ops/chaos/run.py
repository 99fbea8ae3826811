"""`make chaos`: one local two-partition environment, every scenario in turn under load, one report.

The environment is the demo's (``replication_ops.local``): moto servers per partition, both
Terraform roots applied once, the event-source runner with the real Lambda zips. What differs:
each side's forwarder reaches the peer through a ``FaultProxy`` (Terraform ``peer_endpoint_url``),
each replicator reaches its own partition through another (its workers' ``AWS_ENDPOINT_URL``), and
us-east-1's forwarder mapping has a finite retry budget (Terraform
``forwarder_maximum_retry_attempts``) for the retries-exhausted scenario.

Per scenario: the load generator on both sides (own keys, prefixed with the scenario's name, plus
same-key conflicts) over the demo's tables with a String hash key, the only ones deployed (``events``,
with its binary range key, and ``profiles``, with cn-north-1's residency rules when deployed), the
fault beside it, then the wait until replication is idle, the scenario's
operations (redrive...), and the last-writer-wins oracle on the scenario's keys.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replication_ops.chaos.faults import FaultPlan, LinkState
from replication_ops.chaos.figures import (
    FaultWindow,
    catch_up_seconds,
    max_lag_during,
    passed,
    prefixed,
    render_table,
    scoped,
)
from replication_ops.chaos.proxy import FaultProxy
from replication_ops.chaos.scenarios import (
    US,
    Context,
    Scale,
    Scenario,
    cli_command,
    run_cli,
)
from replication_ops.local.aws import SideClients
from replication_ops.local.config import (
    ORIGIN_ATTRIBUTE,
    REPO_ROOT,
    SIDE_NAMES,
    SIDES,
    TIMESTAMP_ATTRIBUTE,
    DemoTable,
    Paths,
)
from replication_ops.local.environment import EnvironmentOptions, LocalEnvironment
from replication_ops.local.loadgen import WRITE_KINDS, LoadGenerator, LoadOptions, LoadResult, plan
from replication_ops.local.quiescence import wait_quiescent
from replication_ops.local.report import STAMP_REASONS, stamped_by_reason
from replication_ops.local.residency_check import deployed_rules
from replication_ops.local.verify import combined, differing_keys, lag_samples, scan_table, verify
from replication_ops.local.watcher import Observations, table_stream_observer

log = logging.getLogger(__name__)

CHAOS_DIR = REPO_ROOT / "build" / "chaos"
# The finite retry budget of us-east-1's forwarder mapping (scenario 8); every other mapping
# retries until its records expire, as deployed by default.
US_FORWARDER_RETRY_ATTEMPTS = 1


@dataclass
class ChaosOptions:
    scale: Scale
    scenarios: list[Scenario]
    base: Path = CHAOS_DIR
    seed: int = 6
    conflict_share: float = 0.15
    environment: EnvironmentOptions | None = None


@dataclass
class ChaosRun:
    options: ChaosOptions
    say: Callable[[str], None] = print
    environment: LocalEnvironment = field(init=False)
    peer_proxies: dict[str, FaultProxy] = field(default_factory=dict)  # side -> its forwarder's link
    replicator_proxies: dict[str, FaultProxy] = field(default_factory=dict)
    clients: dict[str, SideClients] = field(default_factory=dict)
    observations: dict[str, Observations] = field(default_factory=dict)  # the current scenario's
    results: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        env_options = self.options.environment or EnvironmentOptions(paths=Paths(self.options.base / "env"))
        # Only the tables the scenarios load are deployed: the IAM check refuses a grant no call used.
        env_options.tables = tuple(t for t in env_options.tables if t.hash_key[1] == "S")
        env_options.peer_endpoint = self._peer_endpoint
        env_options.function_endpoint = self._function_endpoint
        variables = env_options.terraform_variables.setdefault(US, {})
        variables.setdefault("forwarder_maximum_retry_attempts", US_FORWARDER_RETRY_ATTEMPTS)
        self.environment = LocalEnvironment(env_options, say=self.say)

    # -- hooks: proxies where AWS has the network ------------------------------------------------

    def _peer_endpoint(self, side: str, peer_url: str) -> str:
        if side in self.peer_proxies:  # the environment started over with fresh partitions
            self.peer_proxies[side].stop()
        proxy = FaultProxy(peer_url).start()
        self.peer_proxies[side] = proxy
        self.say(f"  {side} forwarder -> peer through fault proxy {proxy.url} -> {peer_url}")
        return proxy.url

    def _function_endpoint(self, side: str, kind: str, url: str) -> str:
        if kind != "replicator":
            return url
        proxy = FaultProxy(url).start()
        self.replicator_proxies[side] = proxy
        self.say(f"  {side} replicator -> own partition through fault proxy {proxy.url}")
        return proxy.url

    @property
    def runner(self) -> Any:
        assert self.environment.runner is not None
        return self.environment.runner

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        try:
            self.environment.start()
            self.clients = {
                side: SideClients(self.environment.partitions[side].endpoint_url, side) for side in SIDE_NAMES
            }
            for scenario in self.options.scenarios:
                self.results.append(self._scenario(scenario))
        except BaseException as error:
            if self.results:  # what finished is reported, the run marked failed
                self._report(time.monotonic() - began, stopped_by=f"{type(error).__name__}: {error}")
            raise
        else:
            return self._report(time.monotonic() - began)
        finally:
            self.stop()

    def stop(self) -> None:
        self.environment.stop()
        for proxy in [*self.peer_proxies.values(), *self.replicator_proxies.values()]:
            proxy.stop()
        self.environment.options.paths.environment_json.unlink(missing_ok=True)

    @property
    def tables(self) -> tuple[DemoTable, ...]:
        """The tables the scenarios load: the environment's with a String hash key, which takes the
        scenario's prefix (``figures.prefixed``)."""
        return self.environment.options.tables

    def _observe(self) -> None:
        """Fresh observations, fed from now on with every table stream's records as its poller reads
        them (``observe_table_streams``). Set before a scenario does anything, so each of its writes
        is read after: the runner, its pollers and their positions last the whole run. Stragglers of the
        previous scenario (if any) land here under that scenario's key prefix, which this scenario's
        oracle does not look at. One ``Observations`` per side: the tables' key attributes differ."""
        self.observations = {side: Observations(side) for side in SIDE_NAMES}
        self.runner.observe_table_streams(
            table_stream_observer(
                self.observations, timestamp_attribute=TIMESTAMP_ATTRIBUTE, origin_attribute=ORIGIN_ATTRIBUTE
            )
        )

    @property
    def rules(self) -> dict[str, dict[str, Any]]:
        """What leaves each side per table, as deployed (each forwarder's table map)."""
        return {
            side: deployed_rules(
                self.runner.function_environment(side, "forwarder"), side, self.clients[side].ssm
            )
            for side in SIDE_NAMES
        }

    def _reset_faults(self) -> None:
        for proxy in [*self.peer_proxies.values(), *self.replicator_proxies.values()]:
            proxy.set_state(LinkState.UP)
            proxy.plan = FaultPlan()

    def _scenario(self, scenario: Scenario) -> dict[str, Any]:
        seconds = scenario.seconds(self.options.scale)
        self.say(f"\n== {scenario.number} {scenario.name}: {scenario.title} ({seconds:.0f} s of load)")
        ctx = Context(self, self.options.scale)
        self._observe()
        if scenario.before is not None:
            scenario.before(ctx)
        stats_before, proxy_errors_before = self._stats(), self._proxy_errors()
        stamps_before = self._stamps()
        result: dict[str, Any] = {"scenario": f"{scenario.number} {scenario.name}", "title": scenario.title}
        load = self._load_under_fault(scenario, ctx, seconds)
        try:
            result["idle_after_load_seconds"] = round(self._settle(scenario, ctx), 1)
        except Exception as error:
            result["error"] = f"{type(error).__name__}: {error}"
        result.update(self._measure(scenario, ctx, load))
        result["runner"] = _delta(stats_before, self._stats())
        result["stamped_by_reason"] = {k: v - stamps_before.get(k, 0) for k, v in self._stamps().items()}
        if proxy_errors := self._proxy_errors() - proxy_errors_before:
            result["failed_checks"].append(f"the fault proxies failed {proxy_errors} requests themselves")
        if result["fault_seconds"] is None and "error" not in result:
            result["failed_checks"].append("the fault's window was not recorded")
        result["passed"] = passed(result)
        kinds, stamps = result["writes_by_kind"], result["stamped_by_reason"]
        self.say(
            f"   writes without a valid version: {kinds['unversioned_put']} puts, "
            f"{kinds['unversioned_update']} one-field updates, {kinds['invalid_version']} invalid; "
            f"stamped {sum(stamps.values())} ({', '.join(f'{k} {v}' for k, v in stamps.items())})"
        )
        self.say(
            f"   changes {result['changes']}, lost {result['lost']}, differing {result['differing']}, "
            f"max lag {result['max_lag']} s, catch-up {result['catch_up']} s: "
            f"{'PASS' if result['passed'] else 'FAIL'} {result.get('error') or ''}"
        )
        for check in result["failed_checks"]:
            self.say(f"   check failed: {check}")
        return result

    def _load_under_fault(self, scenario: Scenario, ctx: Context, seconds: float) -> LoadResult:
        """The scenario's load on both sides, its fault in a thread beside it; links healed after."""
        load_options = LoadOptions(
            operations=self.options.scale.operations(seconds),
            rate=self.options.scale.rate,
            conflict_share=self.options.conflict_share,
            seed=self.options.seed + scenario.number,
            threads=2,
        )
        generator = LoadGenerator(
            {side: self.clients[side].dynamodb for side in SIDE_NAMES},
            {table.name: self.environment.table(SIDE_NAMES[0], table.name) for table in self.tables},
            load_options,
            progress=False,
        )

        def fault() -> None:
            try:
                scenario.fault(ctx)
            except BaseException as error:  # reported with the scenario
                log.exception("fault of %s failed", scenario.name)
                ctx.fault_errors.append(error)

        ctx.fault_thread = threading.Thread(target=fault, name=f"fault-{scenario.name}", daemon=True)
        ctx.fault_thread.start()
        try:
            return generator.run(prefixed(plan(load_options, self.tables), scenario.name))
        finally:
            ctx.load_done.set()  # the fault ends with the load, even when the load failed
            ctx.fault_thread.join(timeout=self.options.scale.drain_timeout)
            self._reset_faults()  # whatever the fault function did, the links are healed now

    def _settle(self, scenario: Scenario, ctx: Context) -> float:
        """Seconds until replication is idle, the scenario's ``after`` included."""
        timeout = self.options.scale.drain_timeout
        if ctx.fault_thread is not None and ctx.fault_thread.is_alive():
            raise RuntimeError(f"the fault did not end within {timeout:.0f} s of the load")
        if ctx.fault_errors:
            raise RuntimeError(f"the fault failed: {ctx.fault_errors[0]}")
        waited = self._wait_idle(timeout)
        if scenario.after is not None:
            scenario.after(ctx)
            waited += self._wait_idle(timeout)
        return waited

    def _measure(self, scenario: Scenario, ctx: Context, load: LoadResult) -> dict[str, Any]:
        """The scenario's keys against the oracle, lag around the fault, both whole tables."""
        verifications, lags, whole_tables = {}, [], 0
        for table in self.tables:
            scanned = {
                side: scan_table(
                    self.clients[side].dynamodb, self.environment.table(side, table.name), table.key_names
                )
                for side in SIDE_NAMES
            }
            rules = {side: self.rules[side][table.name] for side in SIDE_NAMES}
            table_load = load.of_table(table.name)
            mine = scoped(scanned, scenario.name, table.hash_key[0])
            verifications[table.name] = verify(mine, table_load, self.observations, rules)
            lags += lag_samples(
                table_load, self.observations, {side: SIDES[side].peer for side in SIDE_NAMES}
            )
            whole_tables += len(differing_keys(*scanned.values(), rules, SIDE_NAMES))
        verification = combined(verifications)
        window = FaultWindow(ctx.began, ctx.ended)
        write_errors = sum(1 for w in load.writes if w.error)
        failed_checks = list(ctx.failed_checks)
        if write_errors:
            failed_checks.append(f"{write_errors} load writes failed (the oracle skips those keys)")
        if whole_tables:
            failed_checks.append(
                f"{whole_tables} items differ between the whole tables (other scenarios' too)"
            )
        return {
            "changes": sum(load.changes(side) for side in SIDE_NAMES),
            "conflicting_writes": sum(load.counts(side).get("conflicting", 0) for side in SIDE_NAMES),
            "writes_by_kind": {
                kind: sum(load.by_kind(side)[kind] for side in SIDE_NAMES) for kind in WRITE_KINDS
            },
            "write_errors": write_errors,
            "lost": len(verification.lost),
            "differing": len(verification.differing),
            "uncertain": verification.uncertain,
            "differing_whole_tables": whole_tables,
            "max_lag": max_lag_during(lags, window),
            "catch_up": catch_up_seconds(lags, window),
            "lag_samples": len(lags),
            "fault_seconds": round(ctx.ended - ctx.began, 1) if ctx.began and ctx.ended else None,
            "notes": {k: v for k, v in ctx.notes.items() if not k.startswith("_")},
            "failed_checks": failed_checks,
            "examples": verification.examples[:3],
        }

    def _stamps(self) -> dict[str, int]:
        """The forwarders' stamps so far by reason, both sides (their EMF metrics)."""
        summary = self.runner.summary()
        by_side = [stamped_by_reason(summary, side) for side in SIDE_NAMES]
        return {reason: sum(counts[reason] for counts in by_side) for reason in STAMP_REASONS}

    def _wait_idle(self, timeout: float) -> float:
        runner = self.runner

        def sources() -> list[Any]:
            runner.check_health()  # a poller stopped, or the observations failed
            return runner.consumers()

        return wait_quiescent(sources, timeout=timeout, refresh=runner.refresh_shards)

    # -- helpers for scenarios -------------------------------------------------------------------

    def cli(self, *args: str) -> tuple[int, str]:
        env_json = str(self.environment.options.paths.environment_json)
        return run_cli(cli_command(*args, env_json=env_json))

    def discarded(self, side: str, kind: str) -> int:
        return self._stats().get(f"{side}:{kind}:records_discarded", 0)

    def drain_failure_queue(self, side: str, *, kind: str) -> int:
        """Delete the failure-queue messages of one kind (e.g. poison); return how many there were."""
        sqs = self.clients[side].sqs
        url = self.environment.roots[side].outputs["failure_queue_url"]
        found = 0
        for _ in range(20):
            response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    body = json.loads(message["Body"])
                except ValueError:
                    body = {}
                if body.get("kind") == kind:
                    found += 1
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def function_errors(self, side: str, kind: str) -> int:
        return self._stats().get(f"{side}:{kind}:function_errors", 0)

    def _proxy_errors(self) -> int:
        proxies = [*self.peer_proxies.values(), *self.replicator_proxies.values()]
        return sum(proxy.counters.proxy_errors for proxy in proxies)

    def _stats(self) -> dict[str, int]:
        """The runner's counters that tell what a scenario did, as "side:kind:counter" -> total."""
        return {
            f"{side}:{kind}:{name}": entry[name]
            for side, kinds in self.runner.mapping_counters().items()
            for kind, entry in kinds.items()
            for name in ("invocations", "function_errors", "partial_failures", "records_discarded")
        }

    # -- the report ------------------------------------------------------------------------------

    def _iam(self) -> dict[str, Any] | None:
        """The IAM decisions of the whole run (iam.json beside the report); None when not enforced."""
        try:
            record = self.environment.iam_record()
        except Exception as error:  # the partitions are gone (a failed start): nothing to read
            self.say(f"IAM record not read: {error}")
            return None
        if record is None:
            return None
        record.write(self.options.base / "iam.json")
        return record.summary()

    def _report(self, seconds: float, stopped_by: str | None = None) -> dict[str, Any]:
        iam = self._iam()
        denied = iam["denied"] if iam else []
        report = {
            "passed": bool(self.results)
            and stopped_by is None
            and all(r["passed"] for r in self.results)
            and not denied,
            "stopped_by": stopped_by,
            "scale": asdict(self.options.scale),
            "seconds": round(seconds, 1),
            "environment_timings": dict(self.environment.timings),
            "settings": {
                "us-east-1 forwarder_maximum_retry_attempts": US_FORWARDER_RETRY_ATTEMPTS,
                "conflict_share": self.options.conflict_share,
            },
            "scenarios": self.results,
            "iam": iam,
        }
        path = self.options.base / "report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        table = render_table(self.results)
        (self.options.base / "report.txt").write_text(table + "\n", encoding="utf-8")
        self.say("\n" + table)
        if iam is not None:
            calls = iam["calls"]
            self.say(
                f"\nIAM enforced: {calls:,} calls authorized by the callers' policies, {len(denied)} denied"
            )
            for line in denied:
                self.say(f"  denied: {line}")
        self.say(f"\nreport: {path}   ({seconds:.0f} s)   {'ALL PASSED' if report['passed'] else 'FAILED'}")
        return report


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def run_chaos(options: ChaosOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    return ChaosRun(options, say=say).run()


__all__ = ["ChaosOptions", "ChaosRun", "run_chaos"]
