"""DynamoDB's documented limits on numbers, items and keys, checked before the engine writes.

Sources (the DynamoDB developer guide):
- "Supported data types and naming rules": a number has at most 38 significant digits; positive
  numbers range from 1E-130 to 9.9999999999999999999999999999999999999E+125, negative ones mirror
  them; leading and trailing zeros are trimmed. Attribute names are 1 character to under 64 KB.
- "Constraints": an item is at most 400 KB (409,600 bytes), attribute names included; a partition
  key value 1 to 2,048 bytes, a sort key value 1 to 1,024 bytes; documents nest at most 32 levels.
- "DynamoDB item sizes and formats" (CapacityUnitCalculations.html): how an item's size is counted
  (``value_size``, ``item_size``: one walk, which the replicator's checks ride, ``ContentsCheck``).

Every number here is exact: nothing passes through Python's default 28-digit decimal context
(``Decimal.normalize()``, arithmetic and ``Decimal(float)`` all round in it). ``NUMBER_CONTEXT`` is
the context for the few computations the engine makes on numbers: 38 digits, and a result that
would need more raises ``decimal.Inexact`` instead of being rounded silently.

Values are in the event/wire form (``{"S": ...}``, ``{"N": "12.5"}``, binary as base64 text).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from decimal import Clamped, Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, Underflow
from functools import lru_cache
from typing import Any

MAX_NUMBER_DIGITS = 38
# Adjusted exponents (the power of ten of the first significant digit) of the smallest and the
# largest magnitude DynamoDB stores: 1E-130 and 9.99...E+125.
MIN_NUMBER_EXPONENT = -130
MAX_NUMBER_EXPONENT = 125
LARGEST_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")
MAX_ITEM_BYTES = 400 * 1024
MAX_NESTING_DEPTH = 32
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_ATTRIBUTE_NAME_BYTES = 64 * 1024 - 1

# The number syntax DynamoDB reads: ASCII digits, an optional sign, point and exponent. (``Decimal``
# alone would also take "1_000", non-ASCII digits, "NaN" and "Infinity".)
NUMBER_SYNTAX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# 38 digits, exponents wide enough for any sum or difference of two DynamoDB numbers; anything
# that would round or overflow raises rather than silently changing a value.
NUMBER_CONTEXT = Context(
    prec=MAX_NUMBER_DIGITS,
    Emin=-999_999,
    Emax=999_999,
    traps=[Clamped, Overflow, Inexact, Rounded, Underflow, InvalidOperation],
)

# Documented size overheads ("DynamoDB item sizes and formats").
DOCUMENT_OVERHEAD_BYTES = 3  # a List or a Map, whatever it holds
DOCUMENT_ELEMENT_BYTES = 1  # each element of a List or a Map
SCALAR_FLAG_BYTES = 1  # a Null or a Boolean


def _significant(value: Decimal) -> tuple[int, int, tuple[int, ...]]:
    """(sign, exponent, digits) with leading and trailing zeros trimmed; zero is (0, 0, ())."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    nonzero = [index for index, digit in enumerate(digits) if digit]
    if not nonzero:
        return 0, 0, ()
    first, last = nonzero[0], nonzero[-1]
    return sign, exponent + len(digits) - 1 - last, digits[first : last + 1]


def number_problem(text: Any) -> str | None:
    """Why DynamoDB would refuse ``text`` as a number (None if it accepts it).

    The reason never holds the number itself (it may be personal data, and reasons are logged).
    Accepted: decimal notation (``NUMBER_SYNTAX``) with, once leading and trailing zeros are
    trimmed, at most 38 significant digits and a magnitude of zero or 1E-130 to
    9.9999999999999999999999999999999999999E+125.
    """
    if not isinstance(text, str):
        return "a number must be given as a string"
    if NUMBER_SYNTAX.fullmatch(text) is None:
        return "not a number DynamoDB reads"
    if len(text) <= MAX_NUMBER_DIGITS and "e" not in text and "E" not in text:
        # Plain digits, at most 38 of them: at most 38 significant, a magnitude of zero or between
        # 1E-37 and 1E38. Most numbers: accepted without parsing them (issue 13: the replicator's
        # CPU; tests/engine/test_replicator_cpu_equivalence.py).
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # an exponent beyond what Python's decimal represents
        return "magnitude far outside DynamoDB's number range"
    _, exponent, digits = _significant(value)
    if not digits:
        return None
    if len(digits) > MAX_NUMBER_DIGITS:
        return f"{len(digits)} significant digits, DynamoDB keeps at most {MAX_NUMBER_DIGITS}"
    adjusted = exponent + len(digits) - 1
    if adjusted > MAX_NUMBER_EXPONENT:
        return "magnitude above DynamoDB's largest number, 9.9999999999999999999999999999999999999E+125"
    if adjusted < MIN_NUMBER_EXPONENT:
        return "magnitude below DynamoDB's smallest non-zero number, 1E-130"
    return None


def parse_number(text: Any) -> Decimal | None:
    """The exact value of a DynamoDB number, or None if DynamoDB would refuse it."""
    if type(text) is str and len(text) <= CACHED_NUMBER_CHARACTERS:
        return _parse_short_number(text)
    return _parse_number(text)


# Number texts up to this long are parsed once (``parse_number``): the forwarder reads each version
# timestamp of a batch several times (issue 13: the CPU). Longer ones (never a timestamp the engine
# writes) are parsed each time, so the cache holds at most this much per entry.
CACHED_NUMBER_CHARACTERS = 64


def _parse_number(text: Any) -> Decimal | None:
    if number_problem(text) is not None:
        return None
    return Decimal(text)


