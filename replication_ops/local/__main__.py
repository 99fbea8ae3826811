"""``python -m replication_ops.local demo|up|down``: the local two-partition environment."""

from __future__ import annotations

import argparse
import logging
import sys

from replication_ops import arguments
from replication_ops.local.config import (
    BUILD_DIR,
    DEFAULT_PEER_WRITER_AUTHENTICATION,
    PEER_WRITER_AUTHENTICATION_MODES,
    Paths,
    SetupError,
)
from replication_ops.local.environment import EnvironmentOptions
from replication_ops.local.loadgen import LoadOptions

PROG = "python -m replication_ops.local"

DEFAULT_UP_PORTS = {"cn-north-1": 19001, "us-east-1": 19002}

DESCRIPTION = """\
The local two-partition environment. Two moto servers on 127.0.0.1 stand in for cn-north-1 (partition
aws-cn) and us-east-1 (partition aws); both Terraform roots (envs/) are applied to them; each side's
forwarder gets its peer credentials with `ddb-replication credentials` (--peer-writer-authentication:
roles_anywhere, a certificate of the pair's CA for the peer's emulated IAM Roles Anywhere, the default;
or access_key, the peer-writer key); the Lambda zips of this machine's architecture
(dist/x86_64/ or dist/arm64/) run in worker processes fed by an event-source runner that polls the
table streams and the Kinesis inboxes as Lambda does.

  demo  deploy, load the three tables (accounts, events, profiles) on both sides at once, wait until
        replication is idle, verify item by item, look for the residency canary on the us side,
        report (stdout, build/local/report.json, build/local/lag.png), tear down.
        Exit status 0 only when every table converged, nothing was lost and the canary was found
        nowhere.
  up    the same environment left running in the background; writes build/local/environment.json.
  down  stop what `up` started and clean up.

Terraform's providers come from TF_PROVIDER_MIRROR (a provider mirror), else a mirror found on this
machine, else the public registry (scripts/terraform_config.sh decides).
Exit status 2: something to fix first (a missing tool or file, a port in use, no providers), one line.
"""


POSITIVE = arguments.whole(1, 1_000_000)
SHARE = arguments.number(0, 1)
MAX_CONCURRENCY = arguments.whole(1, 64)
INBOX_SHARDS = arguments.whole(1, 64)
# --profile -> the module's latency_profile
LATENCY_PROFILES = {"standard": "standard", "low-latency": "low_latency"}


def _environment_arguments(parser: argparse.ArgumentParser, default_ports: dict[str, int]) -> None:
    group = parser.add_argument_group("environment")
    group.add_argument(
        "--cn-port",
        type=arguments.port,
        default=default_ports["cn-north-1"],
        help="port of the cn-north-1 partition on 127.0.0.1 (0: any free port; default %(default)s)",
    )
    group.add_argument(
        "--us-port",
        type=arguments.port,
        default=default_ports["us-east-1"],
        help="port of the us-east-1 partition on 127.0.0.1 (0: any free port; default %(default)s)",
    )
    group.add_argument(
        "--inbox-shards",
        type=INBOX_SHARDS,
        default=2,
        help="shards of each side's Kinesis inbox (default %(default)s)",
    )
    group.add_argument(
        "--max-concurrency",
        type=MAX_CONCURRENCY,
        default=2,
        help="worker processes (concurrent executions) per function (default %(default)s)",
    )


