"""DynamoDB's documented limits on numbers, items and keys, checked before the engine writes.

Sources (the DynamoDB developer guide):
- "Supported data types and naming rules": a number has at most 38 significant digits; positive
  numbers range from 1E-130 to 9.9999999999999999999999999999999999999E+125, negative ones mirror
  them; leading and trailing zeros are trimmed. Attribute names are 1 character to under 64 KB.
- "Constraints": an item is at most 400 KB (409,600 bytes), attribute names included; a partition
  key value 1 to 2,048 bytes, a sort key value 1 to 1,024 bytes; documents nest at most 32 levels.
- "DynamoDB item sizes and formats": how an item's size is counted (see ``item_size``).

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
from decimal import Clamped, Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, Underflow
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
    if number_problem(text) is not None:
        return None
    return Decimal(text)


def canonical_number(value: Decimal) -> str:
    """The number as DynamoDB stores it: plain digits, no exponent, leading and trailing zeros trimmed.

    Exact for every value (no decimal context is involved); ``-0`` becomes ``0``.
    """
    sign, exponent, digits = _significant(value)
    if not digits:
        return "0"
    return format(Decimal((sign, digits, exponent)), "f")


def significant_digits(value: Decimal) -> int:
    """How many digits DynamoDB keeps of ``value`` (zero counts one)."""
    return max(1, len(_significant(value)[2]))


def binary_length(text: str) -> int:
    """Raw byte length of base64 ``text`` (the size DynamoDB counts for a binary value)."""
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return len(text)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one typed value, without its attribute name.

    Numbers: 1 byte per two significant digits, plus 1 (DynamoDB calls this an approximation; the
    engine keeps a margin wherever it matters). Lists and maps: 3 bytes, plus each element's size
    and 1 byte per element (a map element's name counts too). Sets: the sum of their elements.
    """
    ((tag, inner),) = value.items()
    if tag == "S":
        return _utf8(inner)
    if tag == "N":
        return _number_size(inner)
    if tag == "B":
        return binary_length(inner)
    if tag in ("BOOL", "NULL"):
        return SCALAR_FLAG_BYTES
    if tag == "SS":
        return sum(_utf8(x) for x in inner)
    if tag == "NS":
        return sum(_number_size(x) for x in inner)
    if tag == "BS":
        return sum(binary_length(x) for x in inner)
    if tag == "M":
        return DOCUMENT_OVERHEAD_BYTES + sum(
            _utf8(name) + value_size(member) + DOCUMENT_ELEMENT_BYTES for name, member in inner.items()
        )
    if tag == "L":
        return DOCUMENT_OVERHEAD_BYTES + sum(value_size(member) + DOCUMENT_ELEMENT_BYTES for member in inner)
    raise ValueError(f"unknown type tag {tag!r}")


def _number_size(text: str) -> int:
    value = parse_number(text)
    digits = significant_digits(value) if value is not None else len(text)
    return (digits + 1) // 2 + 1


def attribute_size(name: str, value: dict[str, Any]) -> int:
    """Bytes one attribute counts for: its name's UTF-8 bytes plus its value's size."""
    return _utf8(name) + value_size(value)


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """Bytes DynamoDB counts for an item against its 409,600-byte limit: names and values."""
    return sum(attribute_size(name, value) for name, value in item.items())


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
