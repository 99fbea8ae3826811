"""The local two-partition environment: partitions, Terraform, credentials and the runner, in order.

Used by ``demo`` (started, loaded, verified and torn down) and by ``up`` (left running in the
background). Every step logs what it does; ``stop`` undoes whatever was started, in reverse order.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication_ops.local.aws import SideClients
from replication_ops.local.config import (
    DEFAULT_PEER_WRITER_AUTHENTICATION,
    DEMO_TABLES,
    DIST_DIR,
    EXAMPLE_TABLE,
    FUNCTIONS_DIR,
    ORIGIN_ATTRIBUTE,
    RESIDENCY_RULES_DEPLOYED,
    SIDE_NAMES,
    SIDES,
    TIMESTAMP_ATTRIBUTE,
    DemoTable,
    Paths,
    SetupError,
)
from replication_ops.local.credentials import (
    create_operator_key,
    credentials_arguments,
    ensure_pair_ca,
    install_credentials,
)
from replication_ops.local.iam_audit import Call as IamCall
from replication_ops.local.iam_audit import IamRecord, module_principals, read_policies
from replication_ops.local.partitions import LocalPartition, start_partitions
from replication_ops.local.runner import EventSourceRunner, SideEndpoint
from replication_ops.local.terraform import (
    RolesAnywhereSettings,
    TerraformError,
    TerraformRoot,
    cli_config_file,
    demo_variables,
    in_parallel,
    terraform_available,
)

log = logging.getLogger(__name__)


def check_port_free(port: int, flag: str) -> None:
    """A fixed port on 127.0.0.1 must be free before the partitions start (0: any free port).

    Probed as the moto servers bind it, with ``SO_REUSEADDR`` (their ``http.server`` base sets
    ``allow_reuse_address``): connections of a stopped environment left in TIME_WAIT (about a minute
    on Linux) do not keep a new server from listening, so they must not count as "in use" either;
    a socket still listening there does."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SetupError(
                f"port {port} on 127.0.0.1 is in use (a local environment still running? `make down` stops "
                f"it; or start on another port: .venv/bin/python -m replication_ops.local up {flag} PORT)"
            ) from None


@dataclass
class EnvironmentOptions:
    paths: Paths = field(default_factory=Paths)
    ports: dict[str, int] = field(default_factory=dict)  # side -> port (0: any free port)
    tables: tuple[DemoTable, ...] = DEMO_TABLES
    # cn-north-1's residency rules deployed (the switch: config.RESIDENCY_RULES_DEPLOYED)
    residency_rules: bool = RESIDENCY_RULES_DEPLOYED
    inbox_shards: int = 2
    max_concurrency: int = 2
    dist_dir: Path = DIST_DIR
    functions_dir: Path = FUNCTIONS_DIR
    terraform_parallelism: int = 10
    # Hooks for fault injection (replication_ops.chaos): what each side's forwarder is given as the
    # peer's endpoint, (side, peer endpoint URL) -> URL; what a function's workers get as their own
    # AWS_ENDPOINT_URL, (side, function kind, endpoint URL) -> URL; extra Terraform variables per side.
    peer_endpoint: Callable[[str, str], str] | None = None
    function_endpoint: Callable[[str, str, str], str] | None = None
    terraform_variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every request authenticated and authorized by the caller's IAM policies (iam_enforcement).
    enforce_iam: bool = True
    # The module's peer_writer_authentication: roles_anywhere (the pair's CA under paths.pair_ca, the
    # emulated Roles Anywhere of the peer partition) or access_key (peer-writer users and their keys).
    peer_writer_authentication: str = DEFAULT_PEER_WRITER_AUTHENTICATION

    @property
    def roles_anywhere(self) -> bool:
        return self.peer_writer_authentication == "roles_anywhere"

    @property
    def ca_dir(self) -> Path | None:
        """The pair's CA folder in roles_anywhere mode, else None."""
        return self.paths.pair_ca if self.roles_anywhere else None

    def credentials_arguments(self) -> list[str]:
        """What ``ddb-replication credentials``/``rotate`` are given for this mode (``--ca-dir``)."""
        return credentials_arguments(self.ca_dir)


