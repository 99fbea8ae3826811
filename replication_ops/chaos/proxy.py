"""A fault-injecting HTTP proxy on loopback, in front of one local partition's endpoint.

It stands where the Internet (or the AWS API front door) stands between a function and AWS:
- network faults: link refused, blackholed (accepted, never answered), latency with jitter,
  connections reset;
- API faults, as AWS itself answers them: throttled calls, and PutRecords answered with some
  records rejected (``ProvisionedThroughputExceededException``) while the others are written.

Kernel traffic shaping is not available on these machines, so the faults live in user space.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import struct
import threading
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from replication_ops.chaos.faults import FaultCounters, FaultPlan, LinkState, Reset

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
THROTTLE_BODIES = {
    "Kinesis": ("ProvisionedThroughputExceededException", "Rate exceeded for shard (injected)"),
    "DynamoDB": ("ThrottlingException", "Rate of requests exceeds the allowed throughput (injected)"),
}


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FaultProxy:
    def __init__(self, upstream_url: str, *, plan: FaultPlan | None = None, port: int = 0) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan = plan or FaultPlan()
        self.state = LinkState.UP
        self.counters = FaultCounters()
        self.port = port
        self._listener: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        self._release_held()

    def set_state(self, state: LinkState) -> None:
        """Change the link; refusing closes the listening socket, healing opens it again."""
        previous = self.state
        self.state = state
        if state is LinkState.REFUSE and previous is not LinkState.REFUSE:
            self.counters.add("refused_periods")
            self._close_listener()
        elif state is not LinkState.REFUSE and previous is LinkState.REFUSE:
            self._listen()
        if state is not LinkState.BLACKHOLE:
            self._release_held()

    # -- the loop ------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5.0
        while True:  # healing reopens the same port, which the kernel may not have released yet
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.05)
        listener.listen(128)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept loop: nothing is accepted after this
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _release_held(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            _reset(connection)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                connection, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            if self.state is LinkState.BLACKHOLE:
                self.counters.add("blackholed")
                with self._lock:
                    self._held.append(connection)
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        reader = client.makefile("rb")
        connection: socket.socket | None = client
        try:
            while connection is not None and not self._stopped.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                self.counters.add("requests")
                connection = self._exchange(connection, upstream, request)
        except OSError:
            return
        except Exception:  # the proxy's own failure: answer as a broken gateway would, and count it
            self.counters.add("proxy_errors")
            log.exception("fault proxy failed a request")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.sendall(_response_bytes(502, {}, b"fault proxy error"))
        finally:
            upstream.close()
            reader.close()
            if connection is not None:
                connection.close()

    def _exchange(
        self, client: socket.socket, upstream: http.client.HTTPConnection, request: Request
    ) -> socket.socket | None:
        """One request through the link; None when the connection is gone (reset or held)."""
        if self.state is LinkState.REFUSE:
            # An open keep-alive connection does not survive the peer going away either.
            self.counters.add("resets")
            _reset(client)
            return None
        if self.state is LinkState.BLACKHOLE:
            self.counters.add("blackholed")
            with self._lock:
                self._held.append(client)
            return None
        reset = self.plan.reset_due()
        if reset is Reset.BEFORE_FORWARDING:
            self.counters.add("resets")
            _reset(client)
            return None
        delay = self.plan.delay_seconds()
        if delay:
            time.sleep(delay)
        status, headers, body = self._answer(upstream, request)
        if reset is Reset.REPLY_LOST:
            self.counters.add("resets")
            self.counters.add("replies_lost")
            _reset(client)
            return None
        client.sendall(_response_bytes(status, headers, body))
        return client

    # -- AWS API faults ------------------------------------------------------------------------

    def _answer(
        self, upstream: http.client.HTTPConnection, request: Request
    ) -> tuple[int, dict[str, str], bytes]:
        service, _, operation = request.headers.get("x-amz-target", "").partition(".")
        share = self.plan.throttle.get(operation, 0.0)
        if operation == "PutRecords" and share > 0:
            return self._partial_put_records(upstream, request, share)
        if share > 0 and self.plan.chance(share):
            self.counters.add("throttled_calls")
            return _throttled(service)
        return _forward(upstream, request)

    def _partial_put_records(
        self, upstream: http.client.HTTPConnection, request: Request, share: float
    ) -> tuple[int, dict[str, str], bytes]:
        payload = json.loads(request.body)
        records = payload["Records"]
        rejected = {i for i in range(len(records)) if self.plan.chance(share)}
        if not rejected:
            return _forward(upstream, request)
        self.counters.add("throttled_records", len(rejected))
        kept = [record for i, record in enumerate(records) if i not in rejected]
        answers: list[dict[str, Any]] = []
        if kept:
            trimmed = request._replace(body=json.dumps({**payload, "Records": kept}).encode())
            status, headers, body = _forward(upstream, trimmed)
            if status != 200:
                return status, headers, body
            answers = json.loads(body)["Records"]
        merged, failed = [], 0
        kept_answers = iter(answers)
        for index in range(len(records)):
            if index in rejected:
                answer = {
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded",
                }
            else:
                answer = next(kept_answers)
            failed += bool(answer.get("ErrorCode"))
            merged.append(answer)
        body = json.dumps({"FailedRecordCount": failed, "Records": merged}).encode()
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, body


def _read_request(reader: Any) -> Request | None:
    line = reader.readline(MAX_HEADER_BYTES)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = reader.readline(MAX_HEADER_BYTES)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = reader.read(length) if length else b""
    return Request(method, path, headers, body)


def _forward(upstream: http.client.HTTPConnection, request: Request) -> tuple[int, dict[str, str], bytes]:
    # The client's Host header goes through unchanged: it is part of the SigV4 signature, which the
    # partitions check (a network fault never rewrites a request).
    skipped = ("content-length", "connection")
    sent = {k: v for k, v in request.headers.items() if k not in skipped}
    upstream.request(request.method, request.path, body=request.body, headers=sent)
    response = upstream.getresponse()
    payload = response.read()
    kept = {
        k: v
        for k, v in response.getheaders()
        if k.lower() not in ("content-length", "transfer-encoding", "connection")
    }
    return response.status, kept, payload


def _throttled(service: str) -> tuple[int, dict[str, str], bytes]:
    family = "Kinesis" if service.startswith("Kinesis") else "DynamoDB"
    code, message = THROTTLE_BODIES[family]
    body = json.dumps({"__type": code, "message": message}).encode()
    return 400, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}, body


def _response_bytes(status: int, headers: dict[str, str], body: bytes) -> bytes:
    reason = http.client.responses.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: keep-alive", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def _reset(connection: socket.socket) -> None:
    """Close with RST, as a middlebox dropping the connection would."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    except OSError:
        pass
