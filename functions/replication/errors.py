"""Errors the engine raises on purpose, each with a message an operator can act on."""

from __future__ import annotations


class ConfigurationError(Exception):
    """A required setting is missing or malformed."""


class WireFormatError(ValueError):
    """A message from the peer cannot be decoded or fails validation (a poison message)."""


class PeerCredentialsError(Exception):
    """The peer partition's credentials are missing, malformed or rejected."""


class ChangeRefused(ValueError):
    """One change from the peer that must never be applied, however often it is retried (a permanent
    failure of that change alone): it goes to the failure queue with this error as its reason."""


class VersionAheadOfClock(ChangeRefused):
    """The change's version is more than MAX_CLOCK_SKEW_SECONDS ahead of this side's clock."""


class ReservedAttributeInChange(ChangeRefused):
    """The change's item carries an attribute name the engine reserves for itself."""