@dataclass
class LocalEnvironment:
    options: EnvironmentOptions
    say: Callable[[str], None] = print
    partitions: dict[str, LocalPartition] = field(default_factory=dict)
    roots: dict[str, TerraformRoot] = field(default_factory=dict)
    runner: EventSourceRunner | None = None
    app_credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    missing_variables: dict[str, list[str]] = field(default_factory=dict)
    cli_config: str | None = None  # the Terraform CLI configuration (scripts/terraform_config.sh)

    # -- start -----------------------------------------------------------------------------------

    def start(self) -> None:
        paths = self.options.paths
        paths.ensure()
        if self.cli_config is None:
            self.preflight()
        paths.fresh_logs()
        self._step("partitions", self._start_partitions)
        self._step("terraform", self._apply_or_start_over)
        self._step("runner", self._start_runner)
        self._step("credentials", self._credentials)

    def _step(self, name: str, action: Callable[[], None]) -> None:
        began = time.monotonic()
        action()
        self.timings[name] = round(time.monotonic() - began, 2)

    def preflight(self) -> None:
        """What must be in place before anything starts; each missing piece is a ``SetupError``."""
        for name in ("forwarder", "replicator"):
            if not (self.options.dist_dir / f"{name}.zip").is_file():
                raise SetupError(
                    f"{self.options.dist_dir / name}.zip is missing: run `make package` "
                    "(make demo and make up build it first)"
                )
            stale = stale_package_files(
                self.options.dist_dir / f"{name}.zip", name, self.options.functions_dir
            )
            if stale:
                shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
                raise SetupError(
                    f"{self.options.dist_dir / name}.zip was built from other sources than "
                    f"{self.options.functions_dir} ({shown} differ): run `make package` "
                    "(make demo and make up build it first)"
                )
        if not terraform_available():
            raise SetupError("terraform is not on PATH: install Terraform >= 1.6 and put it on PATH")
        for region, flag in (("cn-north-1", "--cn-port"), ("us-east-1", "--us-port")):
            check_port_free(self.options.ports.get(region, 0), flag)
        self.cli_config, note = cli_config_file(self.options.paths.terraform)
        if note:
            self.say(note)

    def _start_partitions(self) -> None:
        self.say("starting the local partitions (moto servers on 127.0.0.1)")
        started = start_partitions(
            [SIDES[name] for name in SIDE_NAMES],
            self.options.paths.logs,
            self.options.ports,
            enforce_iam=self.options.enforce_iam,
        )
        self.partitions = {p.region: p for p in started}
        for partition in started:
            self.say(f"  {partition.region:<11} ({partition.side.partition}) {partition.endpoint_url}")

    def _apply_or_start_over(self, attempts: int = 2) -> None:
        """Init and apply both roots; after a failed apply, start again from fresh partitions
        (``attempts`` applies in all). Applying again into the same partition does not help: a moto
        server busy with both roots has twice answered a call the SDK had retried as a duplicate (a
        security group rule, a Lambda function), so the resource exists there but not in Terraform's
        state. A failed init is never retried: it fails the same way again (no provider, a syntax
        error)."""
        for attempt in range(1, attempts + 1):
            self._prepare_roots()
            if attempt == 1:
                self._init_roots()
            try:
                self._apply_roots()
                return
            except TerraformError as error:
                if attempt == attempts or any(root.cancelled for root in self.roots.values()):
                    raise
                self.say(f"{error}; starting over once from fresh partitions")
                self._stop_partitions()
                self._start_partitions()

    def _prepare_roots(self) -> None:
        paths = self.options.paths
        for region, partition in self.partitions.items():
            side = SIDES[region]
            root = TerraformRoot(
                side,
                paths.terraform / region,
                partition.endpoint_url,
                paths.logs / f"terraform-{region}.log",
                cli_config=self.cli_config,
            )
            peer_url = self.partitions[side.peer].endpoint_url
            if self.options.peer_endpoint is not None:
                peer_url = self.options.peer_endpoint(region, peer_url)
            variables = demo_variables(
                side,
                peer_endpoint_url=peer_url,
                tables=self.options.tables,
                residency_rules=self.options.residency_rules,
                inbox_shards=self.options.inbox_shards,
                dist_dir=self.options.dist_dir,
                roles_anywhere=self._roles_anywhere(side.peer),
            )
            variables.update(self.options.terraform_variables.get(region, {}))
            self.missing_variables[region] = root.prepare(variables)
            self.roots[region] = root

    def _roles_anywhere(self, peer: str) -> RolesAnywhereSettings | None:
        """A side's roles_anywhere values (None in access_key mode): the pair's CA, made once under
        ``paths.pair_ca``, and the peer partition's Roles Anywhere endpoint (its TLS port)."""
        if self.options.ca_dir is None:
            return None
        return RolesAnywhereSettings(
            ensure_pair_ca(self.options.ca_dir), self.partitions[peer].rolesanywhere_endpoint
        )

    def _init_roots(self) -> None:
        self.say("terraform init (both roots)")
        for root in self.roots.values():
            root.init()  # one at a time: the provider plugin cache is not safe for concurrent use

    def _apply_roots(self) -> None:
        self.say("terraform apply (both roots in parallel; about a minute or two)")
        parallelism = self.options.terraform_parallelism
        in_parallel(list(self.roots.values()), lambda root: root.apply(parallelism))
        expected = {table.name: table.name for table in self.options.tables}
        for region, root in self.roots.items():
            tables = root.outputs.get("table_names")
            if tables and tables != expected:
                raise TerraformError(f"{region} created tables {tables}, expected {expected}")

    def _credentials(self) -> None:
        """Each side's forwarder's peer credentials into its secret with the operations CLI's
        ``credentials`` command (which also probes each direction end to end through the runner): a
        leaf certificate of the pair's CA in roles_anywhere mode, the peer-writer key in access_key."""
        for region, partition in self.partitions.items():
            self.app_credentials[region] = create_operator_key(SideClients(partition.endpoint_url, region))
        self.write_environment_json()
        outputs = {}
        for region, root in self.roots.items():
            path = root.workspace / "outputs.json"
            path.write_text(json.dumps(root.outputs, indent=2), encoding="utf-8")
            outputs[region] = path
        what = (
            "certificates of the pair's CA for the forwarders' secrets"
            if self.options.roles_anywhere
            else "peer-writer keys into the other side's secret"
        )
        self.say(f"peer credentials: `ddb-replication credentials` ({what})")
        for line in install_credentials(self.options.paths.environment_json, outputs, self.options.ca_dir):
            self.say(f"  {line}")

    def _start_runner(self) -> None:
        paths = self.options.paths
        self.runner = EventSourceRunner(
            [SideEndpoint(region, p.endpoint_url) for region, p in self.partitions.items()],
            dist_dir=self.options.dist_dir,
            functions_dir=paths.functions,
            logs_dir=paths.logs,
            max_concurrency=self.options.max_concurrency,
            function_endpoint=self.options.function_endpoint,
            ca_bundle=self._ca_bundle(),
        )
        self.say("event-source runner: reading mappings and functions, checking code, starting workers")
        self.runner.prepare()
        self.runner.start()
        for mapping in self.runner.mappings:
            self.say(
                f"  {mapping.side:<11} {mapping.function.name:<22} <- {mapping.kind} "
                f"({len(mapping.consumers)} shard(s), batch {mapping.config.batch_size}, "
                f"window {mapping.config.batching_window_seconds:g} s)"
            )

    def _ca_bundle(self) -> str | None:
        """``AWS_CA_BUNDLE`` of the functions in roles_anywhere mode: the local CA of the partitions'
        TLS ports, where the forwarder's Roles Anywhere library calls CreateSession (both partitions
        share one: ``LocalPartition.tls_dir``'s default)."""
        if not self.options.roles_anywhere:
            return None
        return str(next(iter(self.partitions.values())).ca_bundle)

    # -- what users get --------------------------------------------------------------------------

    def table(self, region: str, logical: str) -> str:
        """This side's DynamoDB table of a logical table (output ``table_names``)."""
        tables = self.roots[region].outputs.get("table_names") or {}
        return str(tables.get(logical) or logical)

    def environment_document(self) -> dict[str, Any]:
        sides: dict[str, Any] = {}
        for region, partition in self.partitions.items():
            key_id, secret = self.app_credentials.get(region, ("", ""))
            outputs = self.roots[region].outputs if region in self.roots else {}
            sides[region] = {
                "endpoint_url": partition.endpoint_url,
                "region": region,
                "partition": partition.side.partition,
                "aws_access_key_id": key_id,
                "aws_secret_access_key": secret,
                "tables": {table.name: self.table(region, table.name) for table in self.options.tables},
                # the README's example table (pk, sk)
                "table": self.table(region, EXAMPLE_TABLE),
                "inbox_stream": outputs.get("inbox_stream_name"),
                "failure_queue_url": outputs.get("failure_queue_url"),
                # this partition's emulated Roles Anywhere (CreateSession over TLS) and the CA its
                # TLS certificate comes from (AWS_CA_BUNDLE)
                "rolesanywhere_endpoint": partition.rolesanywhere_endpoint,
                "ca_bundle": str(partition.ca_bundle),
            }
        ca_dir = self.options.ca_dir
        return {
            "sides": sides,
            "peer_writer_authentication": self.options.peer_writer_authentication,
            "pair_ca_dir": str(ca_dir) if ca_dir is not None else None,
            "version_attributes": {"timestamp": TIMESTAMP_ATTRIBUTE, "origin": ORIGIN_ATTRIBUTE},
            "logs": str(self.options.paths.logs),
        }

    def write_environment_json(self, extra: dict[str, Any] | None = None) -> Path:
        document = self.environment_document()
        document.update(extra or {})
        path = self.options.paths.environment_json
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def iam_record(self) -> IamRecord | None:
        """What the enforcing partitions decided so far, with the policies of the principals
        Terraform made (None when IAM is not enforced)."""
        if not self.options.enforce_iam or not self.partitions:
            return None
        calls: list[IamCall] = []
        policies = {}
        for region, partition in self.partitions.items():
            calls += [IamCall.parse(entry) for entry in partition.iam_calls()]
            iam = SideClients(partition.endpoint_url, region).iam
            for principal in module_principals(iam):
                policies[principal] = read_policies(iam, principal)
        return IamRecord(calls, policies)

    def pids(self) -> list[int]:
        pids = [p.pid for p in self.partitions.values() if p.pid]
        if self.runner:
            pids.extend(self.runner.pids())
        return pids

    # -- stop ------------------------------------------------------------------------------------

    def destroy(self) -> None:
        """terraform destroy of both roots (the partitions must still run)."""
        if self.roots and all(p.alive() for p in self.partitions.values()):
            self.say("terraform destroy (both roots)")
            in_parallel(list(self.roots.values()), lambda root: root.destroy())

    def stop(self) -> None:
        for root in self.roots.values():
            root.cancel()  # an apply still running (interrupted start) must not outlive the partitions
        if self.runner is not None:
            try:
                self.runner.stop()
            except Exception:
                log.exception("stopping the runner failed")
            self.runner = None
        self._stop_partitions()

    def _stop_partitions(self) -> None:
        for partition in self.partitions.values():
            try:
                partition.stop()
            except Exception:
                log.exception("stopping the %s partition failed", partition.region)
        self.partitions = {}


