"""Backfill: copy the existing items of one side to the other through the last-writer-wins rules.

Every item goes through ``TableWriter.apply`` against the target, the same conditional writes the
replicator makes, so a backfill running beside live replication never overwrites a newer item and
never resurrects a remembered delete. An item without version attributes gets ``UNVERSIONED``, older
than any live write: it only fills a gap. The target's forwarder then sees a write without a version,
stamps it with its own region and forwards it back, so both sides converge on the stamped item.

Only what the source side's residency rules let leave it is copied (docs/residency.md): an item
its export filter does not pass stays (counted as kept), and excluded attributes are left out of
every item copied; on the target, the replicator's writes keep its own excluded attributes. The
rules are the ones the source's forwarder was deployed with (``Side.residency``).

Scans run in parallel segments; after every page each segment's position (LastEvaluatedKey) goes to
a checkpoint file, so an interrupted backfill resumes where it stopped (``--resume``). Items of a
page cut short are applied again on resume: harmless, the conditions refuse what is already there.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replication.changes import Change
from replication.keys import TypedItem
from replication.settings import VersionAttributes
from replication.table_writer import Outcome
from replication.typed_values import from_client, to_client
from replication.versions import UNVERSIONED, version_of
from replication_ops.errors import ConfigError, OpsError, aws_errors
from replication_ops.progress import Bar
from replication_ops.scanning import RateLimiter, key_of, run_segments, same_key_schema, scan_pages
from replication_ops.sides import Side

EXIT_INTERRUPTED = 130
COUNTERS = ("scanned", "copied", "stale", "tombstoned", "unversioned", "kept")
OUTCOME_COUNTERS = {Outcome.APPLIED: "copied", Outcome.STALE: "stale", Outcome.TOMBSTONED: "tombstoned"}


class Interrupted(OpsError):
    exit_code = EXIT_INTERRUPTED


@dataclass
class SegmentState:
    last_key: dict[str, Any] | None = None  # wire form (binary as base64): JSON-safe
    done: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))


class Checkpoint:
    """Per-segment scan positions and counts, rewritten atomically after every page."""

    def __init__(self, path: Path, identity: dict[str, Any], segments: list[SegmentState]) -> None:
        self.path = path
        self.identity = identity
        self.segments = segments
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, path: Path, identity: dict[str, Any], *, resume: bool, restart: bool
    ) -> tuple[Checkpoint, bool]:
        """The checkpoint to use and whether it continues an earlier run."""
        total = segments_given = int(identity["segments"])
        if path.exists():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                saved = {name: document["identity"][name] for name in identity}
                segments = [SegmentState(**state) for state in document["segments"]]
            except (OSError, ValueError, KeyError, TypeError):
                # not even --restart overwrites it: `--checkpoint cn.json` is more likely a slip
                raise ConfigError(
                    f"{path} is not a backfill checkpoint: give --checkpoint another file name (or "
                    "remove this file if it is a damaged checkpoint)"
                ) from None
        if path.exists() and not restart:
            if not resume:
                if segments and all(state.done for state in segments):
                    raise ConfigError(
                        f"{path} holds a completed backfill: --restart to copy again (or delete the file)"
                    )
                raise ConfigError(
                    f"{path} holds an unfinished backfill: --resume to continue it, --restart to start over"
                )
            if saved != identity:
                if {**saved, "segments": segments_given} == identity and saved["segments"] != segments_given:
                    raise ConfigError(
                        f"{path} was started with --segments {saved['segments']}: resume with "
                        f"--segments {saved['segments']} (a scan position belongs to its segment count)"
                    )
                raise ConfigError(
                    f"{path} belongs to another backfill ({saved['source']} -> {saved['target']}), not "
                    f"{identity['source']} -> {identity['target']}: give --checkpoint another file, or "
                    "--restart to overwrite it"
                )
            checkpoint = cls(path, identity, segments)
            checkpoint.save()  # the same content: proves the file can still be written, before any copy
            return checkpoint, True
        if resume and not path.exists():
            raise ConfigError(
                f"nothing to resume: {path} does not exist (drop --resume to start, or give the "
                "--checkpoint the backfill was started with)"
            )
        checkpoint = cls(path, identity, [SegmentState() for _ in range(total)])
        checkpoint.save()
        return checkpoint, False

    def save(self) -> None:
        """Rewrite the file atomically (a temporary file beside it, then ``os.replace``).

        Raises ConfigError (exit 2, one line) when it cannot be written: ``open`` saves before the
        first item is copied, so a path that cannot be written stops the backfill before it writes."""
        document = {"identity": self.identity, "segments": [asdict(s) for s in self.segments]}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            raise ConfigError(
                f"cannot write the checkpoint {self.path} ({error.strerror or error}): give --checkpoint "
                "a file in a folder you can write"
            ) from None

    def advance(self, segment: int, last_key: dict[str, Any] | None, counts: dict[str, int]) -> None:
        with self._lock:
            state = self.segments[segment]
            state.last_key = last_key
            state.done = last_key is None
            for name, value in counts.items():
                state.counts[name] = state.counts.get(name, 0) + value  # a checkpoint may predate a counter
            self.save()

    def totals(self) -> dict[str, int]:
        return {name: sum(s.counts.get(name, 0) for s in self.segments) for name in COUNTERS}


@dataclass
class BackfillReport:
    source: str
    target: str
    segments: int
    resumed: bool
    checkpoint: str
    this_run: dict[str, int]
    totals: dict[str, int]
    seconds: float
    complete: bool


def default_checkpoint(source: Side, target: Side) -> Path:
    """One checkpoint per direction and logical table."""
    return Path(".ddb-replication") / f"backfill-{source.label}-to-{target.label}-{source.table}.json"


def run(
    source: Side,
    target: Side,
    names: VersionAttributes,
    *,
    segments: int = 4,
    rate: float = 0.0,
    page_size: int | None = None,
    checkpoint_path: Path | None = None,
    resume: bool = False,
    restart: bool = False,
    show_progress: bool = False,
) -> BackfillReport:
    if segments < 1:
        raise ConfigError("--segments must be at least 1")
    try:
        limiter = RateLimiter(rate)
    except ValueError as error:
        raise ConfigError(f"--rate: {error}") from None
    keys = same_key_schema(source, target)
    rules = source.residency()  # what may leave the source side, as its forwarder was deployed
    source_table = source.table_name()
    writer = target.writer(names)
    path = checkpoint_path or default_checkpoint(source, target)
    identity = {
        "source": f"{source.region}/{source_table}",
        "target": f"{target.region}/{target.table_name()}",
        "segments": segments,
    }
    checkpoint, resumed = Checkpoint.open(path, identity, resume=resume, restart=restart)
    stop = threading.Event()
    this_run = dict.fromkeys(COUNTERS, 0)
    run_lock = threading.Lock()
    began = time.monotonic()
    with aws_errors(f"{source.name} DynamoDB"):
        estimate = source.client("dynamodb").describe_table(TableName=source_table)["Table"].get("ItemCount")
    bar = Bar(
        f"backfill {source.table}: {source.label} -> {target.label}",
        total=estimate or None,
        enabled=show_progress,
    )
    bar.update(checkpoint.totals()["scanned"])

    def copy_item(item: TypedItem) -> tuple[str, ...]:
        """Copy what of one item may leave the source; the counters it adds."""
        exported = rules.exportable(item)
        if exported is None:  # the source's rules keep it there: it never goes into a write
            return ("scanned", "kept")
        limiter.acquire()
        version = version_of(item, names)
        with aws_errors(f"{target.name} DynamoDB"):
            outcome = writer.apply(Change(key_of(item, keys), version or UNVERSIONED, exported))
        return ("scanned", OUTCOME_COUNTERS[outcome]) + (() if version else ("unversioned",))

    def copy_segment(segment: int) -> None:
        state = checkpoint.segments[segment]
        if state.done:
            return
        start = to_client(state.last_key) if state.last_key else None
        for items, last in scan_pages(
            source, source_table, segment, segments, start_key=start, page_size=page_size, stop=stop
        ):
            counts = dict.fromkeys(COUNTERS, 0)
            for item in items:
                if stop.is_set():
                    return  # the page is not checkpointed: it is read and applied again on resume
                for name in copy_item(item):
                    counts[name] += 1
                bar.update(1)
            checkpoint.advance(segment, from_client(last) if last else None, counts)
            with run_lock:
                for name, value in counts.items():
                    this_run[name] += value

    try:
        run_segments(segments, copy_segment, stop)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: progress is saved in {path}; continue with --resume") from None
    finally:
        bar.close()
    return BackfillReport(
        source=source.name,
        target=target.name,
        segments=segments,
        resumed=resumed,
        checkpoint=str(path),
        this_run=this_run,
        totals=checkpoint.totals(),
        seconds=round(time.monotonic() - began, 2),
        complete=all(s.done for s in checkpoint.segments),
    )


def render(report: BackfillReport) -> str:
    t = report.totals
    lines = [
        f"backfill {report.source} -> {report.target}: {t['scanned']} items scanned, {t['copied']} copied, "
        f"{t['stale']} skipped as stale (the target was newer or equal), {t['tombstoned']} skipped "
        f"(a newer delete is remembered), {t['unversioned']} without version attributes"
        + (f", {t['kept']} kept on the source by its residency rules" if t["kept"] else ""),
        f"  this run: {report.this_run['scanned']} items in {report.seconds:g} s"
        + (" (resumed from the checkpoint)" if report.resumed else ""),
        f"  checkpoint: {report.checkpoint}" + ("" if report.complete else " (incomplete: --resume)"),
    ]
    if t["unversioned"]:
        lines.append(
            "  items without a version were written with the oldest version; the target's forwarder stamps "
            "them and sends them back, so both sides end with the same stamped item"
        )
    return "\n".join(lines)
