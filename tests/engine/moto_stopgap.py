"""A stopgap: stock moto 5.2.5 where DynamoDB behaves otherwise and the engine's tests depend on it,
until the dynamodb-fidelity branch's ``replication_ops.local.moto_fidelity`` is merged."""

from __future__ import annotations

import threading
from importlib import import_module
from typing import Any


def moto_as_dynamodb() -> None:
    """Two behaviours of DynamoDB that stock moto 5.2.5 lacks, and that this harness (and the
    engine's worker threads in process) depend on:

    - each request is atomic: moto serves the engine's worker threads (forwarder local writes and
      replicator applies run keys in parallel) without a lock, so a request could see or undo
      another's half-made change; here requests are served one at a time;
    - a cancelled TransactWriteItems writes nothing and emits no stream record ("TransactWriteItems
      is an all-or-nothing operation", DynamoDB API reference). moto applies the writes, then rolls
      back by swapping in a deep copy of each table: the stream record of the cancelled write stays
      on the shard that open stream iterators read, and every later record goes to the copy's shard,
      which they never see (the forwarder missed every write after a refused create).

    Stopgap: once the dynamodb-fidelity branch's ``moto_fidelity`` is importable (it restores
    cancelled transactions per item, for every test: tests/conftest.py), this does nothing; the lock
    then belongs there, if moto still serves threads unlocked.
    """
    try:
        import_module("replication_ops.local.moto_fidelity")
    except ImportError:
        pass
    else:
        return
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import TransactionCanceledException

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "_as_dynamodb", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            original(self, transact_items)
        except TransactionCanceledException:
            for name, (shard, length) in shards.items():
                del shard.items[length:]
                shard.table = self.tables[name]
                self.tables[name].stream_shard = shard
            raise

    serve = BotocoreStubber.process_request
    one_at_a_time = threading.RLock()

    def process_request(self: Any, request: Any) -> Any:
        with one_at_a_time:
            return serve(self, request)

    transact_write_items._as_dynamodb = True  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
