"""The two sides of a pair: how to reach each (profile, region, endpoint URL) and what Terraform
named its resources (``terraform output -json`` of its root, or a saved copy of that output).

Sides are labelled ``cn`` and ``us`` on the command line (``--cn-profile``, ``--us-root``, ...);
everything else (region, tables, stream, secret, queue, function names) comes from the outputs. An
endpoint serves a map of tables (output ``table_names``: logical name -> this side's table); the
commands that work on tables take a view of the pair for one logical table (``Pair.for_table``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, UnknownRegionError

from replication.errors import ConfigurationError
from replication.residency import ResidencyRules
from replication.settings import (
    TABLE_NAME_PATTERN,
    ServedTable,
    SideSettings,
    TableSettings,
    VersionAttributes,
    read_tables,
    table_arn_of_stream,
)
from replication.table_writer import TableWriter
from replication_ops.arguments import REGION_PATTERN, url
from replication_ops.errors import ConfigError, OpsError, aws_errors

LABELS = ("cn", "us")
# The partition each side must be in: the pair replicates between AWS China and the commercial
# partition (https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html).
PARTITIONS = {"cn": "aws-cn", "us": "aws"}
EXAMPLE_REGIONS = {"cn": "cn-north-1", "us": "us-east-1"}
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=64,
)
TERRAFORM_TIMEOUT_SECONDS = 120
# Outputs every replication root has (envs/*/outputs.tf): a document with neither is some other file.
REPLICATION_OUTPUTS = ("region", "table_names")
SAVE_OUTPUTS = "save them with `terraform -chdir=envs/cn-north-1 output -json > cn.json`"


@dataclass
class SideOptions:
    """What the command line says about one side."""

    label: str
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    root: str | None = None
    outputs_file: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


def parse_outputs(document: Any, source: str) -> dict[str, Any]:
    """Outputs as ``terraform output -json`` prints them ({name: {"value": ...}}), or a flat map."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a JSON object of Terraform outputs")
    if not document:
        raise ConfigError(f"{source}: no outputs (has the root been applied?)")
    outputs = {
        name: (value["value"] if isinstance(value, dict) and "value" in value else value)
        for name, value in document.items()
    }
    if not any(name in outputs for name in REPLICATION_OUTPUTS):
        raise ConfigError(
            f"{source} holds no outputs of a replication root (no {' or '.join(REPLICATION_OUTPUTS)}): "
            f"{SAVE_OUTPUTS}"
        )
    return outputs


