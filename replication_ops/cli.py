"""``ddb-replication``: the operations command line (argparse wiring only; the work is in the modules).

Exit codes: 0 ok; 1 differences found, a check failed or work left undone; 2 bad input or
configuration (arguments, Terraform outputs, unknown table, missing secret, unknown profile);
3 AWS access problem (no credentials, access denied, endpoint unreachable); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3

from replication.settings import DEFAULT_ORIGIN_ATTRIBUTE, DEFAULT_TIMESTAMP_ATTRIBUTE, VersionAttributes
from replication_ops import (
    arguments,
    backfill,
    certificate_credentials,
    certificates,
    credentials,
    observed_load,
    planning,
    prices,
    redrive,
    revocation,
    status,
    verify,
)
from replication_ops.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_OK,
    ConfigError,
    OpsError,
    aws_errors,
)
from replication_ops.progress import bars_enabled
from replication_ops.sides import LABELS, Pair, Side, SideOptions, check_version_attributes, make_pair

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command that signal ended
EXIT_INTERRUPTED = 130  # 128 + SIGINT

EXIT_CODES = """exit codes:
  0  success (verify: the tables are identical; status: healthy)
  1  differences found, a check failed or work was left undone
  2  bad input or configuration: arguments, Terraform outputs, unknown profile, table or secret
  3  AWS access problem: no credentials, access denied, endpoint unreachable
  130 interrupted (backfill: continue with --resume)
  141 the output's reader stopped reading (| head)"""

# ca touches only DIR: no side, no AWS call, nothing resumable, so 1, 3 and 130 cannot happen.
CA_EXIT_CODES = """exit codes:
  0  success (revoke: also a serial revoked already; the CRL is then unchanged)
  2  bad input: arguments, a DIR that already holds a CA (init) or holds none (issue, revoke), a
     serial the CA did not issue, a file that cannot be read or written
  130 interrupted
  141 the output's reader stopped reading (| head)"""

SIDES_HELP = """Each side is named cn or us. Its resource names come from `terraform output -json` of its root
(--cn-root envs/cn-north-1) or a saved copy of that output (--cn-outputs cn.json); its credentials
from a profile (--cn-profile) or the environment; --cn-endpoint-url for local or private endpoints.
--local-env build/local/environment.json fills endpoints, keys and roots from `make up` (then give no
other --cn-*/--us-* flag but saved --cn-outputs/--us-outputs). The cn side must be in the aws-cn
partition and the us side in aws, and the two must be different tables."""

ROOTS = "--cn-root envs/cn-north-1 --us-root envs/us-east-1"

EXAMPLES = {
    "credentials": f"""examples:
  ddb-replication credentials {ROOTS} --cn-profile china --us-profile global
  ddb-replication credentials --direction cn-to-us --cn-outputs cn.json --us-outputs us.json --json
  ddb-replication credentials --ca-dir build/local/pair-ca --local-env build/local/environment.json

Direction cn-to-us: the cn forwarder gets what it needs to write into the us inbox, in the cn side's
secret: in roles_anywhere mode (the us side's output roles_anywhere_profile_arn is set; the module's
default) a certificate issued from the pair's CA in --ca-dir, for the us side's peer-writer role; in
access_key mode a key of the us side's peer-writer user. A probe is then sent with it and the command
waits until the us replicator has recorded it. No private key or secret key is printed or written to
disk. A link whose secret already holds working credentials is only probed: to replace them, use
`ddb-replication rotate`.""",
    "rotate": f"""examples:
  ddb-replication rotate --direction cn-to-us {ROOTS} --cn-profile china --us-profile global
  ddb-replication rotate --ca-dir build/local/pair-ca --local-env build/local/environment.json

roles_anywhere mode: issues a new certificate from --ca-dir, stores it, probes it; if the probe is
refused the old secret is put back. The old certificate stays valid until it expires (revoke it with
`ca revoke` and `crl`). access_key mode: creates the user's second key, stores it, probes it, waits
until the forwarder re-reads the secret (its cache, SECRET_MAX_AGE_SECONDS, default 300 s, plus a
margin; it also re-reads at once when the peer rejects a key) and only then deletes the old key.
Refuses when the user already has two keys.""",
    "crl": f"""examples:
  ddb-replication crl --ca-dir ~/pair-ca {ROOTS} --cn-profile china --us-profile global

After `ddb-replication ca revoke`, puts DIR/crl.pem into the trust anchor of each side in
roles_anywhere mode (output roles_anywhere_trust_anchor_arn): IAM Roles Anywhere ImportCrl the first
time (enabled), UpdateCrl after. Running it again changes nothing. A side in access_key mode is
skipped.""",
    "backfill": f"""examples:
  ddb-replication backfill --from cn {ROOTS} --segments 8 --rate 500
  ddb-replication backfill --from cn {ROOTS} --resume      # after an interruption

Safe beside live replication: every item goes through the replicator's conditional writes, so a
newer item on the target is never overwritten and remembered deletes stay deleted. Items without
version attributes get the oldest version; the target's forwarder stamps them and sends them back.
Residency rules: only what the source side's rules let leave it is copied (an item its export filter
does not pass stays, counted as kept; excluded attributes never cross), read from the source's
deployed forwarder (its table map in Parameter Store); if they cannot be read, nothing is copied
(exit 2 or 3).""",
    "verify": f"""examples:
  ddb-replication verify {ROOTS}
  ddb-replication verify {ROOTS} --json --samples 50
  ddb-replication verify {ROOTS} --repair

Exit 0 only when both tables hold the same items. Item contents are never printed unless
--show-items. --repair writes the newest version (tombstones respected) where it is missing.
Residency rules (each side's, read from its deployed forwarder): excluded attributes are not
compared; an item its side's filter keeps there is no difference while the peer lacks it (kept), and
one while the peer holds it (restricted on the peer: --repair removes the peer's copy); repair copies
only what the source side's rules let leave it. Unreadable rules: exit 2 or 3, nothing compared.""",
    "redrive": f"""examples:
  ddb-replication redrive {ROOTS} --dry-run
  ddb-replication redrive {ROOTS} --side us --via invoke
  ddb-replication redrive --local-env build/local/environment.json --via local --delete-poison

A failed stream batch is read again from its stream (shard and sequence range from the failure
message) and processed again; its message is deleted only after success. Expired ranges are
reported: use `verify --repair` for them. Poison messages stay unless --delete-poison.""",
    "status": f"""examples:
  ddb-replication status {ROOTS}
  ddb-replication status --local-env build/local/environment.json --json

Exit 0 when both sides look healthy: mappings Enabled, no failure messages, no alarm in ALARM.""",
}


