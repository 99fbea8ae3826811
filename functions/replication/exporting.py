"""What of the forwarder's decisions may leave this side under its table's residency rules (pure: no
AWS calls; the rules: ``replication.residency``, the semantics: docs/residency.md).

For a table with rules, per stream record the forwarder would send something for:

- an upsert whose new image is exported: the new image less the excluded attributes;
- an upsert whose new image is not exported over an old image that was: a **residency removal**, a
  plain delete of the key with the new image's version (the peer applies it as any replicated
  delete, and its forwarder takes the marked removal for an echo, so nothing comes back);
- an upsert with neither exported (or no old image): nothing (``ResidencyFiltered``);
- a delete whose old image was exported: the delete; otherwise nothing (``ResidencyFiltered``).

A write without a valid, newer version is sent by its stamp's own record; when such a write turns
an exported item into one that may not leave, that record's old image is the unstamped write (not
exported), so the removal is sent for the write's own record: a delete of the exported version it
replaced. Local writes (stamps, tombstones) are the same as without rules: only what crosses
changes. Nothing of an item that is not exported is logged: a filter error is logged with the key's
digest only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from replication.admission import reserved_attributes
from replication.changes import Change
from replication.classify import Action, Decision, stream_created
from replication.keys import TypedItem, key_digest
from replication.residency import ResidencyRules, Verdict
from replication.settings import VersionAttributes
from replication.telemetry import logger
from replication.versions import Version, read_version


@dataclass
class ResidencyTally:
    """What the rules kept here in one batch (the forwarder's metrics of the same names)."""

    filtered: int = 0  # ResidencyFiltered: changes not sent because the item may not leave
    removals: int = 0  # ResidencyRemovals: residency removals sent (an item stopped passing)
    filter_errors: int = 0  # ResidencyFilterErrors: records whose filter could not be evaluated


def screen_batch(
    records: Sequence[dict[str, Any]],
    decisions: Sequence[Decision],
    rules: ResidencyRules,
    names: VersionAttributes,
    *,
    table: str,
    tally: ResidencyTally,
) -> list[Change | None]:
    """What each record's decision (``classify.classify_batch``, one per record) sends under
    ``rules``: its change, the change projected, a residency removal, or None. Without rules, each
    decision's change. The decisions themselves (and so the local writes) are left as they are."""
    if not rules.restricts:
        return [decision.change for decision in decisions]
    return [
        _screen(record, decision, rules, names, table=table, tally=tally)
        for record, decision in zip(records, decisions, strict=True)
    ]


def removal(key: TypedItem, version: Version, created: int | None = None) -> Change:
    """A residency removal: a plain delete of ``key`` ordered right after ``version`` (a delete
    sorts after the upsert of its own version), so it removes that version and nothing newer.
    ``created``: its stream record's second (``Change.stream_created``), where there is one."""
    return Change(key, Version(version.timestamp, version.origin, True), stream_created=created)


def _screen(
    record: dict[str, Any],
    decision: Decision,
    rules: ResidencyRules,
    names: VersionAttributes,
    *,
    table: str,
    tally: ResidencyTally,
) -> Change | None:
    stream = record["dynamodb"]
    errors: list[Verdict] = []

    def verdict(image: TypedItem | None) -> Verdict | None:
        if image is None:
            return None
        found = rules.verdict({k: v for k, v in image.items() if k not in reserved_attributes(image)})
        if found is Verdict.FILTER_ERROR:
            errors.append(found)
        return found

    try:
        change = decision.change
        if decision.action is Action.FORWARD and change is not None and change.item is not None:
            if verdict(change.item) is Verdict.EXPORTED:
                return replace(change, item=rules.project(change.item))
            if verdict(stream.get("OldImage")) is Verdict.EXPORTED:
                tally.removals += 1
                return removal(change.key, change.version, change.stream_created)
            tally.filtered += 1
            return None
        if decision.action is Action.DELETE:
            if verdict(stream.get("OldImage")) is Verdict.EXPORTED:
                return change
            tally.filtered += 1
            return None
        if decision.action in (Action.STAMP, Action.TOO_LARGE):
            # The write's own stamp record is sent (or not) as a FORWARD; but when this write made an
            # exported item stop passing, that record's old image is this unstamped write, so the
            # removal is decided here: of the exported version the write replaced, and nothing newer
            # (the stamp may land on a later write of the key that does pass: its upsert then wins).
            old_image = stream.get("OldImage")
            replaced = read_version(old_image, names).version if old_image else None
            if (
                replaced is not None
                and verdict(stream.get("NewImage")) is not Verdict.EXPORTED
                and verdict(old_image) is Verdict.EXPORTED
            ):
                tally.removals += 1
                return removal(decision.key, replaced, stream_created(record))
        return change
    finally:
        if errors:
            tally.filter_errors += 1
            logger.warning(
                "the export filter could not be evaluated on an item; it is kept here",
                extra={"table": table, "key_digest": key_digest(decision.key)},
            )


__all__ = ["ResidencyTally", "removal", "screen_batch"]