@lru_cache(maxsize=8192)
def _parse_short_number(text: str) -> Decimal | None:
    return _parse_number(text)


def canonical_number(value: Decimal) -> str:
    """The number as DynamoDB stores it: plain digits, no exponent, leading and trailing zeros trimmed.

    Exact for every value (no decimal context is involved); ``-0`` becomes ``0``.
    """
    sign, exponent, digits = _significant(value)
    if not digits:
        return "0"
    return format(Decimal((sign, digits, exponent)), "f")


def binary_value(text: str) -> bytes | None:
    """The raw bytes of a binary value given as base64 ``text`` (as events and the wire carry it), or
    None if ``text`` is not strict base64 (characters outside the alphabet, wrong padding)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def binary_length(text: str) -> int:
    """Raw byte length of base64 ``text`` (the size DynamoDB counts for a binary value); the length
    of ``text`` itself if it is not base64."""
    raw = binary_value(text)
    return len(text) if raw is None else len(raw)


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (lone surrogates as 3 bytes each, as they are encoded)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


ContentsCheck = Callable[[str, str, Any, int], None]
"""``check(attribute, tag, contents, size)``, given to ``item_size``: called with each List, Map and
set in the walk once it is counted (innermost first), with the name of the top-level attribute it is
in and its ``value_size``; it raises to refuse the item (the walk stops there). Checks ride the walk
that counts, so an item is walked once (the replicator's per-change checks, ``admission``).

Scalars (S, N, B, BOOL, NULL) are not passed: a call per scalar would cost more than counting it,
and what can be wrong with a scalar alone is checked where it is decoded (``typed_values``)."""


def value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one typed value, without its attribute name ("DynamoDB item sizes and
    formats", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).

    Strings: their UTF-8 bytes. Numbers: 1 byte per two significant digits, plus 1 (DynamoDB calls
    this an approximation; the engine keeps a margin wherever it matters, ``item_size_bound``).
    Binary: the raw bytes. Null and Boolean: 1 byte. Lists and maps: 3 bytes, plus each element's
    size and 1 byte per element (a map element's name counts too). Sets: the sum of their elements
    (the page gives no overhead for a set). Raises ValueError for an unknown type tag.
    """
    return _walk(value, "", None)


def _walk(value: dict[str, Any], attribute: str, check: ContentsCheck | None) -> int:
    """``value_size``, calling ``check`` on the way (the one walk over a value's contents)."""
    ((tag, inner),) = value.items()
    if tag == "S":
        return len(inner) if inner.isascii() else utf8_length(inner)
    if tag == "N":
        return _number_size(inner)
    if tag == "B":
        return binary_length(inner)
    if tag in ("BOOL", "NULL"):
        return SCALAR_FLAG_BYTES
    if tag == "M":
        size = DOCUMENT_OVERHEAD_BYTES + DOCUMENT_ELEMENT_BYTES * len(inner)
        for name, member in inner.items():
            size += utf8_length(name) + _walk(member, attribute, check)
    elif tag == "L":
        size = DOCUMENT_OVERHEAD_BYTES + DOCUMENT_ELEMENT_BYTES * len(inner)
        for member in inner:
            size += _walk(member, attribute, check)
    elif tag == "SS":
        size = sum(map(utf8_length, inner))
    elif tag == "NS":
        size = sum(map(_number_size, inner))
    elif tag == "BS":
        size = sum(map(binary_length, inner))
    else:
        raise ValueError(f"unknown type tag {str(tag)[:16]!r}")
    if check is not None:
        check(attribute, tag, inner, size)
    return size


def _number_size(text: str) -> int:
    """A number's size, counted on its text: its significant digits are the mantissa's digits with
    leading and trailing zeros trimmed (zero has one), whatever the exponent. For every text in
    ``NUMBER_SYNTAX`` that is the count of the parsed number's digits, got without parsing it (numbers
    are most of a walk's cost); decoding refuses any other text (``number_problem``)."""
    mantissa = text.lstrip("+-").partition("e")[0].partition("E")[0]
    digits = len(mantissa.replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1


def attribute_size(name: str, value: dict[str, Any]) -> int:
    """Bytes one attribute counts for: its name's UTF-8 bytes plus its value's size (``value_size``)."""
    return utf8_length(name) + _walk(value, name, None)


def item_size(item: dict[str, dict[str, Any]], check: ContentsCheck | None = None) -> int:
    """Bytes DynamoDB counts for an item against its 409,600-byte limit: names and values
    (``attribute_size`` of each attribute), calling ``check`` on their contents if given
    (``ContentsCheck``)."""
    size = 0
    for name, value in item.items():
        size += len(name) if name.isascii() else utf8_length(name)
        text = value.get("S")
        if type(text) is str:  # most attributes are strings: counted here, without a call
            size += len(text) if text.isascii() else utf8_length(text)
        else:
            size += _walk(value, name, check)
    return size


def item_size_bound(item: dict[str, dict[str, Any]]) -> int:
    """An upper bound of what DynamoDB counts for the item: ``item_size`` plus one byte per number.

    DynamoDB documents a number's size as approximate; the extra byte per number covers its sign and
    the rounding of "1 byte per two significant digits". Use it where an underestimate would be wrong.
    """
    return item_size(item) + sum(_number_count(value) for value in item.values())


def _number_count(value: dict[str, Any]) -> int:
    ((tag, inner),) = value.items()
    if tag == "N":
        return 1
    if tag == "NS":
        return len(inner)
    if tag == "M":
        return sum(_number_count(member) for member in inner.values())
    if tag == "L":
        return sum(_number_count(member) for member in inner)
    return 0
