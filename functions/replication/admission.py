"""What the engine accepts from outside itself, beyond the wire format's validation.

- Attribute names starting with ``RESERVED_PREFIX`` belong to the engine (its delete mark,
  ``_ddbrep_deleting``): an application write that carries one is stamped, which removes it, and
  never exported; a change from the peer that carries one is refused.
- A version more than ``MAX_CLOCK_SKEW_SECONDS`` ahead of this side's clock is refused: it would win
  against every real write until its time came (a timestamp in milliseconds, a clock years fast).

See docs/conflict-rules.md ("Versions", "Reserved names").
"""

from __future__ import annotations

from decimal import Decimal

from replication.changes import Change
from replication.errors import ReservedAttributeInChange, VersionAheadOfClock
from replication.keys import TypedItem
from replication.versions import format_timestamp

RESERVED_PREFIX = "_ddbrep_"


def reserved_attributes(item: TypedItem) -> tuple[str, ...]:
    """The item's top-level attribute names that the engine reserves, sorted."""
    return tuple(sorted(name for name in item if name.startswith(RESERVED_PREFIX)))


def admit(change: Change, latest: Decimal) -> None:
    """Raise a ``ChangeRefused`` if this side must never apply ``change``.

    ``latest``: the latest timestamp this side's clock allows (``versions.latest_allowed``).
    """
    if change.version.timestamp > latest:
        raise VersionAheadOfClock(
            f"version {format_timestamp(change.version.timestamp)} is more than the allowed clock skew "
            f"ahead of this side's clock (latest allowed {format_timestamp(latest)})"
        )
    reserved = reserved_attributes(change.item or {})
    if reserved:
        raise ReservedAttributeInChange(
            f"the item carries attribute names reserved for the replication engine: {', '.join(reserved)}"
        )
