"""`python -m replication_ops.chaos run [--reduced] [--scenario N ...]` (what `make chaos` runs)."""

from __future__ import annotations

import logging
import signal
import sys

from replication_ops import arguments
from replication_ops.chaos.run import CHAOS_DIR, ChaosOptions, run_chaos
from replication_ops.chaos.scenarios import FULL, REDUCED, SCENARIOS, select
from replication_ops.local.config import SetupError

PROG = "python -m replication_ops.chaos"


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = arguments.ArgumentParser(prog=PROG)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="every scenario in one local two-partition environment")
    run.add_argument("--reduced", action="store_true", help="shorter faults, smaller load (the CI run)")
    run.add_argument(
        "--scenario",
        action="append",
        metavar="N|NAME",
        help="only these (repeatable): " + ", ".join(f"{s.number} {s.name}" for s in SCENARIOS),
    )
    run.add_argument(
        "--build-dir",
        type=arguments.writable_folder,
        default=CHAOS_DIR,
        help="report and environment (build/chaos)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        scenarios = select(args.scenario)
    except ValueError as error:
        parser.error(str(error))
    options = ChaosOptions(
        scale=REDUCED if args.reduced else FULL, scenarios=scenarios, base=args.build_dir.resolve()
    )
    try:
        report = run_chaos(options)
    except SetupError as error:
        print(f"{PROG} run: error: {error}", file=sys.stderr)
        return 2
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
