"""One local partition: a moto server in its own process, with moto's own Lambda dispatch turned off.

moto's backends are process-global, so each partition runs in a process of its own. When an event
source mapping exists, moto would invoke the function itself on every table-stream or Kinesis write
(which needs Docker) and, for DynamoDB, clear the stream records once that invocation "succeeds".
Both paths are replaced by no-ops here, so the records stay in the streams for the event-source
runner to read, exactly as Lambda's pollers would find them.

The plain port is served by waitress, which keeps HTTP/1.1 connections open between requests as
AWS's endpoints do (``KeepAliveServer``). Requests are served one at a time (a lock around the WSGI
application): moto's backends are not
thread-safe (a conditional write is a read then a write; ``TransactWriteItems`` failed with
"dictionary changed size during iteration" under load).

Everything that makes moto behave as AWS documents (numbers, stream records, conditions, item size,
transactions, iterators, list filters) is in ``moto_fidelity``, shared with the in-process tests.

With ``--enforce-iam`` every request is authenticated and authorized by the caller's IAM policies
first (``iam_enforcement``), inside the same one-at-a-time lock.

IAM Roles Anywhere, which moto lacks, is emulated in front of moto (``rolesanywhere``): its control
plane inside the IAM enforcement, CreateSession (signed with a certificate) before it. The same
application is served on a second, TLS port (``--tls-dir``: a server certificate from the local CA of
``tls``), because the Roles Anywhere client library always calls ``https://<endpoint>/sessions``.

Run as ``python -m replication_ops.local.moto_launcher --port 0``: prints one JSON line
``{"port": N, "tls_port": T, "pid": P}`` once it listens, and stops when its standard input closes
(its parent died or asked it to stop) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from replication_ops.local import moto_fidelity, tls
from replication_ops.local.config import BUILD_DIR
from replication_ops.local.rolesanywhere import RolesAnywhere


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


def list_moto_modules_once() -> None:
    """moto's server names each request's service by looking its host up in
    ``moto.backends.list_of_moto_modules()``, which lists moto's package folder and stats every entry
    on every request (about 4 % of a partition's CPU in ``make demo``). The folders do not change
    while the server runs: list them once."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "listed_once", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules.listed_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


def list_handler_methods_once() -> None:
    """moto's ``BaseResponse.call_action`` finds the handler method of every request among the names
    ``inspect.getmembers`` lists for the handler's class, walking every attribute of the class and its
    bases per request (about 5 % of a partition's CPU for a PutItem). A class's functions do not
    change once the server serves (``moto_fidelity`` and the other patches are applied before it
    starts): list each class's once. Call after every patch."""
    from moto.core import responses, utils

    if getattr(responses.method_names_from_class, "listed_once", False):
        return
    listed: dict[type, list[str]] = {}

    def method_names_from_class(clazz: type) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = utils.method_names_from_class(clazz)
        return names

    method_names_from_class.listed_once = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]


def serialize_attribute_values_directly() -> None:
    """moto's JSON response serializer finds each member of a structure through a chain of alias
    look-ups (six alias providers, each tried as written and in snake_case) and does so for every
    member the shape has, present or not. A DynamoDB ``AttributeValue`` has ten members and usually
    one value, so each attribute of each item or stream-record image cost ten such look-ups: the
    serializer was about half of a partition's CPU for a stream's GetRecords (about 1 ms per record
    of six attributes).

    For an ``AttributeValue`` given as a plain dict whose keys are all member names (what moto's
    items and stream records hold), the look-ups can only find the member's own key, so its value is
    taken straight from the dict; each present member is then serialized by moto's own code as
    before (strings, numbers, base64 of binaries, nested maps and lists). The same JSON, member for
    member; anything else (another picker, response transformers, other keys) goes the usual way."""
    from moto.core.serialize import (
        DEFAULT_ALIAS_PROVIDERS,
        AttributePicker,
        BaseJSONSerializer,
        XFormedAttributePicker,
    )

    original = BaseJSONSerializer._serialize_type_structure
    if getattr(original, "direct_attribute_values", False):
        return

    def plain(picker: Any) -> bool:
        return (
            type(picker) in (AttributePicker, XFormedAttributePicker)
            and not picker.response_transformers
            and list(picker.alias_providers) == DEFAULT_ALIAS_PROVIDERS
        )

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            key
            and shape.name == "AttributeValue"
            and type(value) is dict
            and value.keys() <= shape.members.keys()
            and plain(self._value_picker)
        ):
            wrapper = self.MAP_TYPE()
            for member_key, member_shape in shape.members.items():
                member_shape.parent = shape
                member_value = value.get(member_key)
                if member_value is not None:
                    self._serialize(wrapper, member_value, member_shape, member_key)
            self._default_serialize(serialized, wrapper, shape, key)
            return
        original(self, serialized, value, shape, key)

    _serialize_type_structure.direct_attribute_values = True  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


