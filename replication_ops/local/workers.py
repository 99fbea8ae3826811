"""Handler processes: each deployed function runs from its zip in worker processes, as Lambda would.

A ``FunctionRuntime`` holds a small pool of workers (execution environments) for one function: a
worker is started on demand, keeps its imported module between invocations (warm starts), is killed
when an invocation outlives the function's timeout, and is replaced after a crash. The workers'
standard output is the function's log: it is appended to a log file and its EMF metric lines
(Powertools Metrics prints JSON documents with an ``_aws`` key) are summed per metric.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from replication_ops.local.event_sources import InvokeResult

log = logging.getLogger(__name__)

WORKER_MAIN = Path(__file__).with_name("worker_main.py")
INIT_TIMEOUT_SECONDS = 60.0


class WorkerError(RuntimeError):
    pass


@dataclass
class MetricTotals:
    """EMF metrics of one function, summed over its invocations (values kept for distributions).

    A document with the ``table`` dimension counts for that table; one without it for the endpoint.
    A metric emitted both ways (``ConfigurationErrors``, ``TransientErrors``: the endpoint's total is
    what its alarms watch) totals the endpoint's figure alone, as a CloudWatch query of the
    ``service`` dimension set would; a metric emitted per table only totals the tables'."""

    sums: dict[tuple[str, str | None], float] = field(default_factory=lambda: defaultdict(float))
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # The same values by (metric, table): a distribution per table, such as each stage's lag.
    table_values: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    documents: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_line(self, line: str) -> dict[str, Any] | None:
        """Take one log line; the EMF document when it was one."""
        text = line.strip()
        if not text.startswith("{") or '"_aws"' not in text:
            return None
        try:
            document = json.loads(text)
            directives = document["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return None
        with self.lock:
            self.documents += 1
            for directive in directives:
                dimensions = {name for names in directive.get("Dimensions", []) for name in names}
                table = document.get("table") if "table" in dimensions else None
                for metric in directive.get("Metrics", []):
                    name = metric.get("Name")
                    value = document.get(name)
                    values = value if isinstance(value, list) else [value]
                    for item in values:
                        if isinstance(item, int | float):
                            self.sums[(name, table)] += item
                            self.values[name].append(float(item))
                            if table is not None:
                                self.table_values[(name, table)].append(float(item))
        return document

    def total(self, name: str) -> float:
        """The endpoint's total of ``name`` (see the class docstring)."""
        with self.lock:
            return self._totals().get(name, 0.0)

    def as_dict(self) -> dict[str, float]:
        with self.lock:
            return self._totals()

    def by_table(self) -> dict[str, dict[str, float]]:
        """Each table's sums: ``{table: {metric: sum}}``."""
        tables: dict[str, dict[str, float]] = defaultdict(dict)
        with self.lock:
            for (name, table), value in self.sums.items():
                if table is not None:
                    tables[table][name] = value
        return dict(tables)

    def values_by_table(self, names: tuple[str, ...]) -> dict[str, dict[str, list[float]]]:
        """Each table's values of the metrics ``names``: ``{table: {metric: [value, ...]}}``."""
        tables: dict[str, dict[str, list[float]]] = defaultdict(dict)
        with self.lock:
            for (name, table), values in self.table_values.items():
                if name in names:
                    tables[table][name] = list(values)
        return dict(tables)

    def _totals(self) -> dict[str, float]:
        endpoint = {name: value for (name, table), value in self.sums.items() if table is None}
        per_table: dict[str, float] = defaultdict(float)
        for (name, table), value in self.sums.items():
            if table is not None:
                per_table[name] += value
        return {**per_table, **endpoint}


class _LogSink:
    """The function's log stream: one file per function, shared by its workers."""

    def __init__(
        self, path: Path, metrics: MetricTotals, on_emf: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.metrics = metrics
        self._on_emf = on_emf

    def pump(self, stream: IO[bytes], worker_id: int) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            document = self.metrics.add_line(line)
            if document is not None and self._on_emf is not None:
                try:
                    self._on_emf(document)
                except Exception:
                    log.exception("publishing EMF metrics failed")
            with self._lock:
                self._file.write(f"[worker {worker_id}] {line}\n")
                self._file.flush()
        stream.close()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class Worker:
    """One execution environment: a process that imported the handler once."""

    _ids = itertools.count(1)

    def __init__(self, code_dir: Path, env: dict[str, str], sink: _LogSink) -> None:
        self.id = next(self._ids)
        read_fd, write_fd = os.pipe()
        env = dict(env, _LOCAL_RUNTIME_RESPONSE_FD=str(write_fd))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(WORKER_MAIN)],
                cwd=code_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._responses: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._response_file = os.fdopen(read_fd, "r", encoding="utf-8")
        assert self.process.stdout is not None
        self._log_thread = threading.Thread(
            target=sink.pump, args=(self.process.stdout, self.id), daemon=True, name=f"log-{self.id}"
        )
        self._log_thread.start()
        threading.Thread(target=self._read_responses, daemon=True, name=f"resp-{self.id}").start()
        ready = self._next(INIT_TIMEOUT_SECONDS)
        if ready is None or not ready.get("ready"):
            self.kill()
            raise WorkerError("the worker did not start (see the function's log)")
        self.init_error: dict[str, Any] | None = ready.get("init_error")
        self.modules: dict[str, str | None] = ready.get("modules") or {}
        self._sequence = itertools.count(1)

    def _read_responses(self) -> None:
        try:
            for line in self._response_file:
                try:
                    self._responses.put(json.loads(line))
                except ValueError:
                    self._responses.put({"id": None, "error": {"errorType": "Runtime.InvalidResponse"}})
        finally:
            self._responses.put(None)

    def _next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self._responses.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError from None

    def invoke(self, event: dict[str, Any], timeout: float, function_arn: str) -> InvokeResult:
        request_id = str(uuid.uuid4())
        number = next(self._sequence)
        deadline = time.time() + timeout
        request = {"id": number, "request_id": request_id, "event": event, "deadline": deadline}
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return InvokeResult(error={"errorType": "Runtime.ExitError", "errorMessage": "worker exited"})
        try:
            reply = self._next(deadline - time.time())
        except TimeoutError:
            self.kill()
            return InvokeResult(
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {timeout:.2f} seconds",
                },
                timed_out=True,
            )
        if reply is None:
            self.kill()
            return InvokeResult(error={"errorType": "Runtime.ExitError", "errorMessage": "worker exited"})
        if "error" in reply:
            return InvokeResult(error=reply["error"])
        return InvokeResult(payload=reply.get("result"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_thread.join(timeout=5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        try:
            if self.process.stdin:
                self.process.stdin.close()
        except OSError:
            pass


class FunctionRuntime:
    """A deployed function: its code folder, its environment, and a pool of workers."""

    def __init__(
        self,
        *,
        name: str,
        function_arn: str,
        code_dir: Path,
        env: dict[str, str],
        timeout: float,
        log_path: Path,
        max_concurrency: int = 2,
        on_emf: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.name = name
        self.function_arn = function_arn
        self.code_dir = code_dir
        self.env = env
        self.timeout = timeout
        self.metrics = MetricTotals()
        self._sink = _LogSink(log_path, self.metrics, on_emf)
        self._slots = threading.Semaphore(max(1, max_concurrency))
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.invocations = 0
        self.cold_starts = 0
        self.errors = 0

    def start(self) -> Worker:
        """Start one worker ahead of the first invocation (and check what it imported)."""
        worker = self._new_worker()
        with self._lock:
            self._idle.append(worker)
        return worker

    def _new_worker(self) -> Worker:
        worker = Worker(self.code_dir, self.env, self._sink)
        with self._lock:
            self._all.append(worker)
            self.cold_starts += 1
        if worker.init_error:
            log.error("%s: init failed: %s", self.name, worker.init_error.get("errorMessage"))
        return worker

    def invoke(self, event: dict[str, Any]) -> InvokeResult:
        with self._slots:
            with self._lock:
                if self._closed:
                    return InvokeResult(error={"errorType": "Runtime.Stopped", "errorMessage": "stopped"})
                worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.alive():
                try:
                    worker = self._new_worker()
                except WorkerError as error:
                    return InvokeResult(error={"errorType": "Runtime.InitError", "errorMessage": str(error)})
            result = worker.invoke(event, self.timeout, self.function_arn)
            with self._lock:
                self.invocations += 1
                if result.function_error:
                    self.errors += 1
                if worker.init_error and worker.alive():
                    worker.kill()  # an environment whose init failed is not reused
                if worker.alive() and not self._closed:
                    self._idle.append(worker)
            return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for worker in workers:
            worker.close()
        self._sink.close()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all if w.alive()]

    def busy_pids(self) -> list[int]:
        """Workers in the middle of an invocation (for fault injection: killing one mid-batch)."""
        with self._lock:
            idle = {id(w) for w in self._idle}
            return [w.process.pid for w in self._all if w.alive() and id(w) not in idle]
