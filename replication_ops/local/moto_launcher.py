"""One local partition: a moto server in its own process, with moto's own Lambda dispatch turned off.

moto's backends are process-global, so each partition runs in a process of its own. When an event
source mapping exists, moto would invoke the function itself on every table-stream or Kinesis write
(which needs Docker) and, for DynamoDB, clear the stream records once that invocation "succeeds".
Both paths are replaced by no-ops here, so the records stay in the streams for the event-source
runner to read, exactly as Lambda's pollers would find them.

A few more changes make moto behave like one AWS region under concurrent clients:

- requests are served one at a time (a lock around the WSGI application): moto's backends are not
  thread-safe (a conditional write is a read then a write; ``TransactWriteItems`` failed with
  "dictionary changed size during iteration" under load);
- ``TransactWriteItems`` no longer deep-copies every table it touches to roll back on failure. That
  copy grows with the table and its stream (seconds per call after a few thousand writes), and the
  rollback swapped in the copy as a new table object, so open stream iterators kept reading the
  old object's shard and never saw a later write. The patch notes the touched items and the stream
  lengths instead, and on failure restores those items and drops the stream records written since;
- an unknown DynamoDB Streams iterator is an expired one, and old iterators are forgotten;
- ListEventSourceMappings and DescribeAlarms filter as AWS does.

With ``--enforce-iam`` every request is authenticated and authorized by the caller's IAM policies
first (``iam_enforcement``), inside the same one-at-a-time lock.

Run as ``python -m replication_ops.local.moto_launcher --port 0``: prints one JSON line
``{"port": N, "pid": P}`` once it listens, and stops when its standard input closes (its parent died
or asked it to stop) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import os
import signal
import sys
import threading
from typing import Any


def disable_lambda_dispatch() -> None:
    """Stop moto from invoking functions behind event source mappings (streams, Kinesis, SQS)."""
    from moto.awslambda.models import LambdaBackend

    def no_dynamodb_dispatch(self: Any, function_arn: str, items: list[Any], source: str) -> None:
        # None (falsy): moto keeps the records in the stream shard.
        return None

    def no_kinesis_dispatch(self: Any, **kwargs: Any) -> None:
        return None

    def no_sqs_dispatch(self: Any, function_arn: str, messages: Any, queue_arn: str) -> bool:
        # False: moto leaves the messages in the queue.
        return False

    LambdaBackend.send_dynamodb_items = no_dynamodb_dispatch  # type: ignore[method-assign,assignment]
    LambdaBackend.send_kinesis_message = no_kinesis_dispatch  # type: ignore[method-assign,assignment]
    LambdaBackend.send_sqs_batch = no_sqs_dispatch  # type: ignore[method-assign,assignment]


def lambda_dispatch_disabled() -> bool:
    from moto.awslambda.models import LambdaBackend

    return getattr(LambdaBackend.send_dynamodb_items, "__name__", "") == "no_dynamodb_dispatch"


class _TableSparingCopy:
    """Stands in for the ``copy`` module inside ``moto.dynamodb.models``: a deep copy of a whole table
    (the rollback backup of ``transact_write_items``) is the table itself; rollback is done by
    ``_compensating_transact`` instead. Every other deep copy is a real one."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _transaction_snapshot(
    backend: Any, transact_items: list[dict[str, Any]]
) -> tuple[list[Any], dict[str, int]]:
    touched: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    streams: dict[str, int] = {}
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            name = op["TableName"]
            table = backend.tables[name]
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            current = backend.get_item(name, key)
        except Exception:
            continue  # moto itself rejects the request: nothing of it is applied
        touched.append((name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        if table.stream_shard is not None:
            streams.setdefault(name, len(table.stream_shard.items))
    return touched, streams


def _transaction_restore(backend: Any, snapshot: tuple[list[Any], dict[str, int]]) -> None:
    touched, streams = snapshot
    for name, key, old in reversed(touched):
        current = backend.get_item(name, key)
        if old is None:
            if current is not None:
                backend.delete_item(name, key)
        else:
            backend.put_item(name, old)
    for name, length in streams.items():
        shard = backend.tables[name].stream_shard
        if shard is not None:
            del shard.items[length:]  # a cancelled transaction leaves no stream record


def make_transactions_cheap() -> None:
    """Replace the whole-table deep copy of ``TransactWriteItems`` by a per-item compensation."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    if getattr(models.DynamoDBBackend.transact_write_items, "_compensating", False):
        return
    models.copy = _TableSparingCopy(Table)  # type: ignore[assignment]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = _transaction_snapshot(self, transact_items)
        try:
            return original(self, transact_items)
        except Exception:
            _transaction_restore(self, snapshot)
            raise

    transact_write_items._compensating = True  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


MAX_STREAM_ITERATORS = 20_000


def bound_stream_iterators() -> None:
    """moto keeps every DynamoDB Streams iterator it ever issued (a poller makes four a second):
    keep the newest ``MAX_STREAM_ITERATORS`` so that a long ``make up`` does not grow without end.
    Pollers use each iterator once, right away; an unknown or dropped one gets AWS's answer to an
    expired iterator (``ExpiredIteratorException``) instead of moto's HTTP 500."""
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if getattr(DynamoDBStreamsBackend.get_records, "_bounded", False):
        return
    original = DynamoDBStreamsBackend.get_records

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        if iterator_arn not in self.shard_iterators:
            raise JsonRESTError("ExpiredIteratorException", "Iterator expired or unknown")
        result = original(self, iterator_arn, limit)
        excess = len(self.shard_iterators) - MAX_STREAM_ITERATORS
        if excess > 0:
            for stale in list(itertools.islice(self.shard_iterators, excess)):
                del self.shard_iterators[stale]
        return result

    get_records._bounded = True  # type: ignore[attr-defined]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def _function_name(name_or_arn: str) -> str:
    """``f``, ``arn:...:function:f`` and ``arn:...:function:f:$LATEST`` all name ``f``."""
    return name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]


def aws_like_filters() -> None:
    """Two list filters that moto applies differently from AWS (the operations CLI relies on both):

    - ListEventSourceMappings ``FunctionName`` takes a name, an ARN or a partial ARN;
    - DescribeAlarms applies ``AlarmNamePrefix``, ``AlarmNames``, ``ActionPrefix`` and ``StateValue``
      together (moto used only the first one given).
    """
    from moto.awslambda.models import LambdaBackend
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    if getattr(LambdaBackend.list_event_source_mappings, "_aws_like", False):
        return

    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> list[Any]:
        mappings = list(self._event_source_mappings.values())
        if event_source_arn:
            mappings = [m for m in mappings if m.event_source_arn == event_source_arn]
        if function_name:
            wanted = _function_name(function_name)
            mappings = [m for m in mappings if _function_name(m.function_arn) == wanted]
        return mappings

    def describe_alarms(self: Any) -> Any:
        alarms = list(self.cloudwatch_backend.describe_alarms())
        action_prefix = self._get_param("ActionPrefix")
        name_prefix = self._get_param("AlarmNamePrefix")
        names = self._get_param("AlarmNames", [])
        state = self._get_param("StateValue")
        if action_prefix:
            alarms = [a for a in alarms if any(x.startswith(action_prefix) for x in a.alarm_actions)]
        if name_prefix:
            alarms = [a for a in alarms if a.name.startswith(name_prefix)]
        if names:
            alarms = [a for a in alarms if a.name in names]
        if state:
            alarms = [a for a in alarms if a.state_value == state]
        return ActionResult(
            {
                "MetricAlarms": [a for a in alarms if a.rule is None],
                "CompositeAlarms": [a for a in alarms if a.rule is not None],
            }
        )

    list_event_source_mappings._aws_like = True  # type: ignore[attr-defined]
    LambdaBackend.list_event_source_mappings = list_event_source_mappings  # type: ignore[method-assign]
    CloudWatchResponse.describe_alarms = describe_alarms  # type: ignore[method-assign]


def serialized(app: Any) -> Any:
    """The WSGI application, one request at a time (moto's backends are not thread-safe)."""
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return application


def make_server(host: str, port: int, *, enforce_iam: bool = False) -> Any:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server as werkzeug_server

    app: Any = DomainDispatcherApplication(create_backend_app)
    if enforce_iam:
        from replication_ops.local.iam_enforcement import IamEnforcement, bootstrap_identities

        bootstrap_identities()
        app = IamEnforcement(app)
    return werkzeug_server(host, port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


def _stop_on_stdin_eof(server: Any) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    threading.Thread(target=server.shutdown, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--name", default="partition", help="name shown in logs")
    parser.add_argument(
        "--no-stdin-watch", action="store_true", help="keep running when standard input closes"
    )
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="authenticate every request and authorize it by the caller's IAM policies (iam_enforcement)",
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local partitions listen on loopback only")

    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    disable_lambda_dispatch()
    make_transactions_cheap()
    bound_stream_iterators()
    aws_like_filters()
    server = make_server(args.host, args.port, enforce_iam=args.enforce_iam)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(json.dumps({"port": server.server_port, "pid": os.getpid()}), flush=True)
    if not args.no_stdin_watch:
        threading.Thread(target=_stop_on_stdin_eof, args=(server,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