def terraform_outputs(root: str) -> dict[str, Any]:
    source = f"terraform -chdir={root} output -json"
    if not Path(root).is_dir():
        raise ConfigError(f"{root}: no such Terraform root")
    if not any(Path(root).glob("*.tf")):
        raise ConfigError(
            f"{root} is not a Terraform root (it holds no .tf file): give a root such as envs/cn-north-1"
        )
    try:
        done = subprocess.run(
            ["terraform", f"-chdir={root}", "output", "-json"],
            capture_output=True,
            text=True,
            timeout=TERRAFORM_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(
            "terraform is not on PATH (or save the outputs and use --cn-outputs/--us-outputs)"
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{source} took more than {TERRAFORM_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        raise ConfigError(f"{source} failed: {_terraform_error(done.stderr)}")
    try:
        return parse_outputs(json.loads(done.stdout or "{}"), source)
    except json.JSONDecodeError:
        raise ConfigError(f"{source} did not print JSON") from None


def _terraform_error(stderr: str) -> str:
    """Terraform's error line, without the box it draws around diagnostics (``│ Error: ...``)."""
    lines = [line.strip().lstrip("│╷╵ ").strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines[-1:] or ["no message"])[0]


def file_outputs(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read outputs file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not UTF-8 (`terraform output -json > file` in PowerShell writes UTF-16): "
            "save it as UTF-8"
        ) from None
    try:
        return parse_outputs(json.loads(text), path)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not JSON ({error.msg}, line {error.lineno}): {SAVE_OUTPUTS}") from None


class Side:
    """One side: its Terraform outputs and lazily created, thread-safe boto3 clients."""

    def __init__(
        self,
        label: str,
        outputs: dict[str, Any],
        session: Any,
        endpoint_url: str | None,
        source: str,
        *,
        table: str | None = None,
    ) -> None:
        self.label = label
        self.table = table  # the logical table of this view (``for_table``), None for the whole side
        self.outputs = outputs
        self.session = session
        self.endpoint_url = endpoint_url
        self.source = source
        self._clients: dict[str, Any] = {}
        self._deployed: list[Deployment] = []  # this side's deployed settings, read once (``deployed``)
        self._lock = threading.Lock()
        self._deployed_lock = threading.Lock()  # not ``_lock``: reading them makes a client

    @property
    def region(self) -> str:
        """--cn-region/--us-region, else the Terraform output ``region``, else the profile's region
        (the session was made with the first two)."""
        region = self.session.region_name or self.outputs.get("region")
        if not region:
            raise ConfigError(f"{self.label}: no region (Terraform output 'region' or --{self.label}-region)")
        return str(region)

    @property
    def name(self) -> str:
        """How messages name this side: label and region (and the table of a view)."""
        region = self.session.region_name or self.outputs.get("region") or "?"
        return f"{self.label} ({region})" + ("" if self.table is None else f" table {self.table}")

    def partition(self) -> str | None:
        """The partition of this side's region (botocore's endpoint data), None when there is no region."""
        region = self.session.region_name or self.outputs.get("region")
        if not region:
            return None
        try:
            return str(self.session.get_partition_for_region(str(region)))
        except UnknownRegionError:
            raise ConfigError(
                f"{self.label}: region {region!r} (from {self.source}) is in no AWS partition: "
                f"give the {self.label} side's region, e.g. {EXAMPLE_REGIONS[self.label]}"
            ) from None

    def table_arns(self) -> dict[str, str]:
        """Logical table -> ``arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME`` of this side's table,
        the account taken from the ARNs among the outputs. Empty when the outputs hold no region or no
        map ``table_names`` (the commands that work on tables refuse that through ``tables``)."""
        names, partition = self.outputs.get("table_names"), self.partition()
        if not isinstance(names, dict) or not partition:
            return {}
        accounts = [
            str(value).split(":")[4]
            for value in self.outputs.values()
            if isinstance(value, str) and value.startswith("arn:") and value.count(":") >= 5
        ]
        account = next((a for a in accounts if a), "?")
        return {
            logical: f"arn:{partition}:dynamodb:{self.region}:{account}:table/{name}"
            for logical, name in names.items()
            if isinstance(name, str) and name
        }

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if value in (None, "", [], {}):
            raise ConfigError(f"{self.name}: Terraform output {name!r} is missing from {self.source}")
        return str(value)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                with aws_errors(self.name):
                    self._clients[service] = self.session.client(
                        service, region_name=self.region, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
                    )
            return self._clients[service]

    def tables(self) -> dict[str, str]:
        """Logical table -> this side's DynamoDB table (output ``table_names``)."""
        value = self.outputs.get("table_names")
        if not value:
            raise ConfigError(f"{self.name}: Terraform output 'table_names' is missing from {self.source}")
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and TABLE_NAME_PATTERN.fullmatch(k) and isinstance(v, str) and v
            for k, v in value.items()
        ):
            raise ConfigError(
                f"{self.name}: Terraform output 'table_names' in {self.source} is not a map of logical "
                "table names to table names (is it the output of this project's root?)"
            )
        return value

    def table_of_stream(self, stream_arn: str) -> str | None:
        """The logical table whose stream ``stream_arn`` is (``...:table/NAME/stream/LABEL``), or None."""
        table_name = table_arn_of_stream(stream_arn).rpartition(":table/")[2]
        return next((logical for logical, name in self.tables().items() if name == table_name), None)

    def for_table(self, name: str) -> Side:
        """This side as seen by a command on logical table ``name``: same outputs, session and clients."""
        if name not in self.tables():
            raise ConfigError(
                f"{self.name} has no table {name!r} (its tables: {', '.join(sorted(self.tables()))})"
            )
        view = Side(self.label, self.outputs, self.session, self.endpoint_url, self.source, table=name)
        view._clients, view._lock = self._clients, self._lock
        view._deployed, view._deployed_lock = self._deployed, self._deployed_lock
        return view

    def table_name(self) -> str:
        """This view's DynamoDB table (``for_table``)."""
        if self.table is None:
            raise ValueError("a whole side has many tables: take a view with for_table(name)")
        return self.tables()[self.table]

    def deployed(self) -> Deployment:
        """What this side's forwarder was deployed with (``deployed_tables``), read once per side."""
        with self._deployed_lock:
            if not self._deployed:
                self._deployed.append(deployed_tables(self))
            return self._deployed[0]

    def served(self) -> ServedTable:
        """This view's table as the deployed functions serve it (``for_table``): its settings and its
        residency rules. ConfigError when the forwarder does not serve it under this logical name, or
        serves another DynamoDB table under it than the outputs name (outputs of another deployment)."""
        tables = self.deployed().tables
        served = tables.get(str(self.table))
        if served is None:
            raise ConfigError(
                f"{self.name}: the deployed forwarder serves no table {self.table!r} (its table map: "
                f"{', '.join(sorted(tables))}): are the outputs in {self.source} those of this deployment?"
            )
        if served.table.table_name != self.table_name():
            raise ConfigError(
                f"{self.name}: the deployed forwarder serves {served.table.table_name!r} as {self.table!r}, "
                f"the outputs in {self.source} name {self.table_name()!r}: give this deployment's outputs"
            )
        return served

    def residency(self) -> ResidencyRules:
        """What of this view's table may leave this side, as deployed (docs/residency.md)."""
        return self.served().residency

    def table_settings(self, names: VersionAttributes) -> TableSettings:
        """The engine's writer settings of this view's table as its functions have them (tombstone
        table and TTL, clock skew, what the rules add), with the version attributes ``names``."""
        return dataclasses.replace(self.served().table, version_attributes=names)

    def writer(self, names: VersionAttributes) -> TableWriter:
        return TableWriter(self.client("dynamodb"), self.table_settings(names))


def _trust_local_tls(sides: dict[str, Any]) -> None:
    """The local partitions serve Roles Anywhere's CreateSession over TLS with a certificate of a
    local CA, named per side as ``ca_bundle`` in ``environment.json``: this process trusts it the
    SDKs' standard way, ``AWS_CA_BUNDLE`` (https://docs.aws.amazon.com/sdkref/latest/guide/feature-gtls.html),
    which the Roles Anywhere session passes as ``verify``; over one set already (a machine's own
    bundle cannot verify the local CA), since with ``--local-env`` the local pair is all the CLI
    talks to. The local endpoints are plain HTTP otherwise, so nothing else changes."""
    bundles = {entry.get("ca_bundle") for entry in sides.values()} - {None, ""}
    if len(bundles) == 1:
        os.environ["AWS_CA_BUNDLE"] = str(bundles.pop())


def apply_local_environment(options: dict[str, SideOptions], path: str) -> None:
    """Fill endpoint, region, keys and the Terraform outputs of both sides from the local environment's
    ``environment.json`` (``make up``). The command line gives no other side flag with it but a saved
    copy of the outputs (``cli.check_combinations``)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        sides = document["sides"]
        if not isinstance(sides, dict) or not all(isinstance(entry, dict) for entry in sides.values()):
            raise TypeError("sides is not a map of side documents")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ConfigError(
            f"{path} is not a local environment file (`make up` writes build/local/environment.json)"
        ) from None
    server = document.get("server_pid")
    if isinstance(server, int) and not _running(server):
        raise ConfigError(
            f"{path} describes a local pair that is no longer running (server pid {server} is gone): "
            "start it again with `make up`"
        )
    base = Path(path).resolve().parent
    _trust_local_tls(sides)
    for label, side in options.items():
        match = [entry for region, entry in sides.items() if region.startswith(label + "-")]
        if len(match) != 1:
            raise ConfigError(f"{path}: no single side whose region starts with {label}-")
        entry = match[0]
        side.endpoint_url = _checked(path, label, "endpoint_url", entry.get("endpoint_url"), url)
        side.region = _checked(path, label, "region", entry.get("region"), _region)
        side.access_key_id = entry.get("aws_access_key_id") or None
        side.secret_access_key = entry.get("aws_secret_access_key") or None
        root = base / "tf" / str(entry.get("region")) / "envs" / str(entry.get("region"))
        outputs = root.parent.parent / "outputs.json"
        if side.outputs_file:
            continue
        if outputs.is_file():
            side.outputs_file = str(outputs)
        elif root.is_dir():
            side.root = str(root)
        else:
            raise ConfigError(f"{path}: the {label} side's Terraform root {root} is gone (`make up` again)")


def _region(text: str) -> str:
    if not REGION_PATTERN.match(text):
        raise argparse.ArgumentTypeError("not an AWS region code")
    return text


def _checked(path: str, label: str, name: str, value: Any, check: Any) -> str:
    """A value of the local environment file, checked as its command-line flag would be."""
    try:
        if not isinstance(value, str):
            raise argparse.ArgumentTypeError("not text")
        return str(check(value))
    except argparse.ArgumentTypeError:
        raise ConfigError(
            f"{path}: the {label} side's {name} {value!r} is not valid: `make up` writes the file again"
        ) from None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # no such process, or no pid at all
        return False
    except PermissionError:
        return True
    return True


def make_side(options: SideOptions) -> Side:
    label = options.label
    if options.outputs_file:
        outputs, source = file_outputs(options.outputs_file), options.outputs_file
    elif options.root:
        outputs, source = terraform_outputs(options.root), f"terraform output of {options.root}"
    else:
        raise ConfigError(
            f"{label}: say where its Terraform outputs are: --{label}-root DIR or --{label}-outputs FILE"
        )
    region = options.region or outputs.get("region")
    if (
        not options.region
        and region is not None
        and not (isinstance(region, str) and REGION_PATTERN.match(region))
    ):
        raise ConfigError(
            f"{source}: the output 'region' is {region!r}, not an AWS region code "
            f"(e.g. {EXAMPLE_REGIONS[label]}): are these the outputs of a replication root?"
        )
    with aws_errors(f"{label} ({region})"):
        session = boto3.session.Session(
            profile_name=options.profile,
            region_name=region,
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
        )
    return Side(label, outputs, session, options.endpoint_url, source)


@dataclass
class Pair:
    cn: Side
    us: Side

    def side(self, label: str) -> Side:
        return self.cn if label == "cn" else self.us

    def peer(self, side: Side) -> Side:
        return self.us if side is self.cn else self.cn

    def both(self) -> tuple[Side, Side]:
        return self.cn, self.us

    def tables(self, selected: str | None = None) -> list[str]:
        """The logical tables a command works on: ``selected`` (``--table``), or every table, which
        both sides must serve alike. ConfigError (exit 2) naming the table otherwise."""
        cn, us = set(self.cn.tables()), set(self.us.tables())
        if selected is not None:
            missing = [side.name for side, names in ((self.cn, cn), (self.us, us)) if selected not in names]
            if missing:
                raise ConfigError(
                    f"no table {selected!r} on {' and '.join(missing)} (tables: {', '.join(sorted(cn | us))})"
                )
            return [selected]
        if cn != us:
            raise ConfigError(
                f"the sides serve different tables (only on cn: {', '.join(sorted(cn - us)) or 'none'}; "
                f"only on us: {', '.join(sorted(us - cn)) or 'none'}): add them to both table maps, "
                "or name one with --table"
            )
        return sorted(cn)

    def for_table(self, name: str) -> Pair:
        return Pair(self.cn.for_table(name), self.us.for_table(name))


def _flag(options: SideOptions) -> str:
    """The flag that decided where a side is: its region, outputs file or root."""
    given = "region" if options.region else "outputs" if options.outputs_file else "root"
    return f"--{options.label}-{given}"


def check_pair(pair: Pair, options: dict[str, SideOptions]) -> None:
    """Refuse a pair that is not a cn side in aws-cn and a us side in aws, or whose sides name the
    same table (under any logical names of the two table maps): swapped or repeated outputs would
    make verify compare a table with itself and backfill copy a table onto itself."""
    same = sorted(set(pair.cn.table_arns().values()) & set(pair.us.table_arns().values()))
    if same:
        raise ConfigError(
            f"both sides name the same table {same[0]} ({pair.cn.source}; {pair.us.source}): give the cn "
            "side's outputs to --cn-* and the us side's to --us-*, e.g. --cn-root envs/cn-north-1 "
            "--us-root envs/us-east-1"
        )
    cn_partition, us_partition = pair.cn.partition(), pair.us.partition()
    if (cn_partition, us_partition) == (PARTITIONS["us"], PARTITIONS["cn"]):
        raise ConfigError(
            f"the sides are swapped: the cn side ({pair.cn.source}) is in {pair.cn.region} and the us side "
            f"({pair.us.source}) in {pair.us.region}: exchange the values of {_flag(options['cn'])} and "
            f"{_flag(options['us'])}"
        )
    for side, partition in ((pair.cn, cn_partition), (pair.us, us_partition)):
        wanted = PARTITIONS[side.label]
        if partition is not None and partition != wanted:
            raise ConfigError(
                f"the {side.label} side ({side.source}) is in {side.region}, partition {partition}, but the "
                f"{side.label} side is in {wanted} (e.g. {EXAMPLE_REGIONS[side.label]}): give "
                f"{_flag(options[side.label])} the {side.label} side's"
                + (" region" if options[side.label].region else " outputs")
            )


def function_environment(side: Side, output: str) -> dict[str, str]:
    """The environment variables of this side's function named by Terraform output ``output``
    (``forwarder_function_name``, ``replicator_function_name``): GetFunctionConfiguration
    (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConfiguration.html,
    ``Environment.Variables``). Raises ConfigError (no such output), AccessError or OpsError."""
    name = side.output(output)
    with aws_errors(f"{side.name} Lambda"):
        config = side.client("lambda").get_function_configuration(FunctionName=name)
    return dict(config.get("Environment", {}).get("Variables", {}))


def deployed_version_attributes(side: Side) -> VersionAttributes | None:
    """The version attributes this side's replicator uses: its Lambda environment, read by the
    engine's own ``VersionAttributes.from_env``. None when the function cannot be read (no output
    naming it, no right to GetFunctionConfiguration, unreachable): then the flags are taken as given."""
    try:
        return VersionAttributes.from_env(function_environment(side, "replicator_function_name"))
    except (ClientError, BotoCoreError, OpsError):
        return None


@dataclass(frozen=True)
class Deployment:
    """What one side's forwarder was deployed with: its shared settings (the origin its writes carry,
    ``local_region``) and its tables by logical name, each with its residency rules."""

    settings: SideSettings
    tables: dict[str, ServedTable]


def deployed_tables(side: Side) -> Deployment:
    """This side's table map as its forwarder reads it: the parameters at the forwarder's
    ``TABLES_PARAMETER_PATH``, checked against its ``TABLES_SHA256`` and parsed by the engine's own
    ``read_tables`` (GetFunctionConfiguration, then GetParametersByPath on that path). The residency
    rules there are what the forwarder lets leave this side, so they are what verify compares and
    backfill/repair copy. Without them nothing may be copied (fail closed): an output or a right
    missing, a map that is not the deployed one, or a setting the engine would refuse, is an error
    naming it (exit 2 or 3). ``AWS_REGION``, which Lambda sets in the function itself, is this side's
    region here."""
    variables = {"AWS_REGION": side.region, **function_environment(side, "forwarder_function_name")}
    try:
        settings = SideSettings.from_env(variables)
        with aws_errors(f"{side.name} Parameter Store"):
            tables = read_tables(variables, settings, side.client("ssm"))
    except ConfigurationError as error:
        raise ConfigError(
            f"{side.name}: the forwarder's settings do not parse ({error}): deploy the module again"
        ) from None
    return Deployment(settings, tables)


def check_version_attributes(pair: Pair, names: VersionAttributes) -> None:
    """Refuse --timestamp-attribute/--origin-attribute that differ from what the replicators use:
    backfill would write every item as unversioned, verify --repair would judge by the wrong
    attributes."""
    for side in pair.both():
        deployed = deployed_version_attributes(side)
        if deployed is not None and deployed != names:
            raise ConfigError(
                f"{side.name}: its replicator versions items with {deployed.timestamp!r} and "
                f"{deployed.origin!r}, not {names.timestamp!r} and {names.origin!r}: give "
                f"--timestamp-attribute {deployed.timestamp} --origin-attribute {deployed.origin}"
            )


PAIRED_OUTPUTS = ("region", "table_names", "inbox_stream_name")  # peer_settings keys named like outputs


def check_peers(pair: Pair) -> None:
    """Each root's ``peer_settings`` output says which peer it was deployed with: outputs of two
    different deployments (a staging cn with a production us) are refused before they are compared
    or copied between. ``table_names`` is compared per logical table both maps hold (a table only
    one side serves is ``Pair.tables``' to refuse, or to leave out with ``--table``)."""
    for side in pair.both():
        expected = side.outputs.get("peer_settings")
        if not isinstance(expected, dict):
            continue
        peer = pair.peer(side)
        for name in PAIRED_OUTPUTS:
            for what, wanted, actual in _paired(name, expected.get(name), peer.outputs.get(name)):
                if wanted and actual and wanted != actual:
                    raise ConfigError(
                        f"the two sides are not one pair: {side.source} expects its peer's {what} to be "
                        f"{wanted!r}, but {peer.source} has {actual!r}: give the outputs of the two roots "
                        "deployed together"
                    )


def _paired(name: str, wanted: Any, actual: Any) -> list[tuple[str, Any, Any]]:
    """(what, expected, found) to compare for one key of ``peer_settings``: a map is compared per key
    present in both (``table_names``: the peer's table of each logical table)."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        shared = sorted(wanted.keys() & actual.keys())
        return [(f'{name}["{key}"]', wanted[key], actual[key]) for key in shared]
    return [(name, wanted, actual)]


def make_pair(options: dict[str, SideOptions], local_env: str | None = None) -> Pair:
    """Both sides, checked to be a cn side in aws-cn and a us side in aws with different tables,
    deployed as each other's peer."""
    if local_env:
        apply_local_environment(options, local_env)
    pair = Pair(make_side(options["cn"]), make_side(options["us"]))
    check_pair(pair, options)
    check_peers(pair)
    return pair
