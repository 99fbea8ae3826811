"""Versions and their order: the conflict rules of last-writer-wins (see docs/conflict-rules.md).

A version is (timestamp, origin, is_delete), compared in that order:
- a later timestamp wins;
- equal timestamps: the origin region name breaks the tie, the same way on both sides;
- equal timestamp and origin: a delete wins over the upsert it removed.

Which values are a version at all (``read_version``): the timestamp attribute a Number (any number
DynamoDB stores) at most ``max_clock_skew_seconds`` ahead of the reader's clock, the origin attribute
a non-empty String. Anything else is *no version*, whatever its type.

Every number is exact: timestamps are parsed and formatted with ``replication.limits`` (no 28-digit
decimal context anywhere); the one computation, a stamp's ``previous + 1 µs``, rounds *up* in
DynamoDB's 38 digits so a stamp always sorts strictly after the version it follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from replication.keys import TypedItem, TypedValue
from replication.limits import (
    LARGEST_NUMBER,
    MAX_NUMBER_DIGITS,
    NUMBER_CONTEXT,
    canonical_number,
    parse_number,
)

if TYPE_CHECKING:  # settings reads the bounds defined here
    from replication.settings import VersionAttributes

# A stamp placed after an existing version moves the timestamp by this much at least.
STAMP_STEP = Decimal("0.000001")
# previous + 1 µs in DynamoDB's 38 significant digits, rounded towards +infinity: the exact sum when
# it fits, else the smallest 38-digit number above it. Never rounds down, so never sorts before.
_STAMP_ARITHMETIC = Context(prec=MAX_NUMBER_DIGITS, rounding=ROUND_CEILING, Emin=-999_999, Emax=999_999)


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


class VersionProblem(Enum):
    """Why an image carries no version."""

    ABSENT = "absent"  # neither version attribute is there: an unversioned write
    MALFORMED = "malformed"  # not both a Number (timestamp) and a non-empty String (origin)
    AHEAD = "ahead"  # a valid timestamp more than the allowed clock skew ahead of the reader's clock


@dataclass(frozen=True)
class VersionReading:
    """What an image's version attributes hold: a version, or the problem that makes them none.

    ``seen`` is the two attributes exactly as the image has them (typed values, None where absent):
    a write conditioned on "still what the record showed" compares these, whatever their type.
    """

    version: Version | None
    problem: VersionProblem | None
    seen: tuple[TypedValue | None, TypedValue | None]


def parse_timestamp(raw: Any) -> Decimal | None:
    """The exact value of a timestamp given as DynamoDB number text, None if DynamoDB would refuse it."""
    return parse_number(raw)


def format_timestamp(timestamp: Decimal) -> str:
    """A DynamoDB number string: plain digits, no exponent, no leading or trailing zeros. Exact."""
    return canonical_number(timestamp)


def latest_allowed(now: float | Decimal, max_clock_skew_seconds: int) -> Decimal:
    """The latest timestamp a reader whose clock says ``now`` (epoch seconds) accepts: the next whole
    second after ``now``, plus the allowed skew (integer arithmetic: exact), within DynamoDB's range."""
    return min(Decimal(math.ceil(now) + max_clock_skew_seconds), LARGEST_NUMBER)


def clock_now(seconds: float) -> Decimal:
    """A clock reading (``time.time()``) as an exact number of whole microseconds, never later than it.

    ``Decimal(float)`` would be exact but carry ~50 digits, more than DynamoDB stores."""
    return Decimal(f"{math.floor(seconds * 1_000_000)}E-6")


def read_version(
    image: TypedItem | None, names: VersionAttributes, latest: Decimal | None = None
) -> VersionReading:
    """The version an item image carries, or why it carries none (``latest``: see ``latest_allowed``;
    None accepts any timestamp)."""
    image = image or {}
    seen = (image.get(names.timestamp), image.get(names.origin))
    if seen == (None, None):
        return VersionReading(None, VersionProblem.ABSENT, seen)
    raw_timestamp, raw_origin = seen
    timestamp = _typed(raw_timestamp, "N")
    origin = _typed(raw_origin, "S")
    parsed = parse_timestamp(timestamp) if timestamp is not None else None
    if parsed is None or not isinstance(origin, str) or not origin:
        return VersionReading(None, VersionProblem.MALFORMED, seen)
    if latest is not None and parsed > latest:
        return VersionReading(None, VersionProblem.AHEAD, seen)
    return VersionReading(Version(parsed, origin), None, seen)


def _typed(value: TypedValue | None, tag: str) -> Any:
    if isinstance(value, dict) and len(value) == 1 and tag in value:
        return value[tag]
    return None


def version_of(
    image: TypedItem | None, names: VersionAttributes, latest: Decimal | None = None
) -> Version | None:
    """The version an item image carries, or None when it carries none (see ``read_version``)."""
    return read_version(image, names, latest).version


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


def after(timestamp: Decimal) -> Decimal:
    """``timestamp + 1 µs``: exact when it fits 38 digits, else rounded up to the next 38-digit number."""
    return _STAMP_ARITHMETIC.add(timestamp, STAMP_STEP)


def stamp_version(prior: Version | None, stream_time: Decimal, now: Decimal, local_region: str) -> Version:
    """The version given to a local write that did not set a valid, newer one itself.

    ``stream_time`` is the stream record's second (rounded down: the write happened within
    ``[stream_time, stream_time + 1)``); ``now`` is the forwarder's clock, later than the write. The
    stamp is ``now`` held within ``[stream_time, stream_time + 1]``, so it is never before the
    write's real time and at most one second after it (even with a forwarder clock off by more);
    and after ``prior`` (the version the write replaced) by 1 µs at least.
    """
    written = min(max(now, stream_time), NUMBER_CONTEXT.add(stream_time, 1))
    floor = after((prior or UNVERSIONED).timestamp)
    return Version(max(written, floor), local_region)