def _authentication_argument(parser: argparse.ArgumentParser) -> None:
    """The module's peer_writer_authentication, under its own name (demo, up and the server)."""
    group = parser.add_argument_group("peer writer")
    group.add_argument(
        "--peer-writer-authentication",
        choices=PEER_WRITER_AUTHENTICATION_MODES,
        default=DEFAULT_PEER_WRITER_AUTHENTICATION,
        help="how each forwarder gets its right to write into the peer's inbox (the module's variable): "
        "roles_anywhere, a certificate of the pair's CA (made once in BUILD_DIR/pair-ca) exchanged with "
        "the peer partition's emulated IAM Roles Anywhere for a role session, no IAM user; or "
        "access_key, the peer-writer IAM user's key (default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    defaults = LoadOptions()
    parser = arguments.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--build-dir",
        type=arguments.writable_folder,
        default=BUILD_DIR,
        help="where logs, Terraform working copies, reports and environment.json go (default build/local)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the runner does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,up,down}")

    demo = commands.add_parser(
        "demo",
        help="deploy, load both sides, verify, report, tear down",
        description="Deploy both roots to local partitions, load the three tables on both sides at "
        "once, wait until replication is idle, verify each table item by item and against the "
        "last-writer-wins oracle, look for the residency canary on the us side, print and write the "
        "report, tear everything down.",
    )
    load = demo.add_argument_group("load")
    load.add_argument(
        "--operations",
        type=POSITIVE,
        default=defaults.operations,
        help="operations per side (default %(default)s)",
    )
    load.add_argument(
        "--rate",
        type=arguments.number(0, 10_000, low_open=True),
        default=defaults.rate,
        help="operations per second per side (default %(default)s)",
    )
    load.add_argument(
        "--conflict-share",
        type=SHARE,
        default=defaults.conflict_share,
        help="share of operations where both sides write the same key at once (default %(default)s)",
    )
    load.add_argument(
        "--tie-share",
        type=SHARE,
        default=defaults.tie_share,
        help="share of those conflicts written with the very same timestamp (default %(default)s)",
    )
    load.add_argument(
        "--update-share",
        type=SHARE,
        default=defaults.update_share,
        help="share of updates among the operations (default %(default)s)",
    )
    load.add_argument(
        "--delete-share",
        type=SHARE,
        default=defaults.delete_share,
        help="share of deletes among the operations (default %(default)s)",
    )
    load.add_argument(
        "--unversioned-share",
        type=SHARE,
        default=defaults.unversioned_share,
        help="share of a side's own-key upserts that set no version: a PutItem without it, an UpdateItem "
        "SET of one field (default %(default)s)",
    )
    load.add_argument(
        "--decimal-time-share",
        type=SHARE,
        default=defaults.decimal_time_share,
        help="share of own-key upserts versioned with Decimal(time.time()) as is, 31-32 digits "
        "(default %(default)s)",
    )
    load.add_argument(
        "--invalid-version-share",
        type=SHARE,
        default=defaults.invalid_version_share,
        help="share of own-key upserts with an invalid version, a String timestamp or epoch "
        "milliseconds, half each (default %(default)s)",
    )
    load.add_argument(
        "--threads",
        type=arguments.whole(1, 256),
        default=defaults.threads,
        help="writer threads per side (default %(default)s)",
    )
    load.add_argument(
        "--seed", type=arguments.whole(0, 2**32 - 1), default=defaults.seed, help="seed of the generated load"
    )
    demo.add_argument(
        "--drain-timeout",
        type=arguments.seconds(0, 3600, low_open=True),
        default=180.0,
        help="seconds to wait for replication to become idle after the load (default %(default)s)",
    )
    demo.add_argument(
        "--profile",
        choices=tuple(LATENCY_PROFILES),
        default="standard",
        help="the module's latency_profile both sides deploy: standard (the forwarder batches for up to "
        "1 s, Lambda polls the inbox once a second) or low-latency (no batching window, an enhanced "
        "fan-out consumer pushes the inbox to the replicator); default %(default)s",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.add_argument(
        "--destroy", action="store_true", help="terraform destroy both roots before tearing down (slower)"
    )
    _environment_arguments(demo, {"cn-north-1": 0, "us-east-1": 0})
    _authentication_argument(demo)

    up = commands.add_parser(
        "up",
        help="start the environment in the background",
        description="Start the local environment in the background and write build/local/environment.json.",
    )
    _environment_arguments(up, DEFAULT_UP_PORTS)
    _authentication_argument(up)

    down = commands.add_parser("down", help="stop the background environment and clean up")
    down.add_argument("--destroy", action="store_true", help="terraform destroy both roots before stopping")

    serve = commands.add_parser("_serve")  # the background server started by `up`
    _environment_arguments(serve, {"cn-north-1": 0, "us-east-1": 0})
    _authentication_argument(serve)
    return parser


def _environment_options(args: argparse.Namespace) -> EnvironmentOptions:
    return EnvironmentOptions(
        paths=Paths(args.build_dir.resolve()),
        ports={"cn-north-1": args.cn_port, "us-east-1": args.us_port},
        inbox_shards=args.inbox_shards,
        max_concurrency=args.max_concurrency,
        peer_writer_authentication=args.peer_writer_authentication,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "cn_port", 0) and args.cn_port == args.us_port:
        (parser.chosen_subparser(args) or parser).error(
            f"--cn-port and --us-port are both {args.cn_port}: each partition needs a port of its own"
        )
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _run(args, parser)
    except SetupError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, parser: arguments.ArgumentParser) -> int:
    if args.command == "demo":
        from replication_ops.local.demo import DemoOptions, run_demo

        try:
            load = LoadOptions(
                operations=args.operations,
                rate=args.rate,
                conflict_share=args.conflict_share,
                tie_share=args.tie_share,
                update_share=args.update_share,
                delete_share=args.delete_share,
                unversioned_share=args.unversioned_share,
                decimal_time_share=args.decimal_time_share,
                invalid_version_share=args.invalid_version_share,
                threads=args.threads,
                seed=args.seed,
            )
        except ValueError as error:
            (parser.chosen_subparser(args) or parser).error(str(error))
        options = DemoOptions(
            environment=_environment_options(args),
            load=load,
            drain_timeout=args.drain_timeout,
            progress=not args.no_progress,
            destroy=args.destroy,
            latency_profile=LATENCY_PROFILES[args.profile],
        )
        try:
            return run_demo(options).exit_code
        except KeyboardInterrupt:
            print("interrupted; everything was torn down", file=sys.stderr)
            return 130
        except SetupError:
            raise
        except Exception as error:
            logging.getLogger(__name__).debug("demo failed", exc_info=True)
            print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    if args.command == "up":
        from replication_ops.local.daemon import up

        return up(_environment_options(args))
    if args.command == "down":
        from replication_ops.local.daemon import down

        return down(Paths(args.build_dir.resolve()), destroy=args.destroy)
    if args.command == "_serve":
        from replication_ops.local.daemon import serve

        return serve(_environment_options(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
