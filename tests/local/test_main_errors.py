"""`python -m replication_ops.local demo|up|down`: every mistake a newcomer can make before anything
runs (a typo, a bad value, a missing tool, a port in use, a wrong provider mirror, `make up` still
running) is exit 2 with one line naming the cause and the fix, no traceback, nothing started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from replication_ops.local.config import REPO_ROOT, Paths

PROG = "python -m replication_ops.local"


def _local(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replication_ops.local", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    prefix = f"{PROG} {command}: error: " if command else f"{PROG}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo", "--rate", "nan"], "argument --rate: 'nan' is not a finite number"),
        (["demo", "--drain-timeout", "inf"], "argument --drain-timeout: 'inf' is not a finite number"),
        (["demo", "--operations", "0"], "argument --operations: '0': must be from 1"),
        (["demo", "--conflict-share", "1.5"], "argument --conflict-share: '1.5': must be at least 0"),
        (["up", "--cn-port", "70000"], "argument --cn-port: '70000': a port is 0 (any free port) to 65535"),
        (["up", "--max-concurrency", "0"], "argument --max-concurrency: '0': must be from 1"),
        (["up", "--cn-port", "19001", "--us-port", "19001"], "are both 19001: each partition needs a port"),
        (
            ["up", "--peer-writer-authentication", "password"],
            "invalid choice: 'password' (choose from 'access_key', 'roles_anywhere')",
        ),
        (["demo", "--delet-share", "0.1"], "--delet-share 0.1 (did you mean --delete-share?)"),
        (["demo", "--update-share", "0.8", "--delete-share", "0.5"], "must not exceed 1"),
        (["demo", "--unversioned-share", "0.6", "--decimal-time-share", "0.5"], "must not exceed 1"),
    ],
)
def test_a_bad_flag_is_one_line_from_its_subcommand(argv: list[str], expected: str) -> None:
    assert expected in _one_line(_local(*argv), argv[0])


def test_an_unknown_latency_profile_names_the_profiles() -> None:
    line = _one_line(_local("demo", "--profile", "fast"), "demo")
    assert "argument --profile: invalid choice: 'fast'" in line
    assert "standard" in line and "low-latency" in line


def test_a_mistyped_subcommand_lists_the_subcommands() -> None:
    line = _one_line(_local("dmeo"), "")
    assert "invalid choice: 'dmeo'" in line and "'demo'" in line


@pytest.fixture
def no_terraform_path(tmp_path: Path) -> str:
    """PATH with bash and the usual tools but without terraform."""
    folders = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "terraform").exists()]
    assert shutil.which("bash", path=os.pathsep.join(folders)), "bash is needed"
    return os.pathsep.join(folders)


def test_terraform_missing_is_named_with_the_fix(lambda_zips, tmp_path, no_terraform_path) -> None:
    done = _local("--build-dir", str(tmp_path), "demo", env={"PATH": no_terraform_path})
    line = _one_line(done, "demo")
    assert line.endswith("terraform is not on PATH: install Terraform >= 1.6 and put it on PATH")
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


def test_a_wrong_provider_mirror_is_named_before_anything_starts(lambda_zips, tmp_path) -> None:
    done = _local("--build-dir", str(tmp_path), "demo", env={"TF_PROVIDER_MIRROR": str(tmp_path / "nope")})
    line = _one_line(done, "demo")
    assert f"TF_PROVIDER_MIRROR={tmp_path / 'nope'}: no such folder" in line
    assert "set it to the folder that holds registry.terraform.io/" in line


def test_up_with_a_port_in_use_says_make_down(lambda_zips, tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = _local("--build-dir", str(tmp_path), "up", "--cn-port", port, "--us-port", "0")
    line = _one_line(done, "up")
    assert f"port {port} on 127.0.0.1 is in use" in line and "`make down`" in line
    assert not Paths(tmp_path).pid_file.exists()  # no server was started


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[Path]:
    """A stand-in for the `make up` server: a process of ours named in build/local/up.pid."""
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "replication_ops.local"])
    try:
        Paths(tmp_path).pid_file.write_text(f'{{"pid": {server.pid}, "children": []}}\n')
        yield tmp_path
    finally:
        server.kill()
        server.wait()


def test_demo_while_up_runs_says_make_down_first(lambda_zips, running_up: Path) -> None:
    line = _one_line(_local("--build-dir", str(running_up), "demo"), "demo")
    assert "`make up` runs in" in line and "`make down` first" in line


@pytest.fixture
def no_providers(tmp_path: Path) -> dict[str, str]:
    """A Terraform CLI configuration whose only provider source is an empty mirror: `terraform init`
    cannot install the AWS provider, on any machine, as on one that reaches no registry."""
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    config = tmp_path / "no-providers.tfrc"
    config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{empty}"\n  }}\n}}\n')
    return {"TF_CLI_CONFIG_FILE": str(config), "TF_PROVIDER_MIRROR": ""}


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
@pytest.mark.parametrize("command", ["up", "demo"])
def test_no_providers_is_said_once_without_a_retry_or_a_traceback(
    lambda_zips, tmp_path, no_providers, command
) -> None:
    build = tmp_path / "local"
    done = _local("--build-dir", str(build), command, "--cn-port", "0", "--us-port", "0", env=no_providers)
    line = _one_line(done, command)
    assert "Terraform could not install hashicorp/aws" in line and "TF_PROVIDER_MIRROR" in line
    everything = done.stdout + done.stderr
    assert everything.count("TF_PROVIDER_MIRROR") == 1, everything
    assert "starting over" not in everything and "Traceback" not in everything
    assert everything.count("terraform init") == 1  # tried once
    assert not Paths(build).pid_file.exists()