# The functions' own code in a zip (scripts/build_lambdas.py): functions/<name>/ at the zip's root and
# functions/replication/ under replication/; the vendored libraries are pinned and not compared.
SHARED_PACKAGE = "replication"


def stale_package_files(zip_path: Path, name: str, functions_dir: Path) -> list[str]:
    """The zip paths of function ``name``'s Python sources that the zip does not hold as they are
    now in ``functions_dir`` (changed, added or missing), sorted; empty when the zip is current.

    Why: the local environment runs the zips, not the source tree, as Lambda would. A zip built
    before the last change to ``functions/`` would run old code under the new tests' names, and a
    run (`python -m replication_ops.local demo`, which does not build) would measure the old engine
    without a word. Test modules and ``conftest.py`` are left out of the zips and out of this check.
    """
    sources: dict[str, Path] = {}
    for root, prefix in ((functions_dir / name, ""), (functions_dir / SHARED_PACKAGE, f"{SHARED_PACKAGE}/")):
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts or _is_test_file(relative.name):
                continue
            sources[prefix + relative.as_posix()] = path
    with zipfile.ZipFile(zip_path) as archive:
        packaged = {
            entry: archive.read(entry)
            for entry in archive.namelist()
            if entry in sources or (entry.startswith(f"{SHARED_PACKAGE}/") and entry.endswith(".py"))
        }
    stale = {entry for entry, path in sources.items() if packaged.get(entry) != path.read_bytes()}
    # A module removed from the shared package since the build (the function's own folder shares the
    # zip's root with vendored modules, so only the package's own folder says what was removed).
    stale |= packaged.keys() - sources.keys()
    return sorted(stale)


def _is_test_file(filename: str) -> bool:
    stem = filename.removesuffix(".py")
    return filename == "conftest.py" or stem.startswith("test_") or stem.endswith("_test")
