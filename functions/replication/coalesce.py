"""Per-key coalescing of a batch: only the newest change of each key needs to be written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from replication.changes import Change
from replication.keys import canonical_key


@dataclass
class Coalesced:
    change: Change
    sources: set[int] = field(default_factory=set)  # indices of the records that carried this key


def coalesce(changes: Iterable[tuple[int, Change]]) -> dict[str, Coalesced]:
    """Newest change per key (by the version order), with every record index that mentioned the key."""
    winners: dict[str, Coalesced] = {}
    for source, change in changes:
        slot = canonical_key(change.key)
        current = winners.get(slot)
        if current is None:
            winners[slot] = Coalesced(change, {source})
            continue
        current.sources.add(source)
        if change.version > current.change.version:
            current.change = change
    return winners
