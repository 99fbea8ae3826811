"""The Lambda event-source runner: runs what Terraform deployed, the way Lambda would.

For each side it reads the event source mappings and function configurations through that
partition's Lambda API, checks that each function's CodeSha256 is the hash of ``dist/<arch>/<fn>.zip``
(``<arch>``: this machine's, see ``config.DIST_DIR``), unpacks the zip into
``build/local/functions/<side>/<fn>/`` and runs its handler in worker processes
with the deployed environment (plus the AWS_* variables Lambda sets, pointed at the local partition).
Each mapping gets one poller per shard (``event_sources.ShardConsumer``); shards appearing later are
picked up by a periodic listing. What the pollers of the table streams read can be observed
(``observe_table_streams``): the demo's and chaos's oracle learns what each table's stream showed from
the reads Lambda's poller makes anyway, rather than from a second reader of every shard (GetRecords on a
DynamoDB stream is the emulator's most expensive call).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication import lag
from replication_ops.local.aws import ADMINISTRATOR, AwsCredentials, SideClients, assume_execution_role
from replication_ops.local.cloudwatch import MetricsPublisher, emf_datums, invocation_datums
from replication_ops.local.event_sources import MappingConfig, ShardConsumer, initial_position
from replication_ops.local.events import KIND_DYNAMODB, KIND_KINESIS, StreamRecord
from replication_ops.local.streams import (
    DynamoDBShardReader,
    KinesisShardReader,
    ShardInfo,
    list_dynamodb_shards,
    list_kinesis_shards,
)
from replication_ops.local.workers import FunctionRuntime

log = logging.getLogger(__name__)

SHARD_LISTING_INTERVAL_SECONDS = 5.0
# (side, records in the shard's order, when the read that returned them began: epoch seconds)
TableStreamObserver = Callable[[str, list[StreamRecord], float], None]
# EMF metrics whose values are a distribution, not counts to add up: the replicator's lag per stage
# and end to end (ReplicationLatency), sampled (replication.lag).
DISTRIBUTION_METRICS = tuple(lag.METRICS.values())
CONSUMER_COUNTERS = (
    "records_read",
    "data_bytes_read",
    "invocations",
    "function_errors",
    "partial_failures",
    "bisections",
    "records_discarded",
    "iterator_refreshes",
    "poll_errors",
)


class RunnerError(RuntimeError):
    pass


class CodeMismatchError(RunnerError):
    pass


def code_sha256(path: Path) -> str:
    """Lambda's CodeSha256: the base64 of the SHA-256 of the zip file."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode("ascii")


def zip_for_function(function_name: str, dist_dir: Path) -> Path | None:
    """The dist zip whose name ends the function's name (``ddbrep-forwarder`` -> ``forwarder.zip``)."""
    candidates = [p for p in sorted(dist_dir.glob("*.zip")) if function_name.endswith(p.stem)]
    return max(candidates, key=lambda p: len(p.stem)) if candidates else None


def check_code(function_name: str, side: str, deployed_sha: str, dist_dir: Path) -> Path:
    expected = zip_for_function(function_name, dist_dir)
    if expected is None:
        matching = [p for p in sorted(dist_dir.glob("*.zip")) if code_sha256(p) == deployed_sha]
        if matching:
            return matching[0]
        raise CodeMismatchError(
            f"no zip in {dist_dir} matches function {function_name} in {side}: "
            "run `make package` and re-apply"
        )
    actual = code_sha256(expected)
    if actual != deployed_sha:
        raise CodeMismatchError(
            f"function {function_name} in {side} was deployed with code {deployed_sha}, but "
            f"{expected} has {actual}: run `make package` and re-apply"
        )
    return expected


