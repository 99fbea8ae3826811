"""``make up`` / ``make down``: the local environment left running in the background.

``up`` starts a detached server process (``python -m replication_ops.local _serve``) that brings the
environment up, writes ``build/local/environment.json`` and then keeps the runner going until it is
told to stop; ``up`` follows its log until it is ready and prints the endpoints. The pid file
``build/local/up.pid`` names the server and, once ready, the processes it started. ``down`` asks the
server to stop (SIGTERM), waits for it, ends any process of ours left behind (by id, checking that it
is ours), and removes the run's state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from replication_ops.local.config import REPO_ROOT, SIDE_NAMES, Paths, SetupError
from replication_ops.local.environment import EnvironmentOptions, LocalEnvironment

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 900.0
STOP_TIMEOUT_SECONDS = 90.0
OUR_MARKERS = ("replication_ops.local", "worker_main.py")
ERROR_PREFIX = "error: "  # the server's line for a SetupError: `up` prints it as its own, once


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


def _ours(pid: int) -> bool:
    """The process runs our code (guards against a reused pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return any(marker in command for marker in OUR_MARKERS)


def running_server(paths: Paths) -> int | None:
    state = _read_json(paths.pid_file)
    pid = int(state["pid"]) if state and "pid" in state else None
    if pid and _alive(pid) and _ours(pid):
        return pid
    return None


def describe_environment(document: dict[str, Any], path: Path | None = None) -> str:
    """What `make up` prints: the endpoints and keys, and a put on one side with the AWS CLI and a get
    on the other. The put sets the version attributes, as the README's Deploying section asks of
    every writer (a write without them is stamped by its side's forwarder instead)."""
    lines = ["local partitions are up:"]
    for side in SIDE_NAMES:
        entry = document["sides"][side]
        lines.append(
            f"  {side:<11} {entry['endpoint_url']}  table {entry['table']}  "
            f"key {entry['aws_access_key_id']}  secret {entry['aws_secret_access_key']}"
        )
    first, second = (document["sides"][side] for side in SIDE_NAMES)
    names = document.get("version_attributes", {})
    timestamp = names.get("timestamp", "last_update_timestamp")
    origin = names.get("origin", "last_updater_region")
    lines += [
        "",
        "write on one side, read on the other a second or two later (replication is asynchronous; "
        "run the get again if it prints nothing):",
        f"  AWS_ACCESS_KEY_ID={first['aws_access_key_id']} "
        f"AWS_SECRET_ACCESS_KEY={first['aws_secret_access_key']} \\",
        f"    aws dynamodb put-item --endpoint-url {first['endpoint_url']} --region {first['region']} "
        f"--table-name {first['table']} \\",
        '    --item \'{"pk": {"S": "user#1"}, "sk": {"S": "profile"}, "name": {"S": "Li Lei"}, '
        '"residency": {"S": "GLOBAL"},',
        f'            "{timestamp}": {{"N": "\'"$(date +%s.%N)"\'"}}, '
        f'"{origin}": {{"S": "{first["region"]}"}}}}\'',
        f"  AWS_ACCESS_KEY_ID={second['aws_access_key_id']} "
        f"AWS_SECRET_ACCESS_KEY={second['aws_secret_access_key']} \\",
        f"    aws dynamodb get-item --endpoint-url {second['endpoint_url']} --region {second['region']} "
        f"--table-name {second['table']} \\",
        '    --key \'{"pk": {"S": "user#1"}, "sk": {"S": "profile"}}\'',
        "",
    ]
    if document.get("pair_ca_dir"):
        lines.append(
            "peer writers: IAM Roles Anywhere (emulated), no IAM user; the pair's CA is "
            f"{document['pair_ca_dir']} (ddb-replication credentials/rotate --ca-dir)"
        )
    lines.append(f"details: {path or 'build/local/environment.json'}; stop with `make down`")
    return "\n".join(lines)


def up(options: EnvironmentOptions, say: Callable[[str], None] = print) -> int:
    paths = options.paths
    paths.ensure()
    pid = running_server(paths)
    if pid:
        document = _read_json(paths.environment_json)
        say(f"already running (pid {pid}); `make down` stops it")
        if document:
            say(describe_environment(document, paths.environment_json))
        return 0
    paths.environment_json.unlink(missing_ok=True)
    LocalEnvironment(options, say=lambda _: None).preflight()  # SetupError: one line, nothing started
    command = [sys.executable, "-m", "replication_ops.local", "--build-dir", str(paths.base), "_serve"]
    command += [
        "--cn-port",
        str(options.ports.get("cn-north-1", 0)),
        "--us-port",
        str(options.ports.get("us-east-1", 0)),
        "--inbox-shards",
        str(options.inbox_shards),
        "--max-concurrency",
        str(options.max_concurrency),
        "--peer-writer-authentication",
        options.peer_writer_authentication,
    ]
    with paths.up_log.open("wb") as log_file:  # this start's log only
        server = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    paths.pid_file.write_text(json.dumps({"pid": server.pid, "children": []}) + "\n", encoding="utf-8")
    say(f"starting the local environment in the background (pid {server.pid}, log {paths.up_log})")
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    problem: str | None = None
    with paths.up_log.open("rb") as follow:
        while True:
            for line in follow.read().decode("utf-8", "replace").splitlines():
                if line.startswith(ERROR_PREFIX):
                    problem = line.removeprefix(ERROR_PREFIX)
                else:
                    say(f"  | {line}")
            document = _read_json(paths.environment_json)
            if document and document.get("server_pid") == server.pid:
                say(describe_environment(document, paths.environment_json))
                return 0
            if server.poll() is not None:
                paths.pid_file.unlink(missing_ok=True)
                if problem is not None:
                    raise SetupError(problem)
                say(f"the environment did not come up (exit {server.returncode}); see {paths.up_log}")
                return 1
            if time.monotonic() > deadline:
                say(f"not ready after {READY_TIMEOUT_SECONDS:.0f} s; stopping it")
                down(paths, say)
                return 1
            time.sleep(0.5)


def serve(options: EnvironmentOptions) -> int:
    """The background server's body (``_serve``)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    paths = options.paths
    environment = LocalEnvironment(options, say=lambda text: print(text, flush=True))
    try:
        environment.start()
        document = environment.write_environment_json({"server_pid": os.getpid()})
        paths.pid_file.write_text(
            json.dumps({"pid": os.getpid(), "children": environment.pids()}) + "\n", encoding="utf-8"
        )
        print(f"ready: {document}", flush=True)
        while not stop.wait(2.0):
            assert environment.runner is not None
            try:
                environment.runner.check_health()
            except Exception as error:
                print(f"runner problem: {error}", flush=True)
        return 0
    except SetupError as error:
        print(f"{ERROR_PREFIX}{error}", flush=True)
        return 2
    except Exception as error:
        details = paths.logs / "up-error.log"
        details.write_text(traceback.format_exc(), encoding="utf-8")
        print(f"failed: {type(error).__name__}: {error} (traceback in {details})", flush=True)
        return 1
    finally:
        if (paths.base / "destroy.request").exists():
            with contextlib.suppress(Exception):
                environment.destroy()
        environment.stop()
        paths.environment_json.unlink(missing_ok=True)
        print("stopped", flush=True)


def down(paths: Paths, say: Callable[[str], None] = print, *, destroy: bool = False) -> int:
    state = _read_json(paths.pid_file) or {}
    pid = running_server(paths)
    if pid:
        if destroy:
            (paths.base / "destroy.request").write_text("1\n", encoding="utf-8")
        say(f"stopping the local environment (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        if _alive(pid):
            say("it did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    else:
        say("no local environment running")
    for child in state.get("children", []):
        if _alive(int(child)) and _ours(int(child)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGTERM)
    clean(paths)
    say("stopped and cleaned up")
    return 0


def clean(paths: Paths) -> None:
    """Remove what only makes sense while the partitions run (state, unpacked code); keep logs and reports."""
    for path in (paths.environment_json, paths.pid_file, paths.base / "destroy.request"):
        path.unlink(missing_ok=True)
    for folder in (paths.terraform, paths.functions):
        shutil.rmtree(folder, ignore_errors=True)
