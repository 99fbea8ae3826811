"""Whether DynamoDB would accept a change, checked before the replicator writes it.

A change DynamoDB refuses would come back as a ValidationException after a round trip (or, for a
number beyond Python's default decimal context, as ``decimal.Overflow`` while the request is built):
checking first is cheaper, names the reason precisely, and lets the replicator send just that change
to the failure queue (docs/failure-handling.md). The limits are DynamoDB's documented ones, from
``replication.limits``:

- the key matches the table's key schema: the same attribute names, of the types the table
  defines (S, N or B), not empty, a partition key value of at most 2,048 bytes and a sort key value
  of at most 1,024 bytes ("Supported data types and naming rules", "Constraints");
- every number (version timestamps included) is one DynamoDB stores: at most 38 significant
  digits, magnitude zero or 1E-130 to 9.99...E+125;
- the items of a set are distinct ("Each value within a set must be unique");
- attribute names are at most 64 KB;
- the item, attribute names included, is at most 409,600 bytes ("DynamoDB item sizes and formats").

Nesting (32 levels) and the typed-value syntax are checked when the record is decoded
(``replication.typed_values``). Messages name attributes and limits, never values.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal, InvalidOperation
from typing import Any

from replication.changes import Change
from replication.errors import ItemValidationError
from replication.keys import TypedItem, TypedValue
from replication.limits import (
    MAX_ATTRIBUTE_NAME_BYTES,
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    NUMBER_SYNTAX,
    canonical_number,
    item_size,
    number_problem,
    value_size,
)
from replication.settings import KeySchema

NAME_SHOWN_CHARACTERS = 64


def check_change(change: Change, schema: KeySchema) -> None:
    """Raise ItemValidationError if DynamoDB would refuse ``change`` on a table with ``schema``."""
    check_key(change.key, schema)
    problem = _number_reason(str(change.version.timestamp))
    if problem is not None:
        raise ItemValidationError(f"version timestamp: {problem}")
    if change.item is not None:
        check_item(change.item)


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
        if tag == "N":
            problem = _number_reason(inner)
            if problem is not None:
                raise ItemValidationError(f"{role} {_name(attribute.name)}: {problem}")
        size = value_size(value)
        if size > limit:
            raise ItemValidationError(
                f"{role} {_name(attribute.name)} is {size:,} bytes, above DynamoDB's {limit:,}-byte limit"
            )


def check_item(item: TypedItem) -> None:
    for name, value in item.items():
        _check_value(value, name)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ItemValidationError(
            f"the item is {size:,} bytes with attribute names, above DynamoDB's {MAX_ITEM_BYTES:,}-byte limit"
        )


def _check_value(value: TypedValue, attribute: str) -> None:
    """Numbers, sets and names inside one top-level attribute (depth is bounded by decoding)."""
    if len(attribute.encode("utf-8", "surrogatepass")) > MAX_ATTRIBUTE_NAME_BYTES:
        raise ItemValidationError(f"an attribute name is longer than {MAX_ATTRIBUTE_NAME_BYTES:,} bytes")
    ((tag, inner),) = value.items()
    if tag == "N":
        _check_number(inner, attribute)
    elif tag == "NS":
        for number in inner:
            _check_number(number, attribute)
        _check_distinct([canonical_number(Decimal(number)) for number in inner], attribute)
    elif tag == "SS":
        _check_distinct(inner, attribute)
    elif tag == "BS":
        _check_distinct([_binary(element) for element in inner], attribute)
    elif tag == "M":
        for name, member in inner.items():
            _check_member(member, name, attribute)
    elif tag == "L":
        for member in inner:
            _check_value(member, attribute)


def _check_member(member: TypedValue, name: str, attribute: str) -> None:
    if len(name.encode("utf-8", "surrogatepass")) > MAX_ATTRIBUTE_NAME_BYTES:
        raise ItemValidationError(
            f"attribute {_name(attribute)} holds a map member name "
            f"longer than {MAX_ATTRIBUTE_NAME_BYTES:,} bytes"
        )
    _check_value(member, attribute)


def _check_number(text: str, attribute: str) -> None:
    problem = _number_reason(text)
    if problem is not None:
        raise ItemValidationError(f"attribute {_name(attribute)}: {problem}")


def _check_distinct(elements: list[Any], attribute: str) -> None:
    if len(set(elements)) != len(elements):
        raise ItemValidationError(f"attribute {_name(attribute)}: a set holds the same value twice")


def _number_reason(text: Any) -> str | None:
    """``limits.number_problem`` without the number itself in the message."""
    if not isinstance(text, str) or NUMBER_SYNTAX.fullmatch(text) is None:
        return "not a number DynamoDB reads"
    try:
        Decimal(text)
    except InvalidOperation:
        return "magnitude far outside DynamoDB's number range"
    return number_problem(text)


def _binary(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ItemValidationError("a binary value is not base64") from None


def _name(name: str) -> str:
    shown = name if len(name) <= NAME_SHOWN_CHARACTERS else name[:NAME_SHOWN_CHARACTERS] + "..."
    return repr(shown)
