"""Errors the engine raises on purpose, each with a message an operator can act on.

Messages of ``PermanentChangeError`` and its subclasses go to logs and to the failure queue: they name
where and why (an attribute's name, a size, a limit), never an item's contents, which may be
personal data.
"""

from __future__ import annotations


class ConfigurationError(Exception):
    """A required setting is missing or malformed."""


class PermanentChangeError(ValueError):
    """A change that can never be applied as it is (see docs/failure-handling.md).

    The replicator sends it to the failure queue with this error's message and goes on: the other
    changes of its record and batch are applied, and the shard is never held up by it. Any check
    that finds such a change raises a subclass of this (or this class itself).
    """


class WireFormatError(PermanentChangeError):
    """A message from the peer cannot be decoded or fails validation (a poison message).

    Raised for a whole record (header, compression, body) or, inside a record, for one change.
    """


class BodyTooLargeError(WireFormatError):
    """A record's body inflates beyond what the reader allows (it stops inflating there)."""


class ItemValidationError(PermanentChangeError):
    """A change DynamoDB would refuse with a ValidationException: its key does not match the table's
    key schema, or its item breaks one of DynamoDB's documented limits (size, sets, names)."""


class PeerCredentialsError(Exception):
    """The peer partition's credentials are missing, malformed or rejected."""


class VersionAheadOfClock(PermanentChangeError):
    """The change's version is more than MAX_CLOCK_SKEW_SECONDS ahead of this side's clock."""


class ReservedAttributeInChange(PermanentChangeError):
    """The change's item carries an attribute name the engine reserves for itself."""
