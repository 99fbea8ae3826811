"""Names, paths and defaults shared by the local environment's modules."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO_ROOT / "build" / "local"


def lambda_architecture(machine: str) -> str:
    """Lambda's name for the instruction set of ``platform.machine()`` (``x86_64`` or ``arm64``;
    another machine gets ``x86_64``, whose zips hold the same pure-Python code)."""
    return "arm64" if machine.lower() in ("aarch64", "arm64", "armv8l") else "x86_64"


# The functions run here, in worker processes of this machine's Python: the zips built for its
# instruction set (`make package` builds dist/x86_64/ and dist/arm64/), so that compiled parts load.
LOCAL_ARCHITECTURE = lambda_architecture(platform.machine())
DIST_DIR = REPO_ROOT / "dist" / LOCAL_ARCHITECTURE
# The functions' sources, which the zips must hold as they are now (environment.stale_package_files).
FUNCTIONS_DIR = REPO_ROOT / "functions"

TIMESTAMP_ATTRIBUTE = "last_update_timestamp"
ORIGIN_ATTRIBUTE = "last_updater_region"

# Whether cn-north-1's entry of the `profiles` table carries its residency rules (RESIDENCY_RULES
# below) in the Terraform variables: the demo's default. Without them (EnvironmentOptions.residency_rules
# False) the oracle expects plain replication and the canary check finds the canary on the us side.
RESIDENCY_RULES_DEPLOYED = True
# What of `profiles` may leave cn-north-1 (docs/residency.md's worked example).
RESIDENCY_ATTRIBUTE = "residency"
RESIDENCY_RULES: dict[str, Any] = {
    "export_filter": f"{RESIDENCY_ATTRIBUTE} == 'GLOBAL'",
    "excluded_attributes": ["national_id"],
}


@dataclass(frozen=True)
class DemoTable:
    """One of the demo's tables: its logical name (also its DynamoDB table name on both sides), its key
    (name, type S/N/B; no range key: a hash-only key) and cn-north-1's residency rules (None: none)."""

    name: str
    hash_key: tuple[str, str]
    range_key: tuple[str, str] | None = None
    cn_residency: dict[str, Any] | None = None

    @property
    def key_names(self) -> tuple[str, ...]:
        return (self.hash_key[0],) + ((self.range_key[0],) if self.range_key else ())

    def key(self, pk: str, sk: str) -> dict[str, dict[str, Any]]:
        """The typed key of the load generator's key (``pk``, ``sk``): a number key is ``pk`` (digits),
        a binary one the UTF-8 of the text after a byte that is never UTF-8 (0xFF), so that it is
        binary indeed; a hash-only key ignores ``sk``."""
        key = {self.hash_key[0]: _typed_key(self.hash_key[1], pk)}
        if self.range_key:
            key[self.range_key[0]] = _typed_key(self.range_key[1], sk)
        return key


def _typed_key(type_name: str, text: str) -> dict[str, Any]:
    if type_name == "N":
        return {"N": text}
    if type_name == "B":
        return {"B": b"\xff" + text.encode("utf-8")}
    return {"S": text}


# The demo's tables (issue 11): a hash-only number key, a composite key with a binary range key, and
# the user profiles (composite S keys), which in cn-north-1 carry residency rules. Their key attribute
# names differ, so one key string (``watcher.key_of``) never names items of two tables.
ACCOUNTS = DemoTable("accounts", ("account_id", "N"))
EVENTS = DemoTable("events", ("stream_id", "S"), ("event_id", "B"))
PROFILES = DemoTable("profiles", ("pk", "S"), ("sk", "S"), cn_residency=RESIDENCY_RULES)
DEMO_TABLES: tuple[DemoTable, ...] = (ACCOUNTS, EVENTS, PROFILES)
# The table of the README's example (`make up`): pk and sk, both S.
EXAMPLE_TABLE = PROFILES.name

# How each side's forwarder gets its right to write into the peer's inbox: the module's variable
# peer_writer_authentication, with its values. The local environment deploys roles_anywhere unless told
# otherwise (`--peer-writer-authentication access_key`): a certificate of the pair's CA (made once under
# build/local/pair-ca/) exchanged with the peer partition's emulated Roles Anywhere for a role session.
PEER_WRITER_AUTHENTICATION_MODES: tuple[str, ...] = ("access_key", "roles_anywhere")
DEFAULT_PEER_WRITER_AUTHENTICATION = "roles_anywhere"
# The common name of the local pair's CA certificate.
LOCAL_PAIR_CA_NAME = "ddb-replication local pair CA"

# The local administrator's key (an IAM user with an Allow-everything policy in each partition, made
# by the launcher): Terraform, the load generator and the runner's bookkeeping use it.
# Nothing real is ever used.
LOCAL_ACCESS_KEY_ID = "AKIALOCALDEMO0000000"
LOCAL_SECRET_ACCESS_KEY = "local-demo-secret-not-a-real-key"
# The Lambda service's own key: with IAM enforced it may only assume roles that trust
# lambda.amazonaws.com (the runner assumes each function's execution role with it).
LAMBDA_SERVICE_ACCESS_KEY_ID = "AKIALOCALLAMBDASVC00"
LAMBDA_SERVICE_SECRET_ACCESS_KEY = "local-lambda-service-not-a-real-key"


class SetupError(Exception):
    """Something to fix before a run can start (a missing file or tool, a wrong setting, a port in use,
    no way to install Terraform's providers): reported as one line naming the fix, exit 2, no
    traceback, and never retried (trying again cannot help)."""


@dataclass(frozen=True)
class Side:
    """One side of the pair: a region in its own partition, with its Terraform root."""

    region: str
    partition: str
    peer: str

    @property
    def root(self) -> Path:
        return REPO_ROOT / "envs" / self.region


SIDES: dict[str, Side] = {
    "cn-north-1": Side("cn-north-1", "aws-cn", "us-east-1"),
    "us-east-1": Side("us-east-1", "aws", "cn-north-1"),
}
SIDE_NAMES: tuple[str, ...] = tuple(SIDES)


@dataclass(frozen=True)
class Paths:
    """Where one run keeps its files (build/local by default; tests use a temporary folder)."""

    base: Path = BUILD_DIR

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def terraform(self) -> Path:
        return self.base / "tf"

    @property
    def functions(self) -> Path:
        return self.base / "functions"

    @property
    def pair_ca(self) -> Path:
        """The pair's CA folder (``ddb-replication ca init`` layout: ca.pem, ca.key, issued/), made
        once and reused by every run on this base; roles_anywhere mode only."""
        return self.base / "pair-ca"

    @property
    def environment_json(self) -> Path:
        return self.base / "environment.json"

    @property
    def report_json(self) -> Path:
        return self.base / "report.json"

    @property
    def iam_json(self) -> Path:
        return self.base / "iam.json"

    @property
    def pid_file(self) -> Path:
        return self.base / "up.pid"

    @property
    def up_log(self) -> Path:
        return self.base / "up.log"

    def ensure(self) -> None:
        for path in (self.base, self.logs, self.terraform, self.functions):
            path.mkdir(parents=True, exist_ok=True)

    def fresh_logs(self) -> None:
        """Start a run with an empty logs folder: a log describes one run, its first error is this
        run's (logs appended across runs once showed a run's old errors at the top)."""
        if self.logs.is_dir():
            for path in self.logs.iterdir():
                if path.is_file():
                    path.unlink()
