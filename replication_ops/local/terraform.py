"""Terraform for the local partitions: init, apply, output and destroy of both environment roots.

Each root is applied from a working copy under ``build/local/tf/<side>/`` so that the repository
stays clean (no ``.terraform``, lock file or state in ``envs/``): the copy sits at
``build/local/tf/<side>/envs/<side>/`` beside symlinks to the repository's ``modules`` and ``dist``,
so the root's relative module source resolves as it does in the repository. Nothing in the roots
changes for the local run: the provider reaches the side's moto server through ``AWS_ENDPOINT_URL``
and the demo's values go into ``local.auto.tfvars.json`` (only variables the root declares).

Where the providers come from is decided by ``scripts/terraform_config.sh``, the one place the
Makefile, CI and this module share (``TF_PROVIDER_MIRROR``, else a mirror found on the machine, else
the public registry). An init that cannot install the providers is a ``SetupError`` whose line comes
from that script too (``--hint``): set ``TF_PROVIDER_MIRROR``. Each failure names Terraform's own
``Error:`` line and the log, which holds this run only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication_ops.local.config import (
    DEMO_TABLES,
    DIST_DIR,
    LOCAL_ACCESS_KEY_ID,
    LOCAL_SECRET_ACCESS_KEY,
    REPO_ROOT,
    RESIDENCY_RULES_DEPLOYED,
    DemoTable,
    SetupError,
    Side,
)

log = logging.getLogger(__name__)

SHARED_ENTRIES = ("modules", "dist", "functions", "scripts")
VARIABLE_PATTERN = re.compile(r'^\s*variable\s+"([^"]+)"', re.MULTILINE)
CONFIG_SCRIPT = REPO_ROOT / "scripts" / "terraform_config.sh"
# What `terraform init` prints when it cannot install a provider (registry unreachable, or a mirror
# without a matching version): not worth retrying, the fix is TF_PROVIDER_MIRROR.
PROVIDER_INSTALL_FAILED = re.compile(r"Failed to (query available provider packages|install provider)")
ERROR_LINE = re.compile(r"^(?:[│╷ ]*)Error: (.+)$", re.MULTILINE)


class TerraformError(RuntimeError):
    pass


def declared_variables(root: Path) -> set[str]:
    names: set[str] = set()
    for path in root.glob("*.tf"):
        names.update(VARIABLE_PATTERN.findall(path.read_text(encoding="utf-8")))
    return names


def side_name_prefix(region: str) -> str:
    """The resource-name prefix the demo gives a side (the roots' own defaults)."""
    return "ddbrep-" + region.split("-", maxsplit=1)[0]


@dataclass(frozen=True)
class RolesAnywhereSettings:
    """One side's roles_anywhere values: the pair's CA certificate (PEM; its trust anchor's bundle)
    and ``host:port`` of the PEER partition's Roles Anywhere (``LocalPartition.rolesanywhere_endpoint``),
    where its forwarder calls CreateSession."""

    ca_certificate: str
    peer_endpoint: str


def demo_variables(
    side: Side,
    *,
    peer_endpoint_url: str,
    tables: tuple[DemoTable, ...] = DEMO_TABLES,
    residency_rules: bool = RESIDENCY_RULES_DEPLOYED,
    inbox_shards: int = 2,
    dist_dir: Path = DIST_DIR,
    roles_anywhere: RolesAnywhereSettings | None = None,
) -> dict[str, Any]:
    """The values the demo wants for one side (filtered later by what the root declares): each table
    under its own name, as logical name and DynamoDB table on both sides; cn-north-1's residency rules
    only with ``residency_rules`` (config.RESIDENCY_RULES_DEPLOYED).

    The module's ``peer_writer_authentication``: ``roles_anywhere`` with ``roles_anywhere`` given (the
    side's trust anchor, its forwarder's CreateSession endpoint, the peer's name its role trusts),
    else ``access_key``."""
    variables = {
        "region": side.region,
        "name": side_name_prefix(side.region),
        "tables": {table.name: _table_entry(side, table, residency_rules) for table in tables},
        "peer_region": side.peer,
        "peer_inbox_stream_name": f"{side_name_prefix(side.peer)}-inbox",
        "peer_endpoint_url": peer_endpoint_url,
        "forwarder_zip_path": str((dist_dir / "forwarder.zip").resolve()),
        "replicator_zip_path": str((dist_dir / "replicator.zip").resolve()),
        # Locally every call, the peer's forwarder's and the operator's probe alike, comes from
        # 127.0.0.1: the peer writer's key is accepted from there only (aws:SourceIp, enforced).
        "peer_nat_public_ips": ["127.0.0.1"],
        "operator_source_cidrs": ["127.0.0.1/32"],
        "inbox_stream_mode": "PROVISIONED",
        "inbox_shard_count": inbox_shards,
        "single_nat_gateway": True,
        "log_retention_days": 1,
        # The forwarders re-read their peer key every 10 s, so `ddb-replication rotate` waits 25 s here
        # (SECRET_MAX_AGE_SECONDS + 15) where a deployment's default waits 315 s.
        "secret_max_age_seconds": 10,
        "tags": {"Project": "ddb-cross-partition-replication", "Side": side.region, "Environment": "local"},
        "peer_writer_authentication": "access_key" if roles_anywhere is None else "roles_anywhere",
    }
    if roles_anywhere is not None:
        variables.update(
            {
                "roles_anywhere_ca_certificate": roles_anywhere.ca_certificate,
                "peer_rolesanywhere_endpoint": roles_anywhere.peer_endpoint,
                # the peer forwarder's certificate CN, "<its name>.forwarder.<its region>", is the one
                # this side's peer-writer role trusts
                "peer_name": side_name_prefix(side.peer),
            }
        )
    return variables


def _table_entry(side: Side, table: DemoTable, residency_rules: bool) -> dict[str, Any]:
    key_schema = {"hash_key": table.hash_key[0], "hash_key_type": table.hash_key[1]}
    if table.range_key:
        key_schema.update(range_key=table.range_key[0], range_key_type=table.range_key[1])
    entry: dict[str, Any] = {
        "create": True,
        "table_name": table.name,
        "key_schema": key_schema,
        "deletion_protection": False,
        "peer_table_name": table.name,
    }
    if residency_rules and side.region == "cn-north-1" and table.cn_residency:
        entry["residency"] = table.cn_residency
    return entry


def cli_config_file(base: Path) -> tuple[str, str]:
    """(the Terraform CLI configuration to use, the line saying where providers come from), from
    ``scripts/terraform_config.sh``, which writes ``base/terraform.rc`` unless the environment names
    a configuration already (the Makefile's, or the user's own). A wrong ``TF_PROVIDER_MIRROR`` is a
    ``SetupError`` with the script's line."""
    done = subprocess.run(
        ["bash", str(CONFIG_SCRIPT), str(base / "terraform.rc")],
        capture_output=True,
        text=True,
        check=False,
    )
    said = done.stderr.strip().splitlines()
    if done.returncode != 0:
        raise SetupError(said[-1] if said else f"{CONFIG_SCRIPT} failed (exit {done.returncode})")
    return done.stdout.strip(), (said[-1] if said else "")


def provider_hint() -> str:
    """What to do when `terraform init` could not install the providers (one line)."""
    done = subprocess.run(["bash", str(CONFIG_SCRIPT), "--hint"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "terraform init could not install the providers: set TF_PROVIDER_MIRROR"


@dataclass
class TerraformRoot:
    """One environment root applied to one local partition."""

    side: Side
    workspace: Path  # build/local/tf/<side>
    endpoint_url: str
    log_path: Path
    cli_config: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    terraform: str = "terraform"
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    @property
    def directory(self) -> Path:
        return self.workspace / "envs" / self.side.region

    def prepare(self, variables: dict[str, Any]) -> list[str]:
        """Lay out the working copy and write the tfvars; return the variables the root lacks."""
        source = self.side.root
        if not source.is_dir():
            raise TerraformError(f"{source} does not exist")
        self.workspace.mkdir(parents=True, exist_ok=True)
        for name in SHARED_ENTRIES:
            link = self.workspace / name
            if not link.is_symlink() and not link.exists():
                link.symlink_to(REPO_ROOT / name, target_is_directory=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        # A fresh partition holds none of the resources a previous run's state names.
        for pattern in ("*.tf", "terraform.tfstate*", ".terraform.tfstate.lock.info"):
            for path in self.directory.glob(pattern):
                path.unlink()
        for path in source.glob("*.tf"):
            shutil.copy2(path, self.directory / path.name)
        declared = declared_variables(self.directory)
        wanted = {name: value for name, value in variables.items() if name in declared}
        missing = sorted(set(variables) - declared)
        (self.directory / "local.auto.tfvars.json").write_text(json.dumps(wanted, indent=2), encoding="utf-8")
        return missing

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_"))}
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
                "AWS_REGION": self.side.region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "CHECKPOINT_DISABLE": "1",
            }
        )
        if self.cli_config:
            env["TF_CLI_CONFIG_FILE"] = self.cli_config
        return env

    def run(self, *args: str, capture: bool = False) -> str:
        command = [self.terraform, f"-chdir={self.directory}", *args]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("a", encoding="utf-8") as log_file:
            log_file.write(f"\n$ {' '.join(command)}\n")
            log_file.flush()
            with self._lock:
                if self._cancelled:
                    raise TerraformError(f"terraform {args[0]} for {self.side.region}: cancelled")
                self._process = subprocess.Popen(
                    command,
                    env=self.environment(),
                    stdout=subprocess.PIPE if capture else log_file,
                    stderr=log_file,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    start_new_session=True,  # Ctrl-C goes to the orchestrator, which stops us in order
                )
            try:
                stdout, _ = self._process.communicate()
            finally:
                returncode = self._process.wait()
                with self._lock:
                    self._process = None
        if returncode != 0:
            output = _read_from(self.log_path, offset)
            if args[0] == "init" and PROVIDER_INSTALL_FAILED.search(output):
                raise SetupError(provider_hint())
            errors = ERROR_LINE.findall(output)
            cause = errors[0].strip() if errors else f"exit {returncode}, no Error: line"
            raise TerraformError(
                f"terraform {args[0]} failed for {self.side.region}: {cause} (log: {self.log_path})"
            )
        return stdout if capture else ""

    def cancel(self, grace: float = 10.0) -> None:
        """Stop a running command (Terraform stops gracefully on SIGINT) and refuse further ones."""
        with self._lock:
            self._cancelled = True
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color")

    def apply(self, parallelism: int = 10) -> None:
        self.run("apply", "-input=false", "-auto-approve", "-no-color", f"-parallelism={parallelism}")
        self.read_outputs()

    def read_outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json", "-no-color", capture=True) or "{}")
        self.outputs = {name: entry.get("value") for name, entry in raw.items()}
        return self.outputs

    def destroy(self) -> None:
        self.run("destroy", "-input=false", "-auto-approve", "-no-color")


def _read_from(path: Path, offset: int) -> str:
    """What a command wrote to its log (the log holds the run's earlier commands too)."""
    try:
        with path.open("rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode("utf-8", "replace")
    except OSError:
        return ""


def in_parallel(roots: list[TerraformRoot], action: Callable[[TerraformRoot], None]) -> None:
    """Run an action on every root at once; raise the first error after all have finished."""
    errors: list[BaseException] = []

    def run(root: TerraformRoot) -> None:
        try:
            action(root)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(root,), name=f"tf-{root.side.region}") for root in roots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def terraform_available(binary: str = "terraform") -> bool:
    return shutil.which(binary) is not None
