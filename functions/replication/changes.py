"""A change: what one side tells the other about one item."""

from __future__ import annotations

from dataclasses import dataclass, field

from replication.keys import TypedItem
from replication.versions import Version


@dataclass(frozen=True)
class Change:
    """An upsert (``item`` is the whole new image, key included) or a delete (``item`` is None)."""

    key: TypedItem
    version: Version
    item: TypedItem | None = None
    # When its DynamoDB stream record was created: the record's ApproximateCreationDateTime, epoch
    # seconds "rounded down to the closest second" (DynamoDB Streams API reference, StreamRecord). It
    # travels in the envelope for the per-stage lag (replication.lag, docs/wire-format.md) and takes
    # no part in what the change is: None in a change from a forwarder that did not send it.
    stream_created: int | None = field(default=None, compare=False)

    @property
    def is_delete(self) -> bool:
        return self.item is None
