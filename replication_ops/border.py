"""What the residency rules let cross, as verify, repair and backfill see one logical table.

Each side's rules (its ``TABLES[name].residency``, read from its deployed forwarder: ``Side.residency``)
say what LEAVES that side (docs/residency.md). The operations commands apply them as the forwarder
does, so that a table kept in sync by the rules is identical to them, and so that they never copy
what the forwarder would not send:

- items are compared without the excluded attributes of either side (the peer's copy lacks them);
- an item that its side's filter keeps there is no difference while the peer lacks it, and is one
  (a *restricted item on the peer*) when the peer holds it too, unless it is the peer's own write
  that came over (its origin attribute is the peer's: the rules are the writing side's, and
  replicated writes are never sent back);
- backfill and repair copy from a side only ``exportable(item)`` under that side's rules: a filtered
  item never, an excluded attribute never.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from replication.keys import TypedItem
from replication.residency import ResidencyRules
from replication.settings import VersionAttributes
from replication_ops.sides import LABELS, Pair

PEER = {"cn": "us", "us": "cn"}


@dataclass(frozen=True)
class Summary:
    """One side's item of a key as the comparison sees it: the SHA-256 of what is compared (the
    item without either side's excluded attributes) and whether that side's rules keep it there."""

    digest: bytes
    kept: bool


@dataclass(frozen=True)
class Border:
    """The residency rules of both sides of one logical table."""

    rules: dict[str, ResidencyRules]  # side label -> what may leave that side
    origins: dict[str, str]  # side label -> the origin its writes carry (its LOCAL_REGION)
    names: VersionAttributes

    @classmethod
    def of(cls, pair: Pair, names: VersionAttributes) -> Border:
        """Both sides' deployed rules for the pair's table (``Pair.for_table``); ConfigError or
        AccessError when a side's forwarder cannot be read: nothing is compared or copied blind."""
        return cls(
            rules={side.label: side.residency() for side in pair.both()},
            origins={side.label: side.deployed().settings.local_region for side in pair.both()},
            names=names,
        )

    @classmethod
    def open(cls, names: VersionAttributes) -> Border:
        """No rules on either side: everything crosses, whole."""
        return cls({label: ResidencyRules() for label in LABELS}, {}, names)

    @cached_property
    def excluded(self) -> frozenset[str]:
        """The attributes left out of every comparison: those either side never exports."""
        return frozenset().union(*(rules.excluded_attributes for rules in self.rules.values()))

    @property
    def restricts(self) -> bool:
        return any(rules.restricts for rules in self.rules.values())

    def compared(self, item: TypedItem) -> TypedItem:
        """``item`` without the excluded attributes of either side."""
        excluded = self.excluded
        if not excluded.intersection(item):
            return item
        return {name: value for name, value in item.items() if name not in excluded}

    def kept(self, label: str, item: TypedItem) -> bool:
        """Whether side ``label``'s rules keep ``item`` (held there) on that side: its filter does
        not pass it (or fails on it), and it is not the peer's own write that came over."""
        peer_origin = self.origins.get(PEER[label])
        if peer_origin is not None and item.get(self.names.origin) == {"S": peer_origin}:
            return False
        return not self.rules[label].passes(item)

    def own_write_of(self, label: str, item: TypedItem) -> bool:
        """Whether ``item``'s version was written on side ``label`` (its origin attribute)."""
        origin = self.origins.get(label)
        return origin is not None and item.get(self.names.origin) == {"S": origin}

    def exportable(self, label: str, item: TypedItem) -> TypedItem | None:
        """What of ``item``, held by side ``label``, may be copied to the peer (None: nothing)."""
        return self.rules[label].exportable(item)