CA_EXAMPLES = """examples:
  ddb-replication ca init --dir ~/pair-ca
  ddb-replication ca issue --dir ~/pair-ca --cn ddbrep-cn.forwarder.cn-north-1
  ddb-replication ca revoke --dir ~/pair-ca --serial 3A0F57C2E1

The pair's certificate authority for IAM Roles Anywhere (the module's peer_writer_authentication =
roles_anywhere). It lives in DIR on the operator's machine: ca.key never goes into either account.
Give DIR/ca.pem to both roots as roles_anywhere_ca_certificate. A forwarder's certificate names it
NAME.forwarder.REGION (the peer root's output peer_writer_certificate_subject). After a revocation,
put DIR/crl.pem into both trust anchors: `ddb-replication crl --ca-dir DIR` (ImportCrl, then UpdateCrl)."""

DEFAULT_CA_NAME = "ddb-replication-pair-ca"


SIDE_FLAGS = ("root", "outputs", "profile", "region", "endpoint_url")  # --local-env allows only outputs
LOCAL_ENV_HINT = " (`make up` writes build/local/environment.json; is the local pair up?)"
ROOT_HINT = " (a Terraform root such as envs/cn-north-1)"
OUTPUTS_HINT = " (save one with `terraform -chdir=ROOT output -json > FILE`)"
PROBE_TIMEOUT = arguments.seconds(0, 3600, low_open=True)
PROBE_HELP = "seconds to wait for the probe, more than 0 and up to 3600 (60)"
SEGMENTS = arguments.whole(1, arguments.MAX_SCAN_SEGMENTS)
SEGMENTS_HELP = "parallel scan segments, one thread each"
SEGMENTS_RANGE = f"1 to {arguments.MAX_SCAN_SEGMENTS:,} (4)"
TABLE_HELP = "work on this logical table only (a key of the table map; default: every table)"
MAX_RATE = 1_000_000
MAX_PAGE_SIZE = 100_000
DISTRIBUTION = "ddb-cross-partition-replication"  # pyproject.toml's project name


