"""Starting the local environment: a failed Terraform apply starts over from fresh partitions once;
a failed init (no providers, a syntax error) and a missing prerequisite are never retried."""

from __future__ import annotations

import shutil
import socket
import zipfile
from pathlib import Path

import pytest

from replication_ops.local.config import Paths, SetupError
from replication_ops.local.environment import (
    EnvironmentOptions,
    LocalEnvironment,
    check_port_free,
    stale_package_files,
)
from replication_ops.local.terraform import TerraformError


class Recorded(LocalEnvironment):
    """The environment with its partitions, init and applies replaced by a record of the calls."""

    def __init__(self, tmp_path: Path, failing_applies: int = 0, init_error: Exception | None = None) -> None:
        self.said: list[str] = []
        super().__init__(EnvironmentOptions(paths=Paths(tmp_path)), say=self.said.append)
        self.calls: list[str] = []
        self.failing_applies = failing_applies
        self.init_error = init_error

    def _start_partitions(self) -> None:
        self.calls.append("start partitions")

    def _stop_partitions(self) -> None:
        self.calls.append("stop partitions")

    def _prepare_roots(self) -> None:
        self.calls.append("prepare")

    def _init_roots(self) -> None:
        self.calls.append("init")
        if self.init_error:
            raise self.init_error

    def _apply_roots(self) -> None:
        self.calls.append("apply")
        if self.calls.count("apply") <= self.failing_applies:
            raise TerraformError("terraform apply failed for cn-north-1: Error: duplicate rule (log: x.log)")


def test_a_failed_apply_starts_over_from_fresh_partitions(tmp_path: Path) -> None:
    environment = Recorded(tmp_path, failing_applies=1)
    environment._apply_or_start_over()
    assert environment.calls == [
        "prepare",
        "init",
        "apply",
        "stop partitions",
        "start partitions",
        "prepare",
        "apply",
    ]
    said = [line for line in environment.said if "starting over once" in line]
    assert said == [
        "terraform apply failed for cn-north-1: Error: duplicate rule (log: x.log); "
        "starting over once from fresh partitions"
    ]


def test_an_apply_that_fails_again_reports_its_error(tmp_path: Path) -> None:
    environment = Recorded(tmp_path, failing_applies=5)
    with pytest.raises(TerraformError, match="apply failed for cn-north-1"):
        environment._apply_or_start_over()
    assert environment.calls.count("apply") == 2


@pytest.mark.parametrize(
    "error", [SetupError("set TF_PROVIDER_MIRROR"), TerraformError("terraform init failed: Error: x")]
)
def test_a_failed_init_is_not_retried(tmp_path: Path, error: Exception) -> None:
    environment = Recorded(tmp_path, init_error=error)
    with pytest.raises(type(error)):
        environment._apply_or_start_over()
    assert environment.calls == ["prepare", "init"]
    assert not [line for line in environment.said if "starting over" in line]


def test_missing_zips_say_make_package(tmp_path: Path) -> None:
    environment = LocalEnvironment(EnvironmentOptions(paths=Paths(tmp_path), dist_dir=tmp_path / "dist"))
    with pytest.raises(SetupError, match=r"forwarder.zip is missing: run `make package`"):
        environment.preflight()


def test_a_port_in_use_is_named_with_the_fix() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SetupError, match=rf"port {port} on 127.0.0.1 is in use .*`make down`.*--cn-port"):
            check_port_free(port, "--cn-port")
    check_port_free(0, "--cn-port")  # any free port: nothing to check


def test_a_port_whose_last_connection_waits_in_time_wait_is_free() -> None:
    """After `make down`, the server side of each closed connection waits in TIME_WAIT on the port
    (the side that closes first does, RFC 9293 3.6); a new server binds it with SO_REUSEADDR, so
    `make up` right after `make down` must not call it in use."""
    with socket.socket() as listener:
        # As moto's server (http.server.HTTPServer.allow_reuse_address); Linux lets a port be bound
        # over a TIME_WAIT socket only when both set SO_REUSEADDR (socket(7)).
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()  # the server closes first: its end (this port) enters TIME_WAIT
            client.recv(1)
    check_port_free(port, "--cn-port")


