"""A change: what one side tells the other about one item."""

from __future__ import annotations

from dataclasses import dataclass

from replication.keys import TypedItem
from replication.versions import Version


@dataclass(frozen=True)
class Change:
    """An upsert (``item`` is the whole new image, key included) or a delete (``item`` is None)."""

    key: TypedItem
    version: Version
    item: TypedItem | None = None

    @property
    def is_delete(self) -> bool:
        return self.item is None