def version() -> str:
    """The installed distribution's version (pyproject.toml), or why there is none."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "(not installed: run `make venv`)"


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    sides = common.add_argument_group("sides", SIDES_HELP)
    for label in LABELS:
        sides.add_argument(
            f"--{label}-root",
            type=arguments.existing_folder(ROOT_HINT),
            metavar="DIR",
            help=f"Terraform root of the {label} side",
        )
        sides.add_argument(
            f"--{label}-outputs",
            type=arguments.existing_file(OUTPUTS_HINT),
            metavar="FILE",
            help="saved `terraform output -json` of that root",
        )
        sides.add_argument(
            f"--{label}-profile",
            type=arguments.profile,
            metavar="NAME",
            help="AWS profile for that side's partition",
        )
        sides.add_argument(
            f"--{label}-region",
            type=arguments.region,
            metavar="REGION",
            help="region (default: the root's region output)",
        )
        sides.add_argument(
            f"--{label}-endpoint-url",
            type=arguments.url,
            metavar="URL",
            help="endpoint URL (local or private endpoints)",
        )
    sides.add_argument(
        "--local-env",
        type=arguments.existing_file(LOCAL_ENV_HINT),
        metavar="FILE",
        help="the local environment's environment.json (make up); sets both sides",
    )
    output = common.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    output.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    versions = common.add_argument_group("version attributes")
    versions.add_argument(
        "--timestamp-attribute",
        type=arguments.attribute_name,
        default=DEFAULT_TIMESTAMP_ATTRIBUTE,
        metavar="NAME",
        help="version timestamp attribute (%(default)s)",
    )
    versions.add_argument(
        "--origin-attribute",
        type=arguments.attribute_name,
        default=DEFAULT_ORIGIN_ATTRIBUTE,
        metavar="NAME",
        help="version origin attribute (%(default)s)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog="ddb-replication",
        description="Operate a cross-partition DynamoDB replication pair: peer credentials, backfill, "
        "verify and repair, redrive of failed batches, status.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            epilog=EXAMPLES[name] + "\n\n" + EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    directions = ("both", "cn-to-us", "us-to-cn")
    p = command(
        "credentials",
        "give each forwarder its peer credentials (a certificate, or a key in access_key mode), then "
        "probe them end to end",
    )
    p.add_argument(
        "--direction", choices=directions, default="both", help="which forwarder(s) (default both)"
    )
    p.add_argument("--probe-timeout", type=PROBE_TIMEOUT, default=60.0, metavar="S", help=PROBE_HELP)

    p = command(
        "rotate",
        "replace a forwarder's peer certificate or key; the forwarder holds working credentials throughout",
    )
    p.add_argument(
        "--direction", choices=directions, default="both", help="which forwarder(s) (default both)"
    )
    p.add_argument("--probe-timeout", type=PROBE_TIMEOUT, default=60.0, metavar="S", help=PROBE_HELP)
    p.add_argument(
        "--adoption-wait",
        type=arguments.seconds(0, 86_400),
        metavar="S",
        help="wait before deleting the old key, 0 to 86400 "
        "(default: the forwarder's SECRET_MAX_AGE_SECONDS + 15)",
    )
    p.add_argument(
        "--delete-unused",
        action="store_true",
        help="first delete a second key that the secret does not hold (an unfinished rotation)",
    )

    for name in ("credentials", "rotate"):
        _roles_anywhere_flags(commands.choices[name])

    p = command("crl", "import the pair CA's revocation list (ca revoke) into both trust anchors")
    p.add_argument(
        "--ca-dir", type=arguments.folder, required=True, metavar="DIR", help="the pair's CA folder (ca init)"
    )

    p = command("backfill", "copy the existing items of one side to the other by last-writer-wins")
    p.add_argument("--table", type=arguments.logical_table, metavar="NAME", help=TABLE_HELP)
    p.add_argument("--from", dest="source", choices=LABELS, required=True, help="the side to copy from")
    p.add_argument(
        "--segments", type=SEGMENTS, default=4, metavar="N", help=f"{SEGMENTS_HELP}, {SEGMENTS_RANGE}"
    )
    p.add_argument(
        "--rate",
        type=arguments.rate(MAX_RATE),
        default=0.0,
        metavar="ITEMS_PER_S",
        help=f"limit, 0.01 to {MAX_RATE:,} (0: none, the default)",
    )
    p.add_argument(
        "--page-size",
        type=arguments.whole(1, MAX_PAGE_SIZE),
        metavar="N",
        help=f"items per scan page (the checkpoint unit), 1 to {MAX_PAGE_SIZE:,} "
        "(default: DynamoDB's 1 MB page)",
    )
    p.add_argument(
        "--checkpoint",
        type=arguments.writable_file,
        metavar="FILE",
        help="written before the first copy and after every page "
        "(default .ddb-replication/backfill-FROM-to-TO-TABLE.json; one table's, so with --table)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint (give the same --segments)"
    )
    group.add_argument("--restart", action="store_true", help="ignore and overwrite an existing checkpoint")

    p = command("verify", "compare both tables; --repair resolves differences by the replication rules")
    p.add_argument("--table", type=arguments.logical_table, metavar="NAME", help=TABLE_HELP)
    p.add_argument(
        "--segments",
        type=SEGMENTS,
        default=4,
        metavar="N",
        help=f"{SEGMENTS_HELP} per table, {SEGMENTS_RANGE}",
    )
    p.add_argument(
        "--samples",
        type=arguments.whole(0, 10_000),
        default=10,
        metavar="N",
        help="sample keys per kind of difference, 0 to 10,000 (10)",
    )
    p.add_argument("--show-items", action="store_true", help="also print the sampled items of both sides")
    p.add_argument(
        "--consistent", action="store_true", help="strongly consistent scans (twice the read cost)"
    )
    p.add_argument("--repair", action="store_true", help="write the winning version where it is missing")

    p = command("redrive", "re-process failed batches from the failure queue(s)")
    p.add_argument("--table", type=arguments.logical_table, metavar="NAME", help=TABLE_HELP)
    p.add_argument("--side", choices=(*LABELS, "both"), default="both", help="whose failure queue (both)")
    p.add_argument(
        "--via",
        choices=("auto", "invoke", "local"),
        default="auto",
        help="invoke: Lambda Invoke; local: run the engine here; auto: local with an endpoint URL, "
        "else invoke",
    )
    p.add_argument("--delete-poison", action="store_true", help="delete poison messages after listing them")
    p.add_argument("--dry-run", action="store_true", help="list the messages, change nothing")
    p.add_argument(
        "--visibility-timeout",
        type=arguments.whole(1, arguments.MAX_VISIBILITY_TIMEOUT_SECONDS),
        default=300,
        metavar="S",
        help="per message, 1 to 43200 (300)",
    )
    p.add_argument(
        "--max-messages",
        type=arguments.whole(1, 1_000_000),
        default=1000,
        metavar="N",
        help="stop after N, 1 to 1,000,000 (1000)",
    )

    p = command(
        "status",
        "mappings, iterator age, failure queue, alarms, latency and forwarder certificates of both sides",
    )
    p.add_argument("--table", type=arguments.logical_table, metavar="NAME", help=TABLE_HELP)
    p.add_argument(
        "--alarm-prefix",
        type=arguments.name(255, "an alarm name prefix"),
        metavar="PREFIX",
        help="alarm name prefix (default: from the function names)",
    )
    _ca_parser(commands)
    _plan_parser(commands)
    return parser


PLAN_EXAMPLES = """examples:
  ddb-replication plan --cn-rate 40 --us-rate 40 --item-bytes 300
  ddb-replication plan --cn-rate 200 --us-rate 50 --item-bytes 4000 --mix new=20,update=70,delete=10 --json
  ddb-replication plan --cn-rate 40 --us-rate 40 --item-bytes 300 --latency-profile low_latency \\
      --inbox-stream-mode PROVISIONED --inbox-shards 2
  ddb-replication plan --cn-table orders --cn-profile china --us-rate 40 --item-bytes 300
  ddb-replication plan --cn-rate 40 --us-rate 40 --item-bytes 300 --prices my-prices.json

