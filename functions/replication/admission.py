"""What the replicator accepts from the peer, checked before it writes (after the wire format's own
validation, ``replication.wire`` and ``replication.typed_values``, which refuse malformed values and
numbers DynamoDB does not store: at most 38 significant digits, magnitude zero or 1E-130 to
9.99...E+125, ``limits.number_problem``).

A change DynamoDB refuses would come back as a ValidationException after a round trip: checking
first is cheaper, names the reason precisely, and lets the replicator send just that change to the
failure queue (docs/failure-handling.md). Checked here, with DynamoDB's documented limits from
``replication.limits``:

- the key matches the table's key schema: the same attribute names, of the types the table
  defines (S, N or B), not empty, a partition key value of at most 2,048 bytes and a sort key value
  of at most 1,024 bytes ("Supported data types and naming rules", "Constraints");
- the items of a set are distinct ("Each value within a set must be unique");
- attribute names are at most 64 KB;
- the item, attribute names included, is at most 409,600 bytes ("DynamoDB item sizes and formats").

And the engine's own rules (docs/conflict-rules.md, "Versions", "Reserved names"):

- a version more than ``MAX_CLOCK_SKEW_SECONDS`` ahead of this side's clock is refused: it would win
  against every real write until its time came (a timestamp in milliseconds, a clock years fast);
- attribute names starting with ``RESERVED_PREFIX`` belong to the engine (its delete mark,
  ``_ddbrep_deleting``): a change from the peer that carries one is refused (an application write
  that carries one is stamped by the forwarder, which removes it, and never exported).

Messages name attributes and limits, never values.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

from replication.changes import Change
from replication.errors import ItemValidationError, ReservedAttributeInChange, VersionAheadOfClock
from replication.keys import TypedItem
from replication.limits import (
    MAX_ATTRIBUTE_NAME_BYTES,
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    binary_value,
    item_size,
    utf8_length,
    value_size,
)
from replication.settings import KeySchema
from replication.versions import format_timestamp

RESERVED_PREFIX = "_ddbrep_"
NAME_SHOWN_CHARACTERS = 64


def reserved_attributes(item: TypedItem) -> tuple[str, ...]:
    """The item's top-level attribute names that the engine reserves, sorted."""
    names = [name for name in item if name.startswith(RESERVED_PREFIX)]
    return tuple(sorted(names)) if names else ()


def check_change(change: Change, schema: KeySchema, latest: Decimal) -> None:
    """Raise a ``PermanentChangeError`` if this side must never apply ``change`` to a table with ``schema``.

    ``latest``: the latest timestamp this side's clock allows (``versions.latest_allowed``).
    Raises ``ItemValidationError`` (DynamoDB would refuse it), ``VersionAheadOfClock`` or
    ``ReservedAttributeInChange``.
    """
    check_key(change.key, schema)
    if change.item is not None:
        check_item(change.item)
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


def check_key(key: TypedItem, schema: KeySchema) -> None:
    expected = {attribute.name for attribute in schema.attributes}
    foreign = sorted(set(key) - expected)
    if foreign:
        raise ItemValidationError(
            f"key attribute {_name(foreign[0])} is not in the table's key schema {schema.describe()}"
        )
    for attribute, limit, role in (
        (schema.hash_key, MAX_PARTITION_KEY_BYTES, "partition key"),
        (schema.range_key, MAX_SORT_KEY_BYTES, "sort key"),
    ):
        if attribute is None:
            continue
        value = key.get(attribute.name)
        if value is None:
            raise ItemValidationError(
                f"the key lacks the {role} {_name(attribute.name)} ({schema.describe()})"
            )
        ((tag, inner),) = value.items()
        if tag != attribute.type:
            raise ItemValidationError(
                f"{role} {_name(attribute.name)} is of type {tag}, "
                f"the table's key schema has {attribute.type}"
            )
        if tag in ("S", "B") and not inner:
            raise ItemValidationError(
                f"{role} {_name(attribute.name)} is empty (DynamoDB refuses empty keys)"
            )
        size = value_size(value)
        if size > limit:
            raise ItemValidationError(
                f"{role} {_name(attribute.name)} is {size:,} bytes, above DynamoDB's {limit:,}-byte limit"
            )


def check_item(item: TypedItem) -> int:
    """Raise ``ItemValidationError`` if DynamoDB would refuse ``item`` (names, sets, size); return its
    size (``limits.item_size``, attribute names included).

    One walk (per change: it must be cheap): ``limits.item_size`` counts, and calls
    ``_check_contents`` with each document and set on its way.
    """
    size = item_size(item, _check_contents)
    _check_names(item, None, size)
    if size > MAX_ITEM_BYTES:
        raise ItemValidationError(
            f"the item is {size:,} bytes with attribute names, above DynamoDB's {MAX_ITEM_BYTES:,}-byte limit"
        )
    return size


def _check_contents(attribute: str, tag: str, contents: Any, size: int) -> None:
    """``limits.ContentsCheck``: a map's member names are at most 64 KB, a set's items are distinct
    ("Each value within a set must be unique": numbers by value, binaries by their bytes)."""
    if tag == "M":
        _check_names(contents, attribute, size)
    elif tag == "SS":
        _check_distinct(set(contents), contents, attribute)
    elif tag == "NS":
        _check_distinct(set(map(Decimal, contents)), contents, attribute)
    elif tag == "BS":
        _check_distinct({_binary(element) for element in contents}, contents, attribute)


def _check_names(names: Collection[str], attribute: str | None, size: int) -> None:
    """Names of at most ``MAX_ATTRIBUTE_NAME_BYTES`` UTF-8 bytes. ``attribute``: the top-level
    attribute they are in (None: they are the top-level names); ``size``: the size of the item or
    map they name, which counts their bytes: at most the limit, no name can be over it."""
    if size <= MAX_ATTRIBUTE_NAME_BYTES:
        return
    for name in names:
        if utf8_length(name) > MAX_ATTRIBUTE_NAME_BYTES:
            where = _name(name if attribute is None else attribute)
            raise ItemValidationError(
                f"attribute {where}: a name is longer than {MAX_ATTRIBUTE_NAME_BYTES:,} bytes"
            )


def _check_distinct(distinct: set[Any], elements: list[Any], attribute: str) -> None:
    if len(distinct) != len(elements):
        raise ItemValidationError(f"attribute {_name(attribute)}: a set holds the same value twice")


def _binary(text: str) -> bytes:
    raw = binary_value(text)
    if raw is None:
        raise ItemValidationError("a binary value is not base64")
    return raw


def _name(name: str) -> str:
    shown = name if len(name) <= NAME_SHOWN_CHARACTERS else name[:NAME_SHOWN_CHARACTERS] + "..."
    return repr(shown)
