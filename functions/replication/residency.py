"""Residency rules: what of a table's items may leave this side (docs/residency.md).

A table's entry in ``TABLES`` may hold ``residency``::

    {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": ["national_id"]}

- ``export_filter``: a JMESPath expression (https://jmespath.org/specification.html, the language
  of the AWS CLI's ``--query``; the ``jmespath`` package ships with boto3 and Powertools) evaluated
  over the item as plain JSON (``plain_item``). An item is exported only when the result is
  exactly ``true``: any other result (``false``, ``null``, a string, an empty list) and any error
  while evaluating it keep the item here (fail closed). Without a filter every item passes. The
  item's numbers are exact; a number literal in the expression is a JSON number, read as a double
  (jmespath's parser), so literals beyond 15 significant digits are rounded.
- ``excluded_attributes``: top-level attribute names never exported; the peer's copy lacks them,
  and a change coming back from the peer keeps this side's values of them.

The rules are the sending side's: each side's entry says what leaves that side. Key attributes
and the version attributes cannot be excluded (the peer could not address or order the item).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult

from replication.errors import ConfigurationError
from replication.keys import TypedItem, TypedValue

RESIDENCY_KEYS = frozenset({"export_filter", "excluded_attributes"})
# DynamoDB's limit on an attribute name's length (DynamoDB developer guide, "Naming rules": names
# of attributes other than key attributes can be up to 64 KB).
MAX_ATTRIBUTE_NAME_BYTES = 65_535
# The module's limit too: a table's entry, its filter included, must fit in the 4 KB of the Standard
# Parameter Store parameter that holds it (replication/table_parameters.py).
MAX_FILTER_CHARS = 1_024


class Verdict(enum.Enum):
    """What the export filter said about one item."""

    EXPORTED = "exported"  # the filter returned true (or there is no filter)
    FILTERED = "filtered"  # the filter returned anything else
    FILTER_ERROR = "filter_error"  # evaluating the filter raised: kept here, counted


@dataclass(frozen=True)
class ResidencyRules:
    """One table's outgoing rules. ``ResidencyRules()`` exports everything, whole."""

    export_filter: str | None = None
    excluded_attributes: frozenset[str] = frozenset()
    _compiled: ParsedResult | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_entry(cls, value: Any, where: str, *, protected: Iterable[str] = ()) -> ResidencyRules:
        """Parse ``TABLES[name].residency`` (None or absent: no rules). ``protected``: the attribute
        names that may not be excluded (the key's and the version attributes). Raises
        ConfigurationError naming ``where`` and the fix."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{where} must be an object with {', '.join(sorted(RESIDENCY_KEYS))}")
        unknown = sorted(set(value) - RESIDENCY_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(RESIDENCY_KEYS))})"
            )
        expression = value.get("export_filter")
        compiled = None
        if expression is not None:
            if not isinstance(expression, str) or not expression.strip():
                raise ConfigurationError(f"{where}.export_filter must be a JMESPath expression or null")
            if len(expression) > MAX_FILTER_CHARS:
                raise ConfigurationError(
                    f"{where}.export_filter is longer than {MAX_FILTER_CHARS} characters"
                )
            try:
                compiled = jmespath.compile(expression)
            except jmespath.exceptions.JMESPathError as error:
                reason = str(error).splitlines()[0]
                raise ConfigurationError(
                    f"{where}.export_filter is not a JMESPath expression: {reason}"
                ) from None
        excluded = value.get("excluded_attributes") or []
        if not isinstance(excluded, list) or not all(
            isinstance(name, str)
            and name
            and len(name.encode("utf-8", "surrogatepass")) <= MAX_ATTRIBUTE_NAME_BYTES
            for name in excluded
        ):
            raise ConfigurationError(f"{where}.excluded_attributes must be a list of attribute names")
        if len(set(excluded)) != len(excluded):
            raise ConfigurationError(f"{where}.excluded_attributes names an attribute twice")
        kept = sorted(set(excluded) & set(protected))
        if kept:
            raise ConfigurationError(
                f"{where}.excluded_attributes cannot hold {kept[0]!r}: key attributes and the version "
                "attributes always cross (the peer could not address or order the item without them)"
            )
        return cls(
            export_filter=expression.strip() if expression else None,
            excluded_attributes=frozenset(excluded),
            _compiled=compiled,
        )

    @property
    def restricts(self) -> bool:
        """Whether these rules keep anything here."""
        return self.export_filter is not None or bool(self.excluded_attributes)

    def verdict(self, item: TypedItem) -> Verdict:
        """Whether ``item`` (typed, as in a stream record's image) may leave this side."""
        if self._compiled is None:
            return Verdict.EXPORTED
        try:
            result = self._compiled.search(plain_item(item))
        except (jmespath.exceptions.JMESPathError, TypeError, ValueError, ArithmeticError):
            return Verdict.FILTER_ERROR
        return Verdict.EXPORTED if result is True else Verdict.FILTERED

    def passes(self, item: TypedItem) -> bool:
        return self.verdict(item) is Verdict.EXPORTED

    def project(self, item: TypedItem) -> TypedItem:
        """``item`` without the excluded attributes (the same object when none is there)."""
        if not self.excluded_attributes.intersection(item):
            return item
        return {name: value for name, value in item.items() if name not in self.excluded_attributes}

    def exportable(self, item: TypedItem) -> TypedItem | None:
        """What of ``item`` may cross: projected when it passes, else None."""
        return self.project(item) if self.passes(item) else None


def plain_item(item: TypedItem) -> dict[str, Any]:
    """The item as plain JSON for the filter: S as text, N as ``Decimal`` (exact: built from the
    number's text, no context), B as its base64 text, BOOL, NULL as null, M and L as objects and
    arrays, SS/NS/BS as arrays in ascending order (JMESPath has no sets)."""
    return {name: _plain(value) for name, value in item.items()}


def _plain(value: TypedValue) -> Any:
    ((tag, inner),) = value.items()
    if tag in ("S", "BOOL"):
        return inner
    if tag == "B":
        return _base64_text(inner)
    if tag == "N":
        return Decimal(inner)
    if tag == "NULL":
        return None
    if tag == "M":
        return {name: _plain(member) for name, member in inner.items()}
    if tag == "L":
        return [_plain(member) for member in inner]
    if tag == "NS":
        return sorted(Decimal(number) for number in inner)
    if tag == "SS":
        return sorted(inner)
    if tag == "BS":
        return sorted(_base64_text(member) for member in inner)
    raise ValueError(f"unknown type tag {tag!r}")


def _base64_text(raw: Any) -> str:
    """Stream images and the wire carry base64 text; a boto3 client's items carry bytes."""
    return base64.b64encode(raw).decode("ascii") if isinstance(raw, bytes | bytearray) else raw


__all__ = ["ResidencyRules", "Verdict", "plain_item"]