def lex_condition_expressions_once() -> None:
    """moto parses a ``ConditionExpression`` on every conditional write, first cutting its text into
    tokens with a list of regular expressions tried at every position (about 6 % of a partition's CPU
    in ``make demo``, whose writers send the same few expressions again and again). The tokens depend
    on the text alone: cut each distinct text once and hand every parse fresh tokens (new nodes, new
    child lists, a new deque), so the parse that follows (names, values, functions, operators) runs
    as before. A text that cannot be cut raises moto's error each time, as before."""
    from collections import deque
    from functools import lru_cache

    from moto.dynamodb.comparisons import ConditionExpressionParser

    original = ConditionExpressionParser._lex_condition_expression
    if getattr(original, "lexed_once", False):
        return
    node = ConditionExpressionParser.Node

    @lru_cache(maxsize=1024)
    def tokens(expression: str) -> tuple[tuple[Any, ...], ...]:
        lexed = original(ConditionExpressionParser(expression, {}, {}))
        return tuple((n.nonterminal, n.kind, n.text, n.value) for n in lexed)

    def _lex_condition_expression(self: Any) -> Any:
        expression = self.condition_expression
        if not isinstance(expression, str):
            return original(self)
        return deque(node(*fields, []) for fields in tokens(expression))

    _lex_condition_expression.lexed_once = True  # type: ignore[attr-defined]
    ConditionExpressionParser._lex_condition_expression = _lex_condition_expression  # type: ignore[method-assign]


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


def application(*, enforce_iam: bool = False) -> Any:
    """moto, Roles Anywhere's emulation and (optionally) IAM enforcement, one request at a time."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    roles_anywhere = RolesAnywhere()
    app: Any = roles_anywhere.control_plane(DomainDispatcherApplication(create_backend_app))
    if enforce_iam:
        from replication_ops.local.iam_enforcement import IamEnforcement, bootstrap_identities

        bootstrap_identities()
        app = IamEnforcement(app)
    return serialized(roles_anywhere.sessions(app))


# waitress keeps at most this many connections open; the clients of one run (every boto3 client's
# pool in the demo process and the workers, Terraform's) hold far fewer.
CONNECTION_LIMIT = 1000


class KeepAliveServer:
    """``app`` served by waitress: HTTP/1.1 connections are kept open between requests, as AWS's
    endpoints keep them, and every client (botocore's connection pool, Terraform's) reuses them.

    werkzeug's development server closes every connection after one response (``Connection:
    close``; with its 10 ms drain of the socket after each request it cannot keep one open), so each
    call cost a new TCP connection, a name lookup in the client and a thread in the server: the
    largest share of the local environment's CPU per replicated change after moto itself.
    The same interface as werkzeug's server (``server_port``, ``serve_forever``, ``shutdown``,
    ``server_close``)."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        from waitress.server import create_server

        self._server = create_server(
            app,
            host=host,
            port=port,
            threads=4,
            connection_limit=CONNECTION_LIMIT,
            asyncore_use_poll=True,  # no select() limit on descriptors
            clear_untrusted_proxy_headers=True,
            ident="moto",
        )
        self.server_port: int = self._server.effective_port

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        """Serve until ``shutdown`` (``poll_interval``: werkzeug's argument, unused)."""
        try:
            self._server.run()
        finally:
            self._server.task_dispatcher.shutdown()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` from another thread, in the server's own loop (waitress's trigger):
        first the worker threads (each finishes the request it serves, at most 5 s), then every socket
        and the trigger itself, after which the loop ends.

        The order matters: a worker that has just sent its response still wakes the loop through the
        trigger's pipe; closed before it, the pipe's descriptor could be reused by another server's
        and that write land there (or fail with EBADF, as the shutdown test once did under load).

        The thunk is queued and the pipe written under the trigger's lock, which the loop takes to run
        the thunks: ``pull_trigger`` queues first and writes after, so a worker's wake-up in between
        ran the stop, closing the pipe before this write (EBADF, about once in 10,000 shutdowns)."""
        from waitress import wasyncore

        server = self._server
        trigger = server.trigger

        def stop() -> None:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(server._map)

        with trigger.lock:
            if trigger._closed:
                return
            trigger.thunks.append(stop)
            trigger._physical_pull()

    def server_close(self) -> None:
        from waitress import wasyncore

        wasyncore.close_all(self._server._map)


def make_server(host: str, port: int, app: Any, *, tls_dir: Path | None = None) -> Any:
    """A server for ``app``: waitress with kept-alive connections (``KeepAliveServer``); over TLS
    with the local server certificate when ``tls_dir`` is given, werkzeug's threaded server (only
    Roles Anywhere's CreateSession is called there, once per session)."""
    if tls_dir is None:
        return KeepAliveServer(host, port, app)
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server as werkzeug_server

    ssl_context = tuple(str(p) for p in tls.server_certificate(tls_dir))
    return werkzeug_server(
        host, port, app, threaded=True, request_handler=MotoRequestHandler, ssl_context=ssl_context
    )


def _stop_on_stdin_eof(stop: Any) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    threading.Thread(target=stop, daemon=True).start()


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
    parser.add_argument("--tls-port", type=int, default=0, help="TLS port; 0 picks a free one")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=BUILD_DIR / "tls",
        help="folder of the local CA and server certificate (made when missing; default build/local/tls)",
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local partitions listen on loopback only")

    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # requests wait for the lock anyway
    disable_lambda_dispatch()
    list_moto_modules_once()
    serialize_attribute_values_directly()
    lex_condition_expressions_once()
    moto_fidelity.apply()
    app = application(enforce_iam=args.enforce_iam)
    list_handler_methods_once()  # after every patch of a handler class
    server = make_server(args.host, args.port, app)
    tls_server = make_server(args.host, args.tls_port, app, tls_dir=args.tls_dir)
    threading.Thread(target=tls_server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def stop() -> None:
        tls_server.shutdown()
        server.shutdown()

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop, daemon=True).start())
    print(
        json.dumps({"port": server.server_port, "tls_port": tls_server.server_port, "pid": os.getpid()}),
        flush=True,
    )
    if not args.no_stdin_watch:
        threading.Thread(target=_stop_on_stdin_eof, args=(stop,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        tls_server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