def extract(zip_path: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(target)


def lambda_environment(
    configuration: dict[str, Any],
    *,
    region: str,
    endpoint_url: str,
    code_dir: Path,
    credentials: AwsCredentials = ADMINISTRATOR,
    ca_bundle: str | None = None,
) -> dict[str, str]:
    """The deployed variables plus those Lambda's Python runtime sets, aimed at the local partition;
    ``credentials`` are the execution role's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, as Lambda sets them). ``ca_bundle``: the local CA the partitions' TLS ports
    present, as ``AWS_CA_BUNDLE`` (the SDKs' standard variable, which the forwarder's Roles Anywhere
    session passes as ``verify``): like ``AWS_ENDPOINT_URL``, local only; in AWS the public CAs
    the runtime trusts sign Roles Anywhere's endpoint."""
    name = configuration["FunctionName"]
    runtime = configuration.get("Runtime") or "python3.12"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }
    env.update((configuration.get("Environment") or {}).get("Variables") or {})
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint_url,
            **credentials.environment(),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize") or 128),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(code_dir),
            "_HANDLER": configuration.get("Handler") or "app.handler",
            "_LOCAL_FUNCTION_ARN": configuration["FunctionArn"],
        }
    )
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    return env


class _SqsOrSnsDestination:
    """Lambda's on-failure destination: the record is sent with the function's role (``clients``),
    which needs only ``sqs:SendMessage`` / ``sns:Publish``; the queue's URL is the service's own
    look-up (``service_clients``: Lambda addresses the queue by its ARN)."""

    def __init__(self, clients: SideClients, arn: str, service_clients: SideClients | None = None) -> None:
        self._clients = clients
        self._service_clients = service_clients or clients
        self.arn = arn
        self._queue_url: str | None = None
        self.sent = 0

    def send(self, document: dict[str, Any]) -> None:
        body = json.dumps(document)
        service = self.arn.split(":")[2]
        if service == "sqs":
            if self._queue_url is None:
                account, name = self.arn.split(":")[4], self.arn.split(":")[5]
                self._queue_url = self._service_clients.sqs.get_queue_url(
                    QueueName=name, QueueOwnerAWSAccountId=account
                )["QueueUrl"]
            self._clients.sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)
        elif service == "sns":
            self._clients.sns.publish(TopicArn=self.arn, Message=body)
        else:
            log.error("on-failure destination %s is not supported locally; record dropped", self.arn)
            return
        self.sent += 1


@dataclass
class DeployedFunction:
    side: str
    name: str
    arn: str
    configuration: dict[str, Any]
    zip_path: Path
    runtime: FunctionRuntime
    # Clients with the execution role's credentials: what Lambda's poller reads the event source
    # and sends on-failure records with.
    role_clients: SideClients

    @property
    def kind(self) -> str:
        """``forwarder`` / ``replicator`` (the dist zip's name)."""
        return self.zip_path.stem


@dataclass
class MappingRunner:
    """All shard pollers of one event source mapping."""

    side: str
    config: MappingConfig
    function: DeployedFunction
    clients: SideClients
    stop: threading.Event
    destination: _SqsOrSnsDestination | None
    publisher: MetricsPublisher | None = None
    on_read: Callable[[list[StreamRecord], float], None] | None = None  # each read's records
    consumers: dict[str, ShardConsumer] = field(default_factory=dict)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    _started: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def kind(self) -> str:
        return self.config.kind

    def list_shards(self) -> list[ShardInfo]:
        if self.kind == KIND_DYNAMODB:
            return list_dynamodb_shards(self.clients.dynamodbstreams, self.config.event_source_arn)
        return list_kinesis_shards(self.clients.kinesis, self.config.stream_arn)

    def refresh(self) -> None:
        """Start pollers for shards not yet polled whose parent is done (or unknown)."""
        shards = self.list_shards()
        with self._lock:
            initial = not self._started
            self._started = True
            for shard in shards:
                if shard.shard_id in self.consumers:
                    continue
                parent = self.consumers.get(shard.parent_shard_id or "")
                if parent is not None and not parent.finished:
                    continue  # children wait for their parent, to keep each key's order
                if parent is None and not initial and shard.parent_shard_id in {s.shard_id for s in shards}:
                    continue  # the parent is listed but not polled yet
                self._start_consumer(shard, present_at_start=initial)

    def _start_consumer(self, shard: ShardInfo, *, present_at_start: bool) -> None:
        if self.kind == KIND_DYNAMODB:
            reader: Any = DynamoDBShardReader(
                self.clients.dynamodbstreams, self.config.event_source_arn, shard.shard_id, self.side
            )
        else:
            reader = KinesisShardReader(
                self.clients.kinesis,
                self.config.stream_arn,
                shard.shard_id,
                self.side,
                self.function.configuration.get("Role", ""),
            )
        consumer = ShardConsumer(
            self.config,
            reader,
            self.function.runtime,
            self.destination,
            start=initial_position(self.config, present_at_start=present_at_start),
            stop=self.stop,
            on_finished=lambda _c: self._safe_refresh(),
            on_invoke=self._publish_invocation if self.publisher else None,
            on_read=self.on_read,
        )
        thread = threading.Thread(
            target=consumer.run, daemon=True, name=f"{self.side}:{self.function.name}:{shard.shard_id[-8:]}"
        )
        self.consumers[shard.shard_id] = consumer
        self.threads[shard.shard_id] = thread
        thread.start()

    def _publish_invocation(self, records: list[Any], result: Any, seconds: float) -> None:
        assert self.publisher is not None
        self.publisher.add(
            invocation_datums(
                self.function.name,
                duration_ms=seconds * 1000,
                error=result.function_error is not None,
                iterator_age_ms=(time.time() - records[-1].arrival) * 1000 if records else None,
                at=time.time(),
            )
        )

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("listing the shards of %s failed", self.config.event_source_arn)

    def dead_consumers(self) -> list[str]:
        return [
            shard_id
            for shard_id, thread in self.threads.items()
            if not thread.is_alive() and not self.consumers[shard_id].finished and not self.stop.is_set()
        ]


