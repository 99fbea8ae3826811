"""The two local partitions: one moto server process each, on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from replication_ops.local import tls
from replication_ops.local.config import BUILD_DIR, REPO_ROOT, Side
from replication_ops.local.iam_enforcement import CALLS_PATH

START_TIMEOUT_SECONDS = 60.0


class PartitionError(RuntimeError):
    pass


@dataclass
class LocalPartition:
    """A moto server standing in for one region (and so its partition) on 127.0.0.1."""

    side: Side
    log_path: Path
    port: int = 0
    tls_port: int = 0  # the same server over TLS (Roles Anywhere's CreateSession: moto_launcher)
    enforce_iam: bool = False  # the launcher's --enforce-iam: IAM policies decide every request
    tls_dir: Path = BUILD_DIR / "tls"  # the launcher's --tls-dir: the local CA of the TLS port
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def region(self) -> str:
        return self.side.region

    @property
    def endpoint_url(self) -> str:
        if not self.port:
            raise PartitionError(f"the {self.region} partition is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def rolesanywhere_endpoint(self) -> str:
        """``host:port`` of the TLS port: the Roles Anywhere client library's ``endpoint``
        (``PEER_ROLESANYWHERE_ENDPOINT``); clients trust it with ``AWS_CA_BUNDLE`` = ``tls.ca_path``."""
        if not self.tls_port:
            raise PartitionError(f"the {self.region} partition is not running")
        return f"localhost:{self.tls_port}"

    @property
    def ca_bundle(self) -> Path:
        """The local CA that issued the TLS port's certificate: ``AWS_CA_BUNDLE`` of its clients."""
        return tls.ca_path(self.tls_dir)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, *, timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = dict(os.environ)
        env.pop("AWS_ENDPOINT_URL", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "replication_ops.local.moto_launcher",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--tls-port",
                str(self.tls_port),
                "--tls-dir",
                str(self.tls_dir),
                "--name",
                self.region,
                *(["--enforce-iam"] if self.enforce_iam else []),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,  # Ctrl-C reaches the orchestrator only; it stops us in order
        )
        line = _read_line(self.process, timeout)
        try:
            reported = json.loads(line)
            self.port, self.tls_port = int(reported["port"]), int(reported["tls_port"])
        except (ValueError, KeyError, TypeError):
            self.stop()
            raise PartitionError(
                f"the {self.region} partition did not start (see {self.log_path}): {line!r}"
            ) from None

    def stop(self, *, timeout: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                assert process.stdin is not None
                process.stdin.close()  # the launcher stops when its standard input closes
            except OSError:
                pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if process.stdout:
            process.stdout.close()
        if self._log:
            self._log.close()
            self._log = None
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def iam_calls(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The partition's IAM decisions so far (``iam_enforcement``): one entry per distinct
        (principal, action, resource, context, decision) with its count; empty when not enforced."""
        if not self.enforce_iam:
            return []
        with urllib.request.urlopen(f"{self.endpoint_url}{CALLS_PATH}", timeout=timeout) as answer:
            return list(json.load(answer)["calls"])


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    result: list[bytes] = []

    def read() -> None:
        assert process.stdout is not None
        result.append(process.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not result:
        process.kill()
        raise PartitionError(f"moto server did not report its port within {timeout:.0f} s")
    return result[0].decode("utf-8", "replace").strip()


def start_partitions(
    sides: list[Side], logs: Path, ports: dict[str, int] | None = None, *, enforce_iam: bool = False
) -> list[LocalPartition]:
    """Start one partition per side (in parallel); stop those started if one fails."""
    partitions = [
        LocalPartition(
            side,
            logs / f"moto-{side.region}.log",
            port=(ports or {}).get(side.region, 0),
            enforce_iam=enforce_iam,
        )
        for side in sides
    ]
    errors: list[BaseException] = []

    def start(partition: LocalPartition) -> None:
        try:
            partition.start()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(p,)) for p in partitions]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(START_TIMEOUT_SECONDS + 5 - (time.monotonic() - started))
    if errors:
        for partition in partitions:
            partition.stop()
        raise errors[0]
    return partitions