Per side: the forwarder's and replicator's batches and invocations (the module's defaults), Lambda
duration and concurrency (CPU per change from build/bench.json, else issue 13's measured figures),
the DynamoDB capacity replication adds (the write protocol of docs/conflict-rules.md by AWS's billing
rules), Kinesis units, bytes across the border, and a monthly cost in the partition's currency
(replication_ops/prices.json: each price's page and date; null where none was found, and the plan
says which costs are then unknown) beside DynamoDB global tables for the same load in one partition.
Given rates, nothing is read from AWS; --cn-table/--us-table read that table's write rate (DynamoDB
DescribeTable, CloudWatch GetMetricData) with the side's profile."""


def _mix(text: str) -> dict[str, float]:
    """--mix as an argparse type: its problem said by argparse, one line, exit 2."""
    try:
        return planning.parse_mix(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--mix: ")) from None


def _plan_parser(commands: argparse._SubParsersAction) -> None:
    summary = "estimate shards, Lambda, DynamoDB capacity, Kinesis, border bytes and monthly cost per side"
    p = commands.add_parser(
        "plan",
        help=summary,
        description=summary,
        epilog=PLAN_EXAMPLES + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load = p.add_argument_group(
        "load",
        "Per side, a rate (--cn-rate) or an existing table to read it from (--cn-table: its average "
        "ConsumedWriteCapacityUnits over --period-hours from CloudWatch, and its average item size "
        "from DescribeTable, with --cn-profile / --cn-region / --cn-endpoint-url).",
    )
    for label, region in (("cn", "cn-north-1"), ("us", "us-east-1")):
        load.add_argument(
            f"--{label}-rate",
            type=arguments.number(0, 1_000_000, what=" changes per second"),
            metavar="CHANGES_PER_S",
            help=f"changes/s the applications make to {region}'s table(s), 0 to 1,000,000",
        )
        load.add_argument(
            f"--{label}-table",
            type=arguments.name(255, "a DynamoDB table name"),
            metavar="NAME",
            help=f"read {region}'s rate (and item size) from this existing table",
        )
        load.add_argument(f"--{label}-profile", type=arguments.profile, metavar="NAME", help="AWS profile")
        load.add_argument(
            f"--{label}-region", type=arguments.region, default=region, metavar="REGION", help=f"({region})"
        )
        load.add_argument(f"--{label}-endpoint-url", type=arguments.url, metavar="URL", help="endpoint URL")
    load.add_argument(
        "--period-hours",
        type=arguments.whole(1, 24 * 63),
        default=24 * 7,
        metavar="H",
        help="hours of CloudWatch data to average, 1 to 1,512 (168: a week)",
    )
    load.add_argument(
        "--item-bytes",
        type=arguments.whole(1, 400 * 1024),
        metavar="B",
        help="average item size in bytes as DynamoDB counts it (names and values), 1 to 409,600 "
        "(with --cn-table/--us-table: default the tables' TableSizeBytes / ItemCount)",
    )
    load.add_argument(
        "--key-bytes",
        type=arguments.whole(1, 2048 + 1024),
        default=64,
        metavar="B",
        help="average key size in bytes, 1 to 3,072 (64): sizes the tombstones",
    )
    load.add_argument(
        "--mix",
        type=_mix,
        default=dict(planning.DEFAULT_MIX),
        metavar="KIND=SHARE,...",
        help="shares of new, update, unversioned_update and delete, as weights: a kind not named is 0, "
        "the rest scaled to 100%% (new=60,update=30,delete=10)",
    )
    deploy = p.add_argument_group("deployment (the module's variables)")
    deploy.add_argument(
        "--latency-profile",
        choices=("standard", "low_latency"),
        default=planning.MODULE_DEFAULTS["latency_profile"],
        help="latency_profile (%(default)s)",
    )
    deploy.add_argument(
        "--inbox-stream-mode",
        choices=("ON_DEMAND", "PROVISIONED"),
        default=planning.MODULE_DEFAULTS["inbox_stream_mode"],
        help="inbox_stream_mode (%(default)s)",
    )
    deploy.add_argument(
        "--inbox-shards",
        type=arguments.whole(1, 10_000),
        default=planning.MODULE_DEFAULTS["inbox_shard_count"],
        metavar="N",
        help="inbox_shard_count (%(default)s; the shards an ON_DEMAND inbox has)",
    )
    deploy.add_argument(
        "--stream-shards",
        type=arguments.whole(1, 10_000),
        default=1,
        metavar="N",
        help="DynamoDB stream shards of a side's table(s), about one per table partition (1)",
    )
    deploy.add_argument(
        "--billing-mode",
        choices=("PAY_PER_REQUEST", "PROVISIONED"),
        default="PAY_PER_REQUEST",
        help="the tables' billing_mode (%(default)s)",
    )
    deploy.add_argument(
        "--lambda-architecture",
        choices=("x86_64", "arm64"),
        default=planning.MODULE_DEFAULTS["lambda_architecture"],
        help="lambda_architecture (%(default)s): prices Lambda's GB-seconds",
    )
    figures = p.add_argument_group("figures")
    figures.add_argument(
        "--bench",
        type=arguments.existing_file(" (make bench writes build/bench.json)"),
        metavar="FILE",
        help=f"make bench's figures: CPU per change, compression (default {planning.DEFAULT_BENCH} when it "
        "exists, else issue 13's figures)",
    )
    figures.add_argument(
        "--bytes-per-change",
        type=arguments.number(1, 10 * 1024 * 1024, what=" bytes"),
        metavar="B",
        help="compressed bytes a change takes in a Kinesis record (default: item size x bench's ratio)",
    )
    for name in ("forwarder", "replicator"):
        figures.add_argument(
            f"--{name}-wait-ms",
            type=arguments.number(0, 900_000, what=" ms"),
            default=0.0,
            metavar="MS",
            help=f"{name}'s wait on AWS calls per invocation, added to its CPU (0)",
        )
    figures.add_argument(
        "--prices",
        type=arguments.existing_file(" (the shape of replication_ops/prices.json)"),
        metavar="FILE",
        help="price table to use instead of replication_ops/prices.json",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars (plan draws none)")


def _plan_load(args: argparse.Namespace) -> tuple[dict[str, float], int, dict[str, Any]]:
    """(rates, item size, what was read from AWS) from the flags, each side's rate given or read."""
    observed: dict[str, observed_load.ObservedLoad] = {}
    for label in LABELS:
        rate, table = getattr(args, f"{label}_rate"), getattr(args, f"{label}_table")
        if (rate is None) == (table is None):
            raise ConfigError(
                f"give the {label} side's load as --{label}-rate CHANGES_PER_S or --{label}-table NAME "
                f"(an existing table to read it from), {'not both' if rate is not None else 'one of them'}"
            )
        if table is not None:
            with aws_errors(f"{label} ({getattr(args, f'{label}_region')})"):
                session = boto3.session.Session(
                    profile_name=getattr(args, f"{label}_profile"),
                    region_name=getattr(args, f"{label}_region"),
                )
            side = Side(label, {}, session, getattr(args, f"{label}_endpoint_url"), f"--{label}-table")
            observed[label] = observed_load.read(side, table, args.period_hours)
    item_bytes = args.item_bytes
    if item_bytes is None:
        sizes = [o.average_item_bytes for o in observed.values() if o.average_item_bytes]
        if not sizes:
            raise ConfigError(
                "give --item-bytes B: "
                + (
                    "the tables report no size yet (DescribeTable's TableSizeBytes is updated about every "
                    "six hours)"
                    if observed
                    else "the average item size is needed"
                )
            )
        item_bytes = max(sizes)
    rates = {}
    read: dict[str, Any] = {}
    for label in LABELS:
        if label in observed:
            average, peak = observed[label].changes_per_second(item_bytes)
            rates[label] = average
            read[label] = {
                **dataclasses.asdict(observed[label]),
                "changes_per_second": round(average, 3),
                "busiest_hour_changes_per_second": round(peak, 3),
                "metric": "AWS/DynamoDB ConsumedWriteCapacityUnits, Sum per hour, TableName",
            }
        else:
            rates[label] = getattr(args, f"{label}_rate")
    return rates, item_bytes, read


def _run_plan(args: argparse.Namespace) -> int:
    try:
        rates, item_bytes, read = _plan_load(args)
        if not any(rates.values()):
            raise ConfigError("both rates are 0: give a side's changes per second (--cn-rate, --us-rate)")
        if item_bytes < args.key_bytes:
            raise ConfigError(
                f"items of {item_bytes} B cannot hold keys of {args.key_bytes} B: an item's size counts "
                "its key's names and values (give --item-bytes at least --key-bytes)"
            )
        load = planning.Load(
            rates=rates,
            item_bytes=item_bytes,
            key_bytes=args.key_bytes,
            mix=args.mix,
            latency_profile=args.latency_profile,
            inbox_stream_mode=args.inbox_stream_mode,
            inbox_shards=args.inbox_shards,
            stream_shards=args.stream_shards,
            billing_mode=args.billing_mode,
            lambda_architecture=args.lambda_architecture,
            bytes_per_change=args.bytes_per_change,
            forwarder_wait_ms=args.forwarder_wait_ms,
            replicator_wait_ms=args.replicator_wait_ms,
        )
        table = prices.load(Path(args.prices) if args.prices else None)
        document = planning.plan(load, planning.measured(Path(args.bench) if args.bench else None), table)
        if read:
            document["read_from_aws"] = read
    except OpsError as error:
        print(f"ddb-replication plan: error: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(error), "exit_code": error.exit_code}))
        return error.exit_code
    print(json.dumps(document, indent=2, ensure_ascii=False) if args.json else planning.render(document))
    return EXIT_OK


# -- roles_anywhere mode of credentials and rotate (issue 12) ------------------------------------

ROLES_ANYWHERE_HELP = """A link is in roles_anywhere mode when the RECEIVING side's Terraform output
roles_anywhere_profile_arn is set (the module's peer_writer_authentication): its forwarder then gets a
certificate of the pair's CA (--ca-dir, made by `ddb-replication ca init`), not an access key.
--ca-dir is required for such a link and not used for an access_key link."""


def _roles_anywhere_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("roles_anywhere mode", ROLES_ANYWHERE_HELP)
    group.add_argument(
        "--ca-dir",
        type=arguments.folder,
        metavar="DIR",
        help="the pair's CA folder (`ca init`): issues each forwarder's certificate",
    )
    for label in LABELS:
        group.add_argument(
            f"--{label}-rolesanywhere-endpoint",
            type=arguments.host_port,
            metavar="HOST[:PORT]",
            help=f"IAM Roles Anywhere of the {label} side for the probe's CreateSession (default: the "
            "peer forwarder's PEER_ROLESANYWHERE_ENDPOINT, else the region's public endpoint)",
        )


def _ca_parser(commands: argparse._SubParsersAction) -> None:
    """``ca init|issue|revoke``: the operator's CA folder only, no side (no --cn-*/--us-* flags)."""
    summary = "the pair's certificate authority for IAM Roles Anywhere: create it, issue, revoke"
    ca = commands.add_parser(
        "ca",
        help=summary,
        description=summary,
        epilog=CA_EXAMPLES + "\n\n" + CA_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")

    def action(name: str, text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(
            name,
            help=text,
            description=text,
            epilog=CA_EXAMPLES + "\n\n" + CA_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        # Every subcommand takes --quiet (docs/operations.md); ca draws no progress bars.
        parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars (ca draws none)")
        return parser

    p = action("init", "create the pair's CA in DIR (refuses a DIR that holds one)")
    p.add_argument(
        "--dir", type=arguments.writable_folder, required=True, metavar="DIR", help="the CA's folder"
    )
    p.add_argument(
        "--name",
        type=arguments.name(certificates.MAX_COMMON_NAME, "a CA name"),
        default=DEFAULT_CA_NAME,
        metavar="CN",
        help="the CA certificate's common name (%(default)s)",
    )
    p = action("issue", "issue a forwarder's short-lived certificate into DIR/issued/")
    p.add_argument(
        "--dir",
        type=arguments.folder,
        required=True,
        metavar="DIR",
        help="the CA's folder",
    )
    p.add_argument(
        "--cn",
        type=arguments.forwarder_certificate_name,
        required=True,
        metavar="NAME.forwarder.REGION",
        help="the forwarder's certificate name: its endpoint name and region",
    )
    p.add_argument(
        "--days",
        type=arguments.whole(1, certificates.MAX_LEAF_VALIDITY.days),
        default=certificates.LEAF_VALIDITY.days,
        metavar="N",
        help=f"valid for N days, 1 to {certificates.MAX_LEAF_VALIDITY.days} (%(default)s)",
    )
    p = action("revoke", "add a certificate to the CA's revocation list, DIR/crl.pem")
    p.add_argument(
        "--dir",
        type=arguments.folder,
        required=True,
        metavar="DIR",
        help="the CA's folder",
    )
    p.add_argument(
        "--serial",
        type=arguments.serial_number,
        required=True,
        metavar="HEX",
        help="the certificate's serial number in hex, as `ca issue` printed it",
    )


def _pair(args: argparse.Namespace) -> Pair:
    options = {
        label: SideOptions(
            label=label,
            profile=getattr(args, f"{label}_profile"),
            region=getattr(args, f"{label}_region"),
            endpoint_url=getattr(args, f"{label}_endpoint_url"),
            root=getattr(args, f"{label}_root"),
            outputs_file=getattr(args, f"{label}_outputs"),
        )
        for label in LABELS
    }
    return make_pair(options, args.local_env)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


Result = tuple[int, Any, str]


def _credentials(args: argparse.Namespace, pair: Pair, names: VersionAttributes) -> Result:
    reports = []
    links = credentials.links(pair, args.direction)
    modes = {link.name: certificate_credentials.mode(link) for link in links}
    needing = [name for name, mode in modes.items() if mode == certificate_credentials.ROLES_ANYWHERE]
    if needing and args.ca_dir is None:
        raise ConfigError(
            f"{', '.join(needing)} {'is' if len(needing) == 1 else 'are'} in roles_anywhere mode (the "
            "receiver's roles_anywhere_profile_arn): give --ca-dir DIR, the pair's CA folder "
            "(`ddb-replication ca init --dir DIR`)"
        )
    for link in links:
        if modes[link.name] == certificate_credentials.ROLES_ANYWHERE:
            endpoint = certificate_credentials.rolesanywhere_endpoint(
                link, getattr(args, f"{link.receiver.label}_rolesanywhere_endpoint")
            )
            work = (
                certificate_credentials.rotate
                if args.command == "rotate"
                else certificate_credentials.install
            )
            report = work(link, names, args.ca_dir, probe_timeout=args.probe_timeout, endpoint=endpoint)
            report.mode = certificate_credentials.ROLES_ANYWHERE
            reports.append(report)
            continue
        if args.command == "rotate":
            reports.append(
                credentials.rotate(
                    link,
                    names,
                    probe_timeout=args.probe_timeout,
                    adoption_wait=args.adoption_wait,
                    delete_unused=args.delete_unused,
                    show_progress=bars_enabled(args.quiet),
                )
            )
        else:
            reports.append(credentials.install(link, names, probe_timeout=args.probe_timeout))
        if args.ca_dir is not None:
            reports[-1].notes.append("--ca-dir not used: the receiver is in access_key mode")
    code = EXIT_OK if all(r.ok for r in reports) else EXIT_DIFFERENCES
    text = "\n".join(
        (
            certificate_credentials.render
            if r.mode == certificate_credentials.ROLES_ANYWHERE
            else credentials.render
        )([r])
        for r in reports
    )
    return code, {"links": _plain(reports)}, text


def _crl(args: argparse.Namespace, pair: Pair, names: VersionAttributes) -> Result:
    reports, number, revoked = revocation.run(pair, args.ca_dir)
    document = {"crl_number": number, "revoked": revoked, "sides": _plain(reports)}
    return EXIT_OK, document, revocation.render(reports, number, revoked)


def _per_table(reports: dict[str, Any], render: Callable[[Any], str]) -> str:
    """Each table's report under its name (one table: its report alone, as before the table map)."""
    if len(reports) == 1:
        return render(next(iter(reports.values())))
    return "\n".join(f"table {name}:\n" + _indent(render(report)) for name, report in reports.items())


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _backfill(args: argparse.Namespace, pair: Pair, names: VersionAttributes) -> Result:
    tables = pair.tables(args.table)
    if args.checkpoint and len(tables) > 1:
        raise ConfigError("--checkpoint names one table's checkpoint: give --table NAME with it")
    reports = {}
    for table in tables:
        view = pair.for_table(table)
        source = view.side(args.source)
        reports[table] = backfill.run(
            source,
            view.peer(source),
            names,
            segments=args.segments,
            rate=args.rate,
            page_size=args.page_size,
            checkpoint_path=args.checkpoint,
            resume=args.resume,
            restart=args.restart,
            show_progress=bars_enabled(args.quiet),
        )
    complete = all(report.complete for report in reports.values())
    document = {"tables": {name: _plain(report) for name, report in reports.items()}}
    return (EXIT_OK if complete else EXIT_DIFFERENCES), document, _per_table(reports, backfill.render)


def _verify(args: argparse.Namespace, pair: Pair, names: VersionAttributes) -> Result:
    reports = {
        table: verify.run(
            pair.for_table(table),
            names,
            segments=args.segments,
            samples=max(0, args.samples),
            show_items=args.show_items,
            do_repair=args.repair,
            consistent=args.consistent,
            show_progress=bars_enabled(args.quiet),
        )
        for table in pair.tables(args.table)
    }
    ok = all(r.identical or (args.repair and r.unresolved == 0) for r in reports.values())
    document = {
        "identical": all(r.identical for r in reports.values()),
        "tables": {name: _plain(report) for name, report in reports.items()},
    }
    return (EXIT_OK if ok else EXIT_DIFFERENCES), document, _per_table(reports, verify.render)


def _redrive(args: argparse.Namespace, pair: Pair, names: VersionAttributes) -> Result:
    report = redrive.RedriveReport()
    sides = pair.both() if args.side == "both" else (pair.side(args.side),)
    if args.table is not None:
        pair.tables(args.table)  # a table both sides serve, or exit 2
    for side in sides:
        redrive.redrive_side(
            side,
            redrive.default_via(side) if args.via == "auto" else args.via,
            report,
            delete_poison=args.delete_poison,
            dry_run=args.dry_run,
            visibility_timeout=args.visibility_timeout,
            max_messages=args.max_messages,
            show_progress=bars_enabled(args.quiet),
            table=args.table,
        )
    code = EXIT_OK if report.clean or args.dry_run else EXIT_DIFFERENCES
    return code, {"via": report.via, "entries": _plain(report.entries)}, redrive.render(report)


def _status(args: argparse.Namespace, pair: Pair, names: VersionAttributes) -> Result:
    statuses = status.run(pair, dict.fromkeys(LABELS, args.alarm_prefix), table=args.table)
    document = status.as_json(statuses)
    return (EXIT_OK if document["healthy"] else EXIT_DIFFERENCES), document, status.render(statuses)


def _day(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _ca(args: argparse.Namespace) -> tuple[int, Any, str]:
    """The ``ca`` actions: (exit code, JSON document, text)."""
    folder = Path(args.dir)
    if args.ca_command == "init":
        authority = certificates.create_authority(args.name)
        certificate, key = certificates.write_authority(authority, folder)
        expiry = authority.certificate.not_valid_after_utc
        document = {"certificate": str(certificate), "private_key": str(key), "not_after": expiry.isoformat()}
        text = (
            f"created the pair's CA {args.name!r}, valid until {_day(expiry)}:\n"
            f"  {certificate}  the certificate: roles_anywhere_ca_certificate of both roots\n"
            f"  {key}  its private key (0600): keep it here, offline; it never goes into an account"
        )
        return EXIT_OK, document, text
    if args.ca_command == "issue":
        authority = certificates.load_authority(folder)
        issued = certificates.issue_forwarder_certificate(
            authority, args.cn, validity=dt.timedelta(days=args.days)
        )
        files = certificates.write_issued(issued, folder)
        expiry = issued.certificate.not_valid_after_utc
        document = {
            "common_name": args.cn,
            "serial": issued.serial_hex,
            "not_after": expiry.isoformat(),
            "certificate": str(files.certificate),
            "private_key": str(files.private_key),
        }
        text = (
            f"issued {args.cn}, serial {issued.serial_hex}, valid until {_day(expiry)}:\n"
            f"  {files.certificate}\n  {files.private_key}  (0600)"
        )
        return EXIT_OK, document, text
    certificates.check_issued(folder, args.serial)
    result = certificates.revoke(folder, args.serial)
    serial = certificates.serial_hex(args.serial)
    document = {
        "serial": serial,
        "added": result.added,
        "crl": str(result.path),
        "crl_number": result.number,
        "revoked": [certificates.serial_hex(s) for s in result.serials],
    }
    if not result.added:
        return EXIT_OK, document, f"serial {serial} is revoked already: {result.path} is unchanged"
    # ImportCrl the first time, UpdateCrl after: `crl` does either, in both trust anchors.
    apply = f"ddb-replication crl --ca-dir {folder} --cn-root DIR --us-root DIR"
    text = (
        f"revoked serial {serial}: {result.path} (CRL number {result.number}, {len(result.serials)} "
        f"revoked); put it into both trust anchors:\n  {apply}"
    )
    return EXIT_OK, document, text


def _run_ca(args: argparse.Namespace) -> int:
    prog = f"ddb-replication ca {args.ca_command}"
    try:
        code, document, text = _ca(args)
    except OpsError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(error), "exit_code": error.exit_code}))
        return error.exit_code
    except OSError as error:
        print(f"{prog}: error: {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(json.dumps(document, indent=2) if args.json else text)
    return code


# The subcommands that read or write item versions (status reads none).
USES_VERSION_ATTRIBUTES = frozenset({"credentials", "rotate", "backfill", "verify", "redrive"})

HANDLERS: dict[str, Callable[[argparse.Namespace, Pair, VersionAttributes], Result]] = {
    "credentials": _credentials,
    "rotate": _credentials,
    "backfill": _backfill,
    "verify": _verify,
    "redrive": _redrive,
    "status": _status,
    "crl": _crl,
}


def check_combinations(args: argparse.Namespace) -> str | None:
    """What is wrong with this combination of flags (each flag alone being valid), or None."""
    if args.command in ("ca", "plan"):
        return None  # no side: its flags are checked one by one
    given = [
        f"--{label}-{flag.replace('_', '-')}"
        for label in LABELS
        for flag in SIDE_FLAGS
        if flag != "outputs" and getattr(args, f"{label}_{flag}") is not None
    ]
    if args.local_env and given:
        return (
            f"--local-env sets both sides itself (endpoints, keys, roots), so {', '.join(given)} would be "
            "ignored or contradict it: give either --local-env alone or the --cn-*/--us-* flags"
        )
    for label in LABELS:
        if getattr(args, f"{label}_root") and getattr(args, f"{label}_outputs"):
            return f"--{label}-root and --{label}-outputs both say where the outputs are: give one"
    if args.timestamp_attribute == args.origin_attribute:
        return (
            f"--timestamp-attribute and --origin-attribute are both {args.timestamp_attribute!r}: the "
            "version needs two attributes, give each its own name (the defaults are "
            f"{DEFAULT_TIMESTAMP_ATTRIBUTE} and {DEFAULT_ORIGIN_ATTRIBUTE})"
        )
    if args.command == "redrive" and args.dry_run and args.delete_poison:
        return "--dry-run changes nothing, so --delete-poison would delete nothing: drop one of them"
    missing = [
        label
        for label in LABELS
        if not (args.local_env or getattr(args, f"{label}_root") or getattr(args, f"{label}_outputs"))
    ]
    if missing:  # said before a Terraform root of the other side is read (that takes seconds)
        flags = " and ".join(f"--{label}-root DIR or --{label}-outputs FILE" for label in missing)
        whose = "the cn and us sides'" if len(missing) > 1 else f"the {missing[0]} side's"
        return f"say where {whose} Terraform outputs are: {flags} (or --local-env FILE for the local pair)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; its exit status (EXIT_CODES)."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The output's reader went away (`| head`): stop without a traceback, as Python's signal
        # documentation advises (its "Note on SIGPIPE"): nothing more is written to stdout, not even
        # at exit; 141 is the status a shell gives a command that SIGPIPE ended.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ca":
        return _run_ca(args)
    if args.command == "plan":
        return _run_plan(args)
    problem = check_combinations(args)
    if problem:
        (parser.chosen_subparser(args) or parser).error(problem)
    try:
        pair = _pair(args)
        names = VersionAttributes(args.timestamp_attribute, args.origin_attribute)
        if args.command in USES_VERSION_ATTRIBUTES:
            check_version_attributes(pair, names)
        code, document, text = HANDLERS[args.command](args, pair, names)
    except OpsError as error:
        print(f"ddb-replication {args.command}: error: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(error), "exit_code": error.exit_code}))
        return error.exit_code
    except KeyboardInterrupt:
        print(f"ddb-replication {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(document, indent=2, default=str, ensure_ascii=False))
    else:
        print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