@dataclass(frozen=True)
class SideEndpoint:
    region: str
    endpoint_url: str


class EventSourceRunner:
    """Runs every event source mapping of every side until stopped."""

    def __init__(
        self,
        sides: Iterable[SideEndpoint],
        *,
        dist_dir: Path,
        functions_dir: Path,
        logs_dir: Path,
        max_concurrency: int = 2,
        publish_metrics: bool = True,
        function_endpoint: Callable[[str, str, str], str] | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.sides = {side.region: side for side in sides}
        self.clients = {region: SideClients(s.endpoint_url, region) for region, s in self.sides.items()}
        self.dist_dir = dist_dir
        self.functions_dir = functions_dir
        self.logs_dir = logs_dir
        self.max_concurrency = max_concurrency
        self.function_endpoint = function_endpoint  # (side, function kind, URL) -> the URL its workers get
        self.ca_bundle = ca_bundle  # the workers' AWS_CA_BUNDLE (lambda_environment)
        self.functions: dict[tuple[str, str], DeployedFunction] = {}
        self.mappings: list[MappingRunner] = []
        self.stop_event = threading.Event()
        self._table_observer: TableStreamObserver | None = None
        self._observer_lock = threading.Lock()
        self.observer_error: BaseException | None = None  # the first exception of a table observer
        self._lister: threading.Thread | None = None
        self.publishers: dict[str, MetricsPublisher] = (
            {region: MetricsPublisher(clients.cloudwatch) for region, clients in self.clients.items()}
            if publish_metrics
            else {}
        )

    # -- setup -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Read the mappings and functions, check the code, unpack it and start one worker each."""
        for region, clients in self.clients.items():
            mappings = _list_mappings(clients)
            if not mappings:
                raise RunnerError(f"no event source mappings in {region}: has Terraform been applied?")
            for mapping in mappings:
                config = MappingConfig.from_api(mapping)
                if not config.enabled:
                    log.info("%s: mapping %s is disabled; not polled", region, config.uuid)
                    continue
                if config.parallelization_factor > 1:
                    log.info("%s: mapping %s polled with one batch per shard at a time", region, config.uuid)
                function = self._function(region, config.function_arn)
                destination = (
                    _SqsOrSnsDestination(function.role_clients, config.on_failure_destination, clients)
                    if config.on_failure_destination
                    else None
                )
                self.mappings.append(
                    MappingRunner(
                        region,
                        config,
                        function,
                        function.role_clients,
                        self.stop_event,
                        destination,
                        self.publishers.get(region),
                        on_read=self._table_stream_reader(region) if config.kind == KIND_DYNAMODB else None,
                    )
                )
        for function in self.functions.values():
            worker = function.runtime.start()
            loaded = worker.modules.get("replication")
            if loaded and not loaded.startswith(str(function.runtime.code_dir)):
                raise RunnerError(
                    f"{function.name} imported the engine from {loaded}, not from its zip: "
                    "check the zip layout"
                )
            if worker.init_error:
                error = worker.init_error
                raise RunnerError(
                    f"{function.name} in {function.side} fails at init: {error.get('errorType')}: "
                    f"{error.get('errorMessage')} (see {self.logs_dir})"
                )

    def _function(self, region: str, function_arn: str) -> DeployedFunction:
        name = function_arn.split(":")[6]
        key = (region, name)
        if key in self.functions:
            return self.functions[key]
        configuration = (
            self.clients[region]
            .__getattr__("lambda")
            .get_function(FunctionName=function_arn)["Configuration"]
        )
        zip_path = check_code(name, region, configuration.get("CodeSha256", ""), self.dist_dir)
        code_dir = self.functions_dir / region / zip_path.stem
        extract(zip_path, code_dir)
        partition_url = self.sides[region].endpoint_url
        role = assume_execution_role(partition_url, region, configuration["Role"], name)
        endpoint_url = partition_url
        if self.function_endpoint is not None:
            endpoint_url = self.function_endpoint(region, zip_path.stem, endpoint_url)
        env = lambda_environment(
            configuration,
            region=region,
            endpoint_url=endpoint_url,
            code_dir=code_dir,
            credentials=role,
            ca_bundle=self.ca_bundle,
        )
        runtime = FunctionRuntime(
            name=name,
            function_arn=configuration["FunctionArn"],
            code_dir=code_dir,
            env=env,
            timeout=float(configuration.get("Timeout") or 3),
            log_path=self.logs_dir / f"lambda-{region}-{zip_path.stem}.log",
            max_concurrency=self.max_concurrency,
            on_emf=self._emf_publisher(region),
        )
        function = DeployedFunction(
            region,
            name,
            configuration["FunctionArn"],
            configuration,
            zip_path,
            runtime,
            SideClients(partition_url, region, credentials=role),
        )
        self.functions[key] = function
        return function

    def _emf_publisher(self, region: str) -> Any:
        publisher = self.publishers.get(region)
        if publisher is None:
            return None
        return lambda document: publisher.add(emf_datums(document))

    # -- observing the table streams -------------------------------------------------------------

    def observe_table_streams(self, observer: TableStreamObserver | None) -> None:
        """From now on, hand what every table stream's poller reads to ``observer(side, records,
        read_at)`` (None: to nobody). Each record once, in its shard's order, right after the read
        that returned it (``ShardConsumer``'s ``on_read``): Kinesis inbox reads are not observed.
        Calls are serialized, and once this returns none is made to the previous observer any more,
        so a new observer sees every record read after it was set, and only those. An exception in
        the observer is logged and kept (``observer_error``) for ``check_health`` to raise; the
        pollers go on."""
        with self._observer_lock:
            self._table_observer = observer

    def _table_stream_reader(self, side: str) -> Callable[[list[StreamRecord], float], None]:
        def read(records: list[StreamRecord], read_at: float) -> None:
            with self._observer_lock:
                if self._table_observer is None:
                    return
                try:
                    self._table_observer(side, records, read_at)
                except Exception as error:
                    log.exception("%s: the table-stream observer failed", side)
                    if self.observer_error is None:
                        self.observer_error = error

        return read

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        for mapping in self.mappings:
            mapping.refresh()
        self._lister = threading.Thread(target=self._list_periodically, daemon=True, name="shard-lister")
        self._lister.start()

    def _list_periodically(self) -> None:
        while not self.stop_event.wait(SHARD_LISTING_INTERVAL_SECONDS):
            for mapping in self.mappings:
                mapping._safe_refresh()

    def refresh_shards(self) -> None:
        for mapping in self.mappings:
            mapping.refresh()

    def consumers(self) -> list[ShardConsumer]:
        return [c for mapping in self.mappings for c in list(mapping.consumers.values())]

    def check_health(self) -> None:
        """Raise ``RunnerError`` if a poller stopped or the table-stream observer failed."""
        if self.observer_error is not None:
            error = self.observer_error
            raise RunnerError(
                f"the table-stream observer failed: {type(error).__name__}: {error} (see the log)"
            )
        for mapping in self.mappings:
            dead = mapping.dead_consumers()
            if dead:
                raise RunnerError(
                    f"{mapping.side}: the poller of {mapping.function.name} on shard {dead[0]} stopped "
                    f"(see the log)"
                )

    def stop(self) -> None:
        self.stop_event.set()
        for mapping in self.mappings:
            for thread in mapping.threads.values():
                thread.join(timeout=10)
        for function in self.functions.values():
            function.runtime.close()
        for publisher in self.publishers.values():
            publisher.stop()

    def pids(self) -> list[int]:
        return [pid for f in self.functions.values() for pid in f.runtime.pids()]

    # -- numbers for the report ------------------------------------------------------------------

    def function(self, side: str, kind: str) -> DeployedFunction | None:
        for function in self.functions.values():
            if function.side == side and function.kind == kind:
                return function
        return None

    def mapping_counters(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Side -> function kind -> the counters of its mapping's shard consumers, added up."""
        sides: dict[str, dict[str, dict[str, Any]]] = {}
        for mapping in self.mappings:
            entry = sides.setdefault(mapping.side, {}).setdefault(
                mapping.function.kind,
                {
                    "function": mapping.function.name,
                    "source": mapping.kind,
                    "shards": 0,
                    **dict.fromkeys(CONSUMER_COUNTERS, 0),
                },
            )
            for consumer in list(mapping.consumers.values()):
                entry["shards"] += 1
                for name in CONSUMER_COUNTERS:
                    entry[name] += getattr(consumer.stats, name)
        return sides

    def summary(self) -> dict[str, Any]:
        sides: dict[str, Any] = self.mapping_counters()
        for function in self.functions.values():
            entry = sides.setdefault(function.side, {}).setdefault(function.kind, {"function": function.name})
            metrics = function.runtime.metrics
            entry["metrics"] = {
                name: total for name, total in metrics.as_dict().items() if name not in DISTRIBUTION_METRICS
            }
            for name in DISTRIBUTION_METRICS:
                values = sorted(metrics.values.get(name, []))
                if values:
                    entry[f"{name}_ms"] = {
                        "samples": len(values),
                        "p50": round(values[len(values) // 2], 1),
                        "p99": round(values[min(len(values) - 1, int(len(values) * 0.99))], 1),
                        "max": round(values[-1], 1),
                    }
            entry["cold_starts"] = function.runtime.cold_starts
        return sides

    def table_metrics(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """Each function's EMF sums per table: ``{side: {kind: {table: {metric: sum}}}}``."""
        found: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for function in self.functions.values():
            kinds = found.setdefault(function.side, {})
            kinds[function.kind] = function.runtime.metrics.by_table()
        return found

    def stage_lags(self) -> dict[str, dict[str, list[float]]]:
        """The replicators' lag values (milliseconds) of every side: ``{table: {metric: [ms, ...]}}``."""
        found: dict[str, dict[str, list[float]]] = {}
        for function in self.functions.values():
            if function.kind != "replicator":
                continue
            for table, metrics in function.runtime.metrics.values_by_table(DISTRIBUTION_METRICS).items():
                for name, values in metrics.items():
                    found.setdefault(table, {}).setdefault(name, []).extend(values)
        return found

    def function_environment(self, side: str, kind: str) -> dict[str, str]:
        """The deployed environment variables of one side's forwarder or replicator."""
        for function in self.functions.values():
            if function.side == side and function.kind == kind:
                return dict((function.configuration.get("Environment") or {}).get("Variables") or {})
        raise KeyError(f"no {kind} deployed in {side}")

    def inbox_totals(self, side: str) -> tuple[int, int]:
        """(Kinesis records, data bytes) read from the side's inbox shards."""
        records = data = 0
        for mapping in self.mappings:
            if mapping.side == side and mapping.kind == KIND_KINESIS:
                for consumer in list(mapping.consumers.values()):
                    records += consumer.stats.records_read
                    data += consumer.stats.data_bytes_read
        return records, data


def _list_mappings(clients: SideClients) -> list[dict[str, Any]]:
    api = clients.__getattr__("lambda")
    mappings: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        response = api.list_event_source_mappings(**params)
        mappings.extend(response.get("EventSourceMappings", []))
        marker = response.get("NextMarker")
        if not marker:
            return mappings
        params["Marker"] = marker


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
