"""Validation and conversion of DynamoDB typed values ({"S": ...}, {"N": ...}, ...).

Stream events and the wire carry binary values as base64 text (as Lambda's JSON does); the boto3
client wants bytes. Numbers stay strings end to end: never a float, so all 38 digits survive.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from replication.errors import WireFormatError
from replication.keys import TypedItem, TypedValue
from replication.limits import binary_value, number_problem

MAX_NESTING = 32  # DynamoDB's limit on nested documents


def validate_item(item: Any, where: str) -> TypedItem:
    if not isinstance(item, dict) or not item:
        raise WireFormatError(f"{where}: expected a non-empty map of attributes")
    for name, value in item.items():
        if not isinstance(name, str) or not name:
            raise WireFormatError(f"{where}: attribute names must be non-empty strings")
        if type(value) is dict and len(value) == 1 and type(value.get("S")) is str:
            continue  # a string, most attributes: what _validate_value accepts, without the call (issue 13)
        _validate_value(value, f"{where}.{name}", 0)
    return item


def _validate_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_NESTING:
        raise WireFormatError(f"{where}: nested deeper than {MAX_NESTING} levels")
    if not isinstance(value, dict) or len(value) != 1:
        raise WireFormatError(f"{where}: expected one type tag")
    ((tag, inner),) = value.items()
    problem = None
    if tag == "S":
        ok = isinstance(inner, str)
    elif tag == "N":
        problem = number_problem(inner)
        ok = problem is None
    elif tag == "B":
        ok = isinstance(inner, str) and binary_value(inner) is not None
    elif tag == "BOOL":
        ok = isinstance(inner, bool)
    elif tag == "NULL":
        ok = inner is True
    elif tag == "SS":
        ok = isinstance(inner, list) and bool(inner) and all(isinstance(x, str) for x in inner)
    elif tag == "NS":
        ok = isinstance(inner, list) and bool(inner)
        problem = next((p for p in map(number_problem, inner) if p is not None), None) if ok else None
        ok = ok and problem is None
    elif tag == "BS":
        ok = (
            isinstance(inner, list)
            and bool(inner)
            and all(isinstance(x, str) and binary_value(x) is not None for x in inner)
        )
    elif tag == "M":
        ok = isinstance(inner, dict)
        if ok:
            # Members by position: a map's member names can be data (the failure queue gets this path).
            for position, member in enumerate(inner.values()):
                _validate_value(member, f"{where}.M[{position}]", depth + 1)
    elif tag == "L":
        ok = isinstance(inner, list)
        if ok:
            for index, member in enumerate(inner):
                _validate_value(member, f"{where}[{index}]", depth + 1)
    else:
        raise WireFormatError(f"{where}: unknown type tag {str(tag)[:16]!r}")
    if not ok:
        # Numbers: why DynamoDB would refuse it (one check for every number the engine reads).
        raise WireFormatError(f"{where}: malformed {tag} value" + (f" ({problem})" if problem else ""))


def to_client(item: TypedItem) -> TypedItem:
    """Event/wire form -> boto3 client form (binary as bytes)."""
    return _with_binaries(item, base64.b64decode)


def from_client(item: TypedItem) -> TypedItem:
    """boto3 client form -> event/wire form (binary as base64 text)."""
    return _with_binaries(item, _base64_text)


def _base64_text(raw: Any) -> str:
    return base64.b64encode(bytes(raw)).decode("ascii")


def _with_binaries(item: TypedItem, convert: Callable[[Any], Any]) -> TypedItem:
    """``item`` with ``convert`` applied to every binary value (B, and each item of BS) at any depth;
    the other values are the same objects."""
    return {name: _value_with_binaries(value, convert) for name, value in item.items()}


def _value_with_binaries(value: TypedValue, convert: Callable[[Any], Any]) -> TypedValue:
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": convert(inner)}
    if tag == "BS":
        return {"BS": [convert(x) for x in inner]}
    if tag == "M":
        return {"M": _with_binaries(inner, convert)}
    if tag == "L":
        return {"L": [_value_with_binaries(member, convert) for member in inner]}
    return value
