"""Errors the engine raises on purpose, each with a message an operator can act on."""

from __future__ import annotations


class ConfigurationError(Exception):
    """A required setting is missing or malformed."""


class WireFormatError(ValueError):
    """A message from the peer cannot be decoded or fails validation (a poison message)."""


class PeerCredentialsError(Exception):
    """The peer partition's credentials are missing, malformed or rejected."""
