"""Versions and their order: the conflict rules of last-writer-wins (see docs/conflict-rules.md).

A version is (timestamp, origin, is_delete), compared in that order:
- a later timestamp wins;
- equal timestamps: the origin region name breaks the tie, the same way on both sides;
- equal timestamp and origin: a delete wins over the upsert it removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from replication.keys import TypedItem
from replication.settings import VersionAttributes

# A stamp placed after an existing version moves the timestamp by this much at least.
STAMP_STEP = Decimal("0.000001")


@dataclass(frozen=True)
class Version:
    timestamp: Decimal
    origin: str
    is_delete: bool = False

    def order(self) -> tuple[Decimal, str, bool]:
        return (self.timestamp, self.origin, self.is_delete)

    def __lt__(self, other: Version) -> bool:
        return self.order() < other.order()

    def __le__(self, other: Version) -> bool:
        return self.order() <= other.order()

    def __gt__(self, other: Version) -> bool:
        return self.order() > other.order()

    def __ge__(self, other: Version) -> bool:
        return self.order() >= other.order()

    def as_upsert(self) -> Version:
        return Version(self.timestamp, self.origin, False)


# The version of an item that carries no version attributes: older than any stamped write.
UNVERSIONED = Version(Decimal(0), "")


def parse_timestamp(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError):
        return None
    return value if value.is_finite() else None


def version_of(image: TypedItem | None, names: VersionAttributes) -> Version | None:
    """The version an item image carries, or None when it lacks the attributes (or they are malformed)."""
    if not image:
        return None
    timestamp = image.get(names.timestamp, {}).get("N")
    origin = image.get(names.origin, {}).get("S")
    if timestamp is None or origin is None:
        return None
    parsed = parse_timestamp(timestamp)
    return None if parsed is None else Version(parsed, origin)


def newest(*versions: Version | None) -> Version | None:
    present = [version for version in versions if version is not None]
    return max(present, key=Version.order) if present else None


def delete_version(deleted: Version | None, stream_time: Decimal, local_region: str) -> Version:
    """The version of a delete: when it happened, and never before the version it removed.

    The stream's time is whole seconds rounded down, so on its own it could sort a delete before
    the very write it removed; taking the removed version's place (with the delete rank) orders the
    delete right after it.
    """
    removed = deleted or UNVERSIONED
    if stream_time > removed.timestamp:
        return Version(stream_time, local_region, True)
    return Version(removed.timestamp, removed.origin, True)


def stamp_version(prior: Version | None, stream_time: Decimal, local_region: str) -> Version:
    """The version given to a local write that did not set a newer one itself."""
    floor = (prior or UNVERSIONED).timestamp + STAMP_STEP
    return Version(max(stream_time, floor), local_region)


def format_timestamp(timestamp: Decimal) -> str:
    """A DynamoDB number string: plain digits, no exponent, no trailing zeros."""
    text = format(timestamp.normalize(), "f")
    return text