@pytest.mark.parametrize("command", ["demo", "up"])
def test_the_environment_deploys_roles_anywhere_unless_told_access_key(command: str, tmp_path: Path) -> None:
    """The module's default for new deployments (issue 12); access_key stays one flag away."""
    from replication_ops.local.__main__ import _environment_options, build_parser

    default = _environment_options(build_parser().parse_args(["--build-dir", str(tmp_path), command]))
    assert default.peer_writer_authentication == "roles_anywhere"
    assert default.ca_dir == Paths(tmp_path.resolve()).pair_ca
    assert default.credentials_arguments() == ["--ca-dir", str(default.ca_dir)]
    chosen = _environment_options(
        build_parser().parse_args(
            ["--build-dir", str(tmp_path), command, "--peer-writer-authentication", "access_key"]
        )
    )
    assert chosen.peer_writer_authentication == "access_key"
    assert chosen.ca_dir is None and chosen.credentials_arguments() == []


def _functions_and_zip(tmp_path: Path) -> tuple[Path, Path]:
    """A functions/ tree (the forwarder and the shared package) and a zip of it as the build lays it
    out (scripts/build_lambdas.py), with a vendored module at the zip's root."""
    functions = tmp_path / "functions"
    (functions / "forwarder").mkdir(parents=True)
    (functions / "forwarder" / "app.py").write_text("def handler(event, context): ...\n")
    (functions / "replication").mkdir()
    (functions / "replication" / "__init__.py").write_text("")
    (functions / "replication" / "wire.py").write_text("VERSION = 1\n")
    (functions / "replication" / "test_wire.py").write_text("def test(): ...\n")
    dist = tmp_path / "dist"
    dist.mkdir()
    with zipfile.ZipFile(dist / "forwarder.zip", "w") as archive:
        archive.writestr("app.py", "def handler(event, context): ...\n")
        archive.writestr("replication/__init__.py", "")
        archive.writestr("replication/wire.py", "VERSION = 1\n")
        archive.writestr("typing_extensions.py", "# vendored\n")
    return functions, dist / "forwarder.zip"


def test_a_zip_of_the_current_sources_is_current(tmp_path: Path) -> None:
    functions, package = _functions_and_zip(tmp_path)
    assert stale_package_files(package, "forwarder", functions) == []


def test_a_source_changed_after_the_build_makes_the_zip_stale(tmp_path: Path) -> None:
    functions, package = _functions_and_zip(tmp_path)
    (functions / "replication" / "wire.py").write_text("VERSION = 2\n")
    (functions / "replication" / "lag.py").write_text("")
    assert stale_package_files(package, "forwarder", functions) == [
        "replication/lag.py",
        "replication/wire.py",
    ]


def test_a_module_removed_after_the_build_makes_the_zip_stale(tmp_path: Path) -> None:
    functions, package = _functions_and_zip(tmp_path)
    (functions / "replication" / "wire.py").unlink()
    assert stale_package_files(package, "forwarder", functions) == ["replication/wire.py"]


def test_a_stale_zip_stops_the_run_saying_make_package(tmp_path: Path) -> None:
    """`python -m replication_ops.local demo` does not build: a zip older than the sources would run
    the old engine silently."""
    functions, package = _functions_and_zip(tmp_path)
    shutil.copy(package, package.with_name("replicator.zip"))
    (functions / "replicator").mkdir()
    (functions / "replicator" / "app.py").write_text("def handler(event, context): ...\n")
    (functions / "replication" / "wire.py").write_text("VERSION = 2\n")
    environment = LocalEnvironment(
        EnvironmentOptions(paths=Paths(tmp_path), dist_dir=package.parent, functions_dir=functions)
    )
    with pytest.raises(
        SetupError, match=r"forwarder.zip was built from other sources .*wire.py differ.*make package"
    ):
        environment.preflight()
